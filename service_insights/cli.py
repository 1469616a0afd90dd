"""The command line: start the dashboard, build the synthetic sample, check queries,
export charts and report packs, manage users, register services and import records."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import signal
import sys
import time
from pathlib import Path

from service_insights import settings
from service_insights.access import audit


def _run(args: argparse.Namespace) -> int:
    """Serve serve.py (the dashboard plus its sign-in routes, an st.App) with uvicorn, on
    127.0.0.1 unless --address says otherwise: put it behind a reverse proxy with TLS to
    reach it from other machines (README)."""
    if args.workers < 1:
        print(f"run: --workers must be 1 or more, not {args.workers}.", file=sys.stderr)
        return 2
    if args.workers > 1 or args.nginx_conf:
        from service_insights import serving

        return serving.run_workers(args.workers, args.port, args.proxy_listen,
                                   args.nginx_conf)
    app = settings.ROOT / "serve.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--server.address", args.address, "--browser.gatherUsageStats", "false"]
    if args.headless:
        cmd += ["--server.headless", "true"]
    os.execv(sys.executable, cmd)
    return 0  # not reached


def _sample(args: argparse.Namespace) -> int:
    """Build the sample under the writers' lock: a second build of the same store started
    while one runs is refused in one sentence (never two "Built"), and a folder that
    cannot be written is said plainly."""
    from service_insights.store import db, synth

    cfg = settings.get()
    out = Path(args.out) if args.out else cfg.db_path
    started = time.perf_counter()
    try:
        with _terminate_cleanly():
            synth.write_sample(out, args.cases, args.seed, wait=False)
    except db.StoreBusy:
        print(f"sample: {out} is already being built (or changed by an import) by another "
              "process; nothing was built. Run this again once it has finished.",
              file=sys.stderr)
        return 1
    except db.StoreError as exc:
        print(f"sample: {exc} Nothing was built.", file=sys.stderr)
        return 1
    print(f"Built the synthetic sample: {args.cases:,} cases (seed {args.seed}) in {out} "
          f"in {time.perf_counter() - started:.1f} s.")
    return 0


def _check(args: argparse.Namespace) -> int:
    from service_insights.catalogue import catalog

    entries = catalog.discover(settings.get().queries_dir)
    bad = [e for e in entries if e.error]
    for e in bad:
        print(e.error, file=sys.stderr)
    print(f"{len(entries) - len(bad)} of {len(entries)} query files parse.")
    return 1 if bad else 0


def _export(args: argparse.Namespace) -> int:
    """One chart (--query) or the report pack; exit 0 complete, 2 written with omissions,
    1 nothing written."""
    from service_insights.access import acting, grants
    from service_insights.catalogue import catalog, results, selection
    from service_insights.exports import chart_files, report_pack
    from service_insights.findings import evaluation
    from service_insights.store import db

    cfg = settings.get()
    try:
        store = db.Store(cfg.db_path)
        viewer = acting.viewer_for(args.as_user, selection.services_table(store))
        scope = acting.scope_as(store, viewer, args.area or (), args.service or ())
        period = selection.period_for(args.year, args.quarter)
    except acting.Refused as exc:
        print(f"export: {exc}; nothing was exported.", file=sys.stderr)
        audit.record(_os_user(), "export_refused", as_user=args.as_user,
                     services=args.service or [], areas=args.area or [], reason=str(exc),
                     via="cli")
        return 1
    except (db.StoreError, ValueError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    try:
        empty = not selection.has_records(store, scope, period)
    except (db.QueryFailed, db.StoreError) as exc:
        print(f"export: the store could not be read: {exc} Nothing was written.",
              file=sys.stderr)
        return 1
    if empty:
        print(f"export: there are no records for {scope.label} in {period.label} (no case "
              "referred or closed, no Marac referral heard); nothing was written.",
              file=sys.stderr)
        return 1
    who = _acting(args, viewer)
    audience = grants.audience(viewer)  # exact only for a manager's own services
    started = time.perf_counter()
    if args.query:
        fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "")
        if fmt not in chart_files.FORMATS:
            print(f"export: give --format {'|'.join(chart_files.FORMATS)} (or an --out file "
                  "ending in one of them)", file=sys.stderr)
            return 1
        entry = catalog.get(cfg.queries_dir, args.query)
        if entry.error:
            print(f"export: {entry.error}", file=sys.stderr)
            return 1
        try:
            res = results.run(store, entry.spec, scope, period, cfg, audience,
                              args.comparator)
            data = chart_files.export(res, fmt, cfg.protective_marking)
        except (chart_files.ExportError, db.StoreError) as exc:
            print(f"export: {exc}", file=sys.stderr)
            return 1
        out = Path(args.out) if args.out else Path(chart_files.file_name(res, fmt))
        if not _write_or_say(out, data):
            return 1
        audit.record(_os_user(), "export", format=fmt, query=res.spec.id, scope=scope.label,
                     period=period.label, via="cli", **who)
        print(f"Wrote {out} ({len(data):,} bytes, {res.spec.title}; {scope.label}, "
              f"{period.label}) in {time.perf_counter() - started:.1f} s.")
        return 0
    if args.format not in (None, "pdf"):
        print("export: a report pack is a PDF; use --query for other formats",
              file=sys.stderr)
        return 1
    pages = [p.strip() for p in args.pages.split(",") if p.strip()] if args.pages else None
    try:
        report = evaluation.evaluate(store, scope, period, cfg, audience, args.comparator)
        for error in report.errors:
            print(f"export: a finding rule could not be checked: {error}", file=sys.stderr)
        pack = report_pack.build(store, scope, period, cfg, pages=pages,
                                 findings=report.findings, audience=audience,
                                 comparator=args.comparator)
    except (ValueError, db.StoreError) as exc:
        print(f"export: {exc} Nothing was written.", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else Path(pack.file_name)
    if not _write_or_say(out, pack.pdf):
        return 1
    audit.record(_os_user(), "export", format="pack", scope=scope.label, period=period.label,
                 charts=pack.charts, omitted=len(pack.omitted), via="cli", **who)
    print(f"Wrote {out}: report pack for {scope.label}, {period.label}, {pack.charts} charts "
          f"in {time.perf_counter() - started:.1f} s.")
    for item in pack.omitted:
        print(f"Omitted: {item}", file=sys.stderr)
    return 2 if pack.omitted else 0


def _acting(args: argparse.Namespace, viewer) -> dict[str, object]:
    """Whom the export acts as, for its audit entry; without --as, say on stderr that it
    runs as an administrator (the entry says so too)."""
    if args.as_user is None:
        print("export: no --as USER given, so this runs as an administrator and may export "
              "every service; give --as NAME to export with that user's access.",
              file=sys.stderr)
        return {"os_user": _os_user(), "acting_as": "administrator (no --as given)",
                "acting_role": viewer.role}
    return {"os_user": _os_user(), "acting_as": viewer.username,
            "acting_role": viewer.role}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _users(args: argparse.Namespace) -> int:
    """Add, list, disable, enable, remove users or change a password; passwords are read
    from stdin or a prompt, never from the command line (where other users could see
    them). Every change is audited; every refusal is one sentence on stderr."""
    from service_insights.access import accounts

    try:
        if args.action == "list":
            for user in accounts.load_users().values():
                grants = ", ".join(user.services or user.areas) or "everything"
                state = "\tdisabled" if user.disabled else ""
                print(f"{user.username}\t{user.role}\t{grants}\t{user.email}{state}")
            return 0
        if not args.name:
            print(f"users: give the user's name: users {args.action} NAME", file=sys.stderr)
            return 1
        name = args.name.strip().lower()
        if args.action == "add":
            return _users_add(args, name)
        if name not in accounts.load_users():
            print(f"users: there is no user called {name!r} in {accounts.users_path()}.",
                  file=sys.stderr)
            return 1
        if args.action == "passwd":
            password = _password(args, name)
            ended = accounts.set_password(name, password or "")
            audit.record(_os_user(), "user_password_changed", user=name, sessions_ended=ended,
                         via="cli")
            print(f"Changed the password of {name}; {ended} open session(s) ended.")
        elif args.action in ("disable", "enable"):
            ended = accounts.set_disabled(name, args.action == "disable")
            audit.record(_os_user(), f"user_{args.action}d", user=name, sessions_ended=ended,
                         via="cli")
            print(f"{args.action.capitalize()}d {name}"
                  + (f"; {ended} open session(s) ended." if args.action == "disable" else "."))
        else:  # remove
            ended = accounts.remove_user(name)
            audit.record(_os_user(), "user_removed", user=name, sessions_ended=ended,
                         via="cli")
            print(f"Removed {name}; {ended} open session(s) ended.")
        return 0
    except (ValueError, OSError) as exc:
        print(f"users: {exc}.", file=sys.stderr)
        return 1


def _password(args: argparse.Namespace, name: str) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if args.no_password:
        return None
    return getpass.getpass(f"Password for {name} (12 characters or more): ")


def _users_add(args: argparse.Namespace, name: str) -> int:
    from service_insights.access import accounts
    from service_insights.store import db, registry

    split = lambda v: tuple(x.strip() for x in (v or "").split(",") if x.strip())  # noqa: E731
    services, areas = split(args.services), split(args.areas)
    problem = accounts.grant_problem(args.role, services, areas)
    if problem is None and (services or areas):
        try:
            known = registry.services()["service_id"].to_list(), registry.area_codes()
        except db.StoreError as exc:
            print(f"users: the store could not be read to check the grants ({exc})",
                  file=sys.stderr)
            return 1
        problem = accounts.unregistered_problem(services, areas, *known)
    if problem:  # before asking for a password
        print(f"users: {problem} (--role, --services, --areas).", file=sys.stderr)
        return 1
    password = _password(args, name)
    user = accounts.User(name, args.role, services, areas, (args.email or "").lower())
    accounts.save_user(user, password)
    audit.record(_os_user(), "user_saved", user=user.username, role=user.role, via="cli")
    print(f"Saved {user.username} ({user.role}) in {accounts.users_path()}.")
    return 0


def _write_or_say(out: Path, data: bytes) -> bool:
    """Write the export, or say in one sentence why it could not be (a read-only or full
    folder) with nothing half-written left behind."""
    try:
        _write(out, data)
    except OSError as exc:
        print(f"export: {out} could not be written ({exc.strerror or exc}); nothing was "
              "written.", file=sys.stderr)
        return False
    return True


def _write(out: Path, data: bytes) -> None:
    """Whole file or nothing: write beside it, then rename over."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def _add_users_parser(sub) -> None:
    users = sub.add_parser(
        "users", help="add, list, disable, enable, remove dashboard users or set a password",
        description="Manage dashboard users. The first administrator is added here: "
        "users add NAME --role admin. disable, passwd and remove end the user's open "
        "sessions at once.")
    users.add_argument("action", choices=["add", "list", "disable", "enable", "remove",
                                          "passwd"])
    users.add_argument("name", nargs="?", default="")
    users.add_argument("--role", default="service_manager")
    users.add_argument("--services", help="comma-separated service ids (service managers)")
    users.add_argument("--areas", help="comma-separated area codes (commissioners)")
    users.add_argument("--email", help="for sign-in through the identity provider (OIDC)")
    users.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin")
    users.add_argument("--no-password", action="store_true",
                       help="identity-provider sign-in only")
    users.set_defaults(func=_users)

