"""Import benchmark: a realistic export of N cases (default 1,000,000) imported into a
fresh store for real records, then imported again (every case replaced).

    python benchmarks/import_benchmark.py [--rows 1000000] [--format csv|parquet|xlsx]

Each import runs in its own process so its wall time and peak memory (RSS) are its own.
Targets for a million rows: under 60 s and 3 GB. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service_insights.ingest import fixture  # noqa: E402
from service_insights.store import registry  # noqa: E402

RUN_IMPORT = """
import resource, sys, time
from service_insights.ingest import importer
t = time.perf_counter()
r = importer.import_file(sys.argv[1], "S01", db_path=sys.argv[2], user="benchmark")
print(f"{r.headline()} [{time.perf_counter() - t:.1f} s inside the import]")
print(r.rows_imported)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(0 if r.imported else 1)
"""


@dataclass(frozen=True)
class Imported:
    headline: str
    rows: int
    wall_s: float
    """Process start included."""
    peak_mb: float


def fresh_store(store: Path) -> None:
    """An empty store for real records with the one service the export belongs to."""
    registry.start_real_store(
        store, [registry.Area("E06000001", "Ashcombe", "North East", 60_000)],
        [registry.Service("S01", "Ashcombe Idva Service", "idva", "E06000001")])


def import_env() -> dict[str, str]:
    """A throwaway pseudonymisation key, and this checkout's package."""
    env = {**os.environ, "SI_PSEUDONYM_KEY": secrets.token_hex(32), "PYTHONPATH": str(ROOT)}
    env.pop("SI_PSEUDONYM_KEY_FILE", None)
    return env


def run_import(export: Path, store: Path, env: dict) -> Imported:
    """Import in a process of its own, so its wall time and peak memory are its alone."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN_IMPORT, str(export), str(store)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{done.stdout.strip()} {done.stderr.strip()[-2000:]}")
    headline, rows, peak_kb = done.stdout.strip().splitlines()[-3:]
    return Imported(headline, int(rows), wall, int(peak_kb) / 1024)


def timed_import(export: Path, store: Path, env: dict) -> None:
    try:
        done = run_import(export, store, env)
    except RuntimeError as exc:
        print(exc)
        return
    print(done.headline)
    print(f"  wall {done.wall_s:.1f} s (process start included), peak RSS "
          f"{done.peak_mb:,.0f} MB, store {store.stat().st_size / 2**20:,.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet", "xlsx"])
    parser.add_argument("--export", default=None,
                        help="keep the export here and reuse it on later runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(args.export or Path(tmp) / f"export.{args.format}")
        # Not "store.duckdb": DuckDB names the catalog after the file, and a catalog
        # called "store" clashes with the schema of that name.
        store = Path(tmp) / "insights.duckdb"
        if not export.exists():
            t = time.perf_counter()
            fixture.write_export(export, args.rows)
            print(f"Wrote {args.rows:,} cases to {export.name} "
                  f"({export.stat().st_size / 2**20:,.0f} MB) in {time.perf_counter() - t:.1f} s")
        fresh_store(store)
        env = import_env()
        print("First import (every case new):")
        timed_import(export, store, env)
        print("Same file again (every case replaced):")
        timed_import(export, store, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
