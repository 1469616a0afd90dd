"""The every-page report pack, before and after a change, on a shared machine.

    python benchmarks/pack_compare.py --before /path/to/old/checkout [--pairs 5]

Wall time on a machine other work is also using moves with that work, so two runs an
hour apart cannot be compared. This starts one pack process per checkout (each with its
own warm image browser, on the same 1M-case store) and asks them for a pack in turn,
after-before-after-before..., so each pair meets the same load. It prints each side's
median and the median of the paired ratios, which is what to quote. Nothing is asserted:
the target (under 10 s at 1M cases) is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import run as bench  # noqa: E402 - benchmarks/run.py: the store and the scope

_WORKER = bench.PACK_PRELUDE + """
report_pack.build(store, scope, period, cfg)  # warm: the browser starts, files are read
print("ready", flush=True)
for line in sys.stdin:
    t = time.perf_counter()
    pack = report_pack.build(store, scope, period, cfg)
    print(f"{time.perf_counter() - t:.3f} {pack.charts} {len(pack.omitted)}", flush=True)
"""


def start(tree: Path, store: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(store), bench.SERVICE, bench.FY],
                            cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"the pack process in {tree} did not start: {line}")
    return proc


def one(proc: subprocess.Popen) -> tuple[float, int, int]:
    proc.stdin.write("go\n")
    proc.stdin.flush()
    seconds, charts, omitted = proc.stdout.readline().split()
    return float(seconds), int(charts), int(omitted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, type=Path,
                        help="another checkout of the repository (the code before)")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args(argv)
    ctx = bench.Context([1_000_000], 3, True)
    bench._ensure_stores(ctx)
    store = ctx.stores[1_000_000]
    procs = {"before": start(args.before.resolve(), store), "after": start(ROOT, store)}
    times: dict[str, list[float]] = {"before": [], "after": []}
    try:
        for i in range(args.pairs):
            order = ("after", "before") if i % 2 else ("before", "after")
            for side in order:
                seconds, charts, omitted = one(procs[side])
                times[side].append(seconds)
                print(f"pair {i + 1} {side:6} {seconds:6.1f} s ({charts} charts, "
                      f"{omitted} omitted)", flush=True)
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait(60)
    ratios = [a / b for a, b in zip(times["after"], times["before"], strict=True)]
    print(f"\nevery-page pack at 1M cases ({bench.SERVICE}, {bench.FY}), {args.pairs} pairs:")
    for side in ("before", "after"):
        t = times[side]
        print(f"  {side:6} median {statistics.median(t):5.1f} s  (min {min(t):.1f}, "
              f"max {max(t):.1f})")
    print(f"  after / before, median of paired ratios: {statistics.median(ratios):.2f} "
          f"(target: under {bench.TARGET_PACK_S} s on a quiet machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