@contextlib.contextmanager
def _terminate_cleanly():
    """SIGTERM (`kill`, a service manager stopping a job) unwinds like Ctrl-C, so the
    half-written copy of the store an import holds is removed, not left beside it."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _upgrade(args: argparse.Namespace) -> int:
    """A store built by the previous schema version, brought up to this one in place,
    keeping every imported record (store/db.upgrade)."""
    from service_insights.store import db

    cfg = settings.get()
    try:
        with _terminate_cleanly():
            before = db.upgrade(cfg.db_path, cfg.schema_path.read_text())
    except db.StoreError as exc:
        print(f"upgrade: {exc} Nothing was changed.", file=sys.stderr)
        return 1
    if before == db.SCHEMA_VERSION:
        print(f"{cfg.db_path} is already at schema version {before}; nothing to do.")
    else:
        print(f"Upgraded {cfg.db_path} from schema version {before} to "
              f"{db.SCHEMA_VERSION}; every record was kept.")
    return 0


def _import(args: argparse.Namespace) -> int:
    from service_insights.ingest import importer
    from service_insights.store import db

    started = time.perf_counter()
    services = args.service or []
    try:
        with _terminate_cleanly():
            if args.marac:
                if services:
                    print("Nothing was imported. A Marac file names its services on its rows "
                          "(service_id); leave out --service.", file=sys.stderr)
                    return 1
                result = importer.import_marac_file(args.file, user=args.user)
            else:
                # One --service: every row is that service's. Several, or none: an
                # area-wide file whose rows name their service, limited to those given
                # (none: every registered service; the command line acts as an admin).
                one = services[0] if len(services) == 1 else None
                result = importer.import_file(args.file, one, user=args.user,
                                              services=services or None)
    except (importer.KeyMissing, importer.ImportRefused, importer.FileUnreadable,
            db.StoreError) as exc:
        print(f"Nothing was imported. {exc}", file=sys.stderr)
        return 1
    audit.record(args.user or _os_user(), "import", ok=result.imported,
                 service=",".join(services) or None, kind=result.kind,
                 file=Path(args.file).name, rows_read=result.rows_read,
                 rows_added=result.rows_added, rows_replaced=result.rows_replaced,
                 problems=result.problems.height, via="cli")
    for note in result.notes():
        print(note)
    if not result.imported:
        print(result.headline(), file=sys.stderr)
        shown = result.problems.head(args.show)
        for row, field, value, message in shown.iter_rows():
            print(f"  row {row}, {field or '(file)'}: {value!r}: {message}", file=sys.stderr)
        if result.problems.height > shown.height:
            print(f"  ... and {result.problems.height - shown.height:,} more "
                  f"(--show N to list more)", file=sys.stderr)
        return 1
    print(result.headline())
    if result.kind == "marac":
        for r in result.by_area.iter_rows(named=True):
            print(f"{r['marac_area']}: {r['referrals']:,} referrals, {r['victims']:,} victims, "
                  f"meetings {r['first_meeting']:%d/%m/%Y} to {r['last_meeting']:%d/%m/%Y}; "
                  f"{r['linked_to_a_case']:,} linked to a service's case, "
                  f"{r['with_perpetrator']:,} with a perpetrator reference")
        print(f"Done in {time.perf_counter() - started:.1f} s.")
        return 0
    if result.by_service is not None and result.by_service.height > 1:
        for r in result.by_service.iter_rows(named=True):
            print(f"{r['service_id']}: {r['cases_in_file']:,} cases ({r['new']:,} new, "
                  f"{r['replacing']:,} replacing), {r['marac_referrals']:,} Marac referrals")
    q = result.quality
    print(f"Open cases (no exit date): {q.open_cases:,}")
    print("Cases by financial year of referral: " + ", ".join(
        f"{fy} {n:,}" for fy, n in q.by_year.iter_rows()))
    for field, first, last, filled in q.dates.iter_rows():
        if filled:
            print(f"{field}: {first:%d/%m/%Y} to {last:%d/%m/%Y} ({filled:,} filled)")
    print("Share blank, optional fields: " + ", ".join(
        f"{f} {pct:g}%" for f, _, pct, _ in q.blanks.iter_rows() if pct))
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return 0


def _services_add(args: argparse.Namespace) -> int:
    from service_insights.store import db, registry

    area = None
    if args.area_name or args.region or args.population:
        if not (args.area_name and args.region and args.population):
            print("A new area needs --area-name, --region and --population together.",
                  file=sys.stderr)
            return 1
        area = registry.Area(args.area, args.area_name, args.region, args.population)
    service = registry.Service(args.id, args.name, args.type, args.area,
                               args.idva_fte, args.admin_fte)
    try:
        print(registry.register_service(service, area))
    except (registry.RegistrationError, db.StoreError) as exc:
        print(f"Not registered. {exc}", file=sys.stderr)
        return 1
    return 0


def _services_list(args: argparse.Namespace) -> int:
    from service_insights.store import registry

    for row in registry.services().iter_rows(named=True):
        fte = [row.get(c) for c in ("idva_fte", "admin_fte")]
        extra = ("\t" + "\t".join("" if v is None else f"{v:g}" for v in fte)
                 if any(v is not None for v in fte) else "")  # FTE only when registered
        print(f"{row['service_id']}\t{row['service_type']}\t{row['area_code']}\t{row['name']}"
              f"{extra}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from service_insights.catalogue import comparators

    cfg = settings.get()
    parser = argparse.ArgumentParser(prog="service-insights", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="start the dashboard (builds the sample on first start)",
        description="Start the dashboard, then open http://127.0.0.1:8501 (or the --address "
        "and --port given) in a browser. On first start with no store it builds the "
        "synthetic sample (a few seconds).")
    run.add_argument("--port", type=int, default=8501,
                     help="the port to listen on (default 8501)")
    run.add_argument("--address", default="127.0.0.1",
                     help="the address to listen on (default 127.0.0.1: this machine only; "
                     "0.0.0.0 for every interface, behind a TLS reverse proxy)")
    run.add_argument("--headless", action="store_true",
                     help="do not try to open a browser window (for a server, or when "
                     "starting it from a script)")
    # Serving a team (service_insights/serving.py; README "Running it for an organisation").
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="start N dashboard processes on one store, on ports PORT+1..PORT+N, "
                     "behind nginx on PORT with sticky sessions (default 1: one process, "
                     "no nginx)")
    run.add_argument("--proxy-listen", metavar="ADDR:PORT",
                     help="with --workers: where nginx listens (default 127.0.0.1:PORT); "
                     "put your TLS proxy in front of it")
    run.add_argument("--nginx-conf", type=Path, metavar="PATH",
                     help="with --workers: write the nginx configuration to PATH and start "
                     "only the workers, for an nginx you run yourself")
    run.set_defaults(func=_run)
    sample = sub.add_parser(
        "sample", help="build the synthetic sample database",
        description="Build the synthetic sample and swap it in whole. A second build of the "
        "same file while one runs is refused (exit 1), never run twice.")
    sample.add_argument("--cases", type=int, default=cfg.sample_cases,
                        help=f"how many cases (default {cfg.sample_cases:,})")
    sample.add_argument("--seed", type=int, default=cfg.sample_seed,
                        help="the random seed (the same seed gives the same sample)")
    sample.add_argument("--out", default=None, help=f"default: {cfg.db_path}")
    sample.set_defaults(func=_sample)
    upgrade = sub.add_parser(
        "upgrade", help="bring a store built by the previous version up to this one, "
        "keeping every record")
    upgrade.set_defaults(func=_upgrade)
    check = sub.add_parser("check", help="parse every query file and list problems")
    check.set_defaults(func=_check)
    export = sub.add_parser(
        "export", help="write the report pack (PDF), or one chart with --query",
        description="Export the report pack for an area or services and a period, or one "
        "chart as an image or data file. Exit status: 0 written in full, 2 written with "
        "items omitted (listed on stderr), 1 nothing written.")
    export.add_argument("--area", action="append", metavar="CODE",
                        help="area code, e.g. E06000001 (repeatable)")
    export.add_argument("--service", action="append", metavar="ID",
                        help="service id, e.g. S01 (repeatable; wins over --area)")
    export.add_argument("--year", required=True, help="financial year, e.g. 2024-25")
    export.add_argument("--quarter", type=int, choices=[1, 2, 3, 4],
                        help="one quarter of the year (1 = April to June)")
    export.add_argument("--pages", help="pack only: comma-separated pages, e.g. "
                        "overview,children (default: every page)")
    export.add_argument("--query", help="one chart's query id, e.g. "
                        "children/whole_family_support_by_social_care")
    export.add_argument("--format", choices=["png", "svg", "pdf", "csv", "xlsx"],
                        help="with --query (default: from --out's extension)")
    export.add_argument("--out", help="file to write (default: a name from the query, "
                        "scope and period, in the current folder)")
    export.add_argument("--as", dest="as_user", metavar="USER",
                        help="act as this dashboard user, with their services or areas only "
                        "(default: an administrator, said on stderr and in the audit log)")
    export.add_argument("--comparator", choices=list(comparators.KINDS),
                        default=comparators.DEFAULT,
                        help="what the figures and findings are set against (default: "
                        "same_type, services of the same type)")
    export.set_defaults(func=_export)
    _add_users_parser(sub)
    imp = sub.add_parser("import", help="import case records (one service's, or an area-wide "
                         "file) or a Marac file (CSV, XLSX, Parquet)")
    imp.add_argument("file")
    imp.add_argument("--service", action="append", default=None,
                     help="the registered service id, e.g. S01 (repeat it, or leave it out, "
                     "for an area-wide file whose service_id column names each case's "
                     "service: only the services given may appear)")
    imp.add_argument("--marac", action="store_true",
                     help="the file is a Marac coordinator's list of referrals heard")
    imp.add_argument("--user", default=None, help="who is importing (default: your login)")
    imp.add_argument("--show", type=int, default=100, help="problems to list (default 100)")
    imp.set_defaults(func=_import)
    services = sub.add_parser("services", help="register or list services").add_subparsers(
        dest="action", required=True)
    add = services.add_parser("add", help="register a service (and its area, if new); on the "
                              "synthetic sample this starts a fresh store for real records")
    add.add_argument("--id", required=True, help="e.g. S01")
    add.add_argument("--name", required=True)
    add.add_argument("--type", required=True,
                     choices=["idva", "outreach", "cyp", "refuge", "perpetrator"])
    add.add_argument("--area", required=True, help="local authority code, e.g. E06000001")
    add.add_argument("--area-name", default=None)
    add.add_argument("--region", default=None, help="e.g. North East")
    add.add_argument("--population", type=int, default=None,
                     help="the area's adult female population (16+)")
    add.add_argument("--idva-fte", type=float, default=None,
                     help="full-time-equivalent Idvas at the service (for Marac capacity)")
    add.add_argument("--admin-fte", type=float, default=None,
                     help="full-time-equivalent Marac administrators the service funds")
    add.set_defaults(func=_services_add)
    services.add_parser("list", help="list registered services").set_defaults(
        func=_services_list)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
