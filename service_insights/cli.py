"""The command line: start the dashboard, build the synthetic sample, check queries,
register services and import case records."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from service_insights import settings


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


def _import(args: argparse.Namespace) -> int:
    from service_insights import db, importer

    started = time.perf_counter()
    try:
        result = importer.import_file(args.file, args.service, user=args.user)
    except (importer.KeyMissing, importer.ImportRefused, importer.FileUnreadable,
            db.StoreError) as exc:
        print(f"Nothing was imported. {exc}", file=sys.stderr)
        return 1
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
    from service_insights import db, registry

    area = None
    if args.area_name or args.region or args.population:
        if not (args.area_name and args.region and args.population):
            print("A new area needs --area-name, --region and --population together.",
                  file=sys.stderr)
            return 1
        area = registry.Area(args.area, args.area_name, args.region, args.population)
    service = registry.Service(args.id, args.name, args.type, args.area)
    try:
        print(registry.register_service(service, area))
    except (registry.RegistrationError, db.StoreError) as exc:
        print(f"Not registered. {exc}", file=sys.stderr)
        return 1
    return 0


def _services_list(args: argparse.Namespace) -> int:
    from service_insights import registry

    for row in registry.services().iter_rows(named=True):
        print(f"{row['service_id']}\t{row['service_type']}\t{row['area_code']}\t{row['name']}")
    return 0


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
    imp = sub.add_parser("import", help="import a service's case records (CSV, XLSX, Parquet)")
    imp.add_argument("file")
    imp.add_argument("--service", required=True, help="the registered service id, e.g. S01")
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
    add.set_defaults(func=_services_add)
    services.add_parser("list", help="list registered services").set_defaults(
        func=_services_list)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
