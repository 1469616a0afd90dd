"""The command line: start the dashboard, build the synthetic sample, check queries."""

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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
