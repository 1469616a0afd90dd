"""The command line: start the dashboard, build the sample, check queries, export."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path

from service_insights import audit, settings


def _run(args: argparse.Namespace) -> int:
    app = settings.ROOT / "dashboard.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--browser.gatherUsageStats", "false"]
    if args.headless:
        cmd += ["--server.headless", "true"]
    if args.address:
        cmd += ["--server.address", args.address]
    os.execv(sys.executable, cmd)
    return 0  # not reached


def _sample(args: argparse.Namespace) -> int:
    from service_insights import synth

    cfg = settings.get()
    out = Path(args.out) if args.out else cfg.db_path
    started = time.perf_counter()
    synth.write_sample(out, args.cases, args.seed)
    print(f"Built the synthetic sample: {args.cases:,} cases (seed {args.seed}) in {out} "
          f"in {time.perf_counter() - started:.1f} s.")
    return 0


def _check(args: argparse.Namespace) -> int:
    from service_insights import catalog

    entries = catalog.discover(settings.get().queries_dir)
    bad = [e for e in entries if e.error]
    for e in bad:
        print(e.error, file=sys.stderr)
    print(f"{len(entries) - len(bad)} of {len(entries)} query files parse.")
    return 1 if bad else 0


def _export(args: argparse.Namespace) -> int:
    """One chart (--query) or the report pack; exit 0 complete, 2 written with omissions,
    1 nothing written."""
    from service_insights import catalog, db, exports, findings, report_pack, results, selection

    cfg = settings.get()
    try:
        store = db.Store(cfg.db_path)
        scope = selection.scope_for(store, args.area or (), args.service or ())
        period = selection.period_for(args.year, args.quarter)
    except (db.StoreError, ValueError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    if args.query:
        fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "")
        if fmt not in exports.FORMATS:
            print(f"export: give --format {'|'.join(exports.FORMATS)} (or an --out file "
                  "ending in one of them)", file=sys.stderr)
            return 1
        entry = catalog.get(cfg.queries_dir, args.query)
        if entry.error:
            print(f"export: {entry.error}", file=sys.stderr)
            return 1
        res = results.run(store, entry.spec, scope, period, cfg)
        try:
            data = exports.export(res, fmt, cfg.protective_marking)
        except exports.ExportError as exc:
            print(f"export: {exc}", file=sys.stderr)
            return 1
        out = Path(args.out) if args.out else Path(exports.file_name(res, fmt))
        _write(out, data)
        audit.record(_os_user(), "export", format=fmt, query=res.spec.id, scope=scope.label,
                     period=period.label, via="cli")
        print(f"Wrote {out} ({len(data):,} bytes, {res.spec.title}; {scope.label}, "
              f"{period.label}) in {time.perf_counter() - started:.1f} s.")
        return 0
    if args.format not in (None, "pdf"):
        print("export: a report pack is a PDF; use --query for other formats",
              file=sys.stderr)
        return 1
    pages = [p.strip() for p in args.pages.split(",") if p.strip()] if args.pages else None
    try:
        report = findings.evaluate(store, scope, period, cfg)
        for error in report.errors:
            print(f"export: a finding rule could not be checked: {error}", file=sys.stderr)
        pack = report_pack.build(store, scope, period, cfg, pages=pages,
                                 findings=report.findings)
    except ValueError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else Path(pack.file_name)
    _write(out, pack.pdf)
    audit.record(_os_user(), "export", format="pack", scope=scope.label, period=period.label,
                 charts=pack.charts, omitted=len(pack.omitted), via="cli")
    print(f"Wrote {out}: report pack for {scope.label}, {period.label}, {pack.charts} charts "
          f"in {time.perf_counter() - started:.1f} s.")
    for item in pack.omitted:
        print(f"Omitted: {item}", file=sys.stderr)
    return 2 if pack.omitted else 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _users(args: argparse.Namespace) -> int:
    """Add or list dashboard users; passwords are read from stdin or a prompt, never
    from the command line (where other users could see them)."""
    from service_insights import access, auth

    if args.action == "list":
        for user in auth.load_users().values():
            grants = ", ".join(user.services or user.areas) or "everything"
            print(f"{user.username}\t{user.role}\t{grants}\t{user.email}")
        return 0
    if not args.name:
        print("users: give the new user's name: users add NAME --role ...", file=sys.stderr)
        return 1
    if args.role not in access.ROLES:
        print(f"users: --role is one of {', '.join(access.ROLES)}", file=sys.stderr)
        return 1
    if args.role == "service_manager" and not args.services:
        print("users: a service manager needs --services", file=sys.stderr)
        return 1
    if args.role == "commissioner" and not args.areas:
        print("users: a commissioner needs --areas", file=sys.stderr)
        return 1
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.no_password:
        password = None
    else:
        password = getpass.getpass(f"Password for {args.name} (12 characters or more): ")
    split = lambda v: tuple(x.strip() for x in (v or "").split(",") if x.strip())  # noqa: E731
    user = auth.User(args.name.lower(), args.role, split(args.services), split(args.areas),
                     (args.email or "").lower())
    try:
        auth.save_user(user, password)
    except ValueError as exc:
        print(f"users: {exc}", file=sys.stderr)
        return 1
    audit.record(_os_user(), "user_saved", user=user.username, role=user.role, via="cli")
    print(f"Saved {user.username} ({user.role}) in {auth.users_path()}.")
    return 0


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
    users = sub.add_parser("users", help="add or list dashboard users")
    users.add_argument("action", choices=["add", "list"])
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


def main(argv: list[str] | None = None) -> int:
    cfg = settings.get()
    parser = argparse.ArgumentParser(prog="service-insights", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the dashboard (builds the sample on first start)")
    run.add_argument("--port", type=int, default=8501)
    run.add_argument("--address", default=None, help="e.g. 127.0.0.1")
    run.add_argument("--headless", action="store_true", help="do not open a browser")
    run.set_defaults(func=_run)
    sample = sub.add_parser("sample", help="build the synthetic sample database")
    sample.add_argument("--cases", type=int, default=cfg.sample_cases)
    sample.add_argument("--seed", type=int, default=cfg.sample_seed)
    sample.add_argument("--out", default=None, help=f"default: {cfg.db_path}")
    sample.set_defaults(func=_sample)
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
    export.set_defaults(func=_export)
    _add_users_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
