"""Import benchmark: a realistic export of N cases (default 1,000,000) imported into a
fresh store for real records, then imported again (every case replaced).

    python benchmarks/import_benchmark.py [--rows 1000000] [--format csv|parquet|xlsx]
    python benchmarks/import_benchmark.py --marac [--rows 1000000] [--linkage]

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


RUN_MARAC_IMPORT = """
import resource, sys, time
from service_insights.ingest import importer
t = time.perf_counter()
r = importer.import_marac_file(sys.argv[1], db_path=sys.argv[2], user="benchmark")
u = resource.getrusage(resource.RUSAGE_SELF)
print(f"{r.headline()} [{time.perf_counter() - t:.1f} s inside the import; "
      f"{u.ru_utime + u.ru_stime:.1f} s of CPU in the process, all threads: on a shared "
      "machine the wall time waits for CPU]")
print(r.rows_imported)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(0 if r.imported else 1)
"""

MARAC_AREAS = ("E06000001", "E06000002", "E06000003")


def write_marac_export(path: Path, rows: int, seed: int = 14, linkage: bool = False) -> Path:
    """A Marac coordinators' file of `rows` referrals at three Maracs, as plain columns
    (not the sample generator): victims referred 1 to 6 times over five years, UK dates,
    a third from a registered service's case, most with a perpetrator reference; with
    `linkage`, an NHS number-shaped column for half of them."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    victims = rows // 3
    victim = np.sort(rng.integers(0, victims, rows))
    area = np.array(MARAC_AREAS)[victim % 3]
    day = rng.integers(0, 5 * 365, rows)
    linked = rng.random(rows) < 0.33
    frame = pl.DataFrame({
        "Marac Ref": [f"M{v:07d}" for v in victim],
        "marac_area": area,
        "meeting_date": pl.Series((np.datetime64("2020-04-01") + day).astype("datetime64[D]"))
        .dt.strftime("%d/%m/%Y"),
        "referring_agency": rng.choice(["police", "idva", "health", "housing", "other"], rows,
                                       p=[0.6, 0.2, 0.1, 0.05, 0.05]),
        "children_in_household": rng.integers(0, 5, rows),
        "dash_score": rng.integers(10, 25, rows),
        "perpetrator_ref": [f"P{v:07d}-{k}" for v, k in zip(victim, rng.integers(1, 3, rows),
                                                            strict=True)],
        "service_id": np.where(linked, np.array(["S01", "S02", "S03"])[victim % 3], ""),
        "service_client_ref": np.where(linked, np.char.add("CL", victim.astype(str)), ""),
    })
    if linkage:
        # Made-up NHS numbers, one per victim, with a valid modulus 11 check digit
        # (victims whose nine digits give check 10 have none).
        nine = 400_000_000 + victim
        digits = (nine[:, None] // 10 ** np.arange(8, -1, -1)) % 10
        check = 11 - (digits * np.arange(10, 1, -1)).sum(axis=1) % 11
        check = np.where(check == 11, 0, check)
        number = np.char.add(nine.astype(str), check.astype(str))
        frame = frame.with_columns(pl.Series("NHS Number", np.where(
            (rng.random(rows) < 0.5) & (check != 10), number, "")))
    frame.write_csv(path)
    return path


def fresh_marac_store(store: Path) -> None:
    """Three areas, each with one service, for a Marac file."""
    registry.start_real_store(
        store, [registry.Area(a, f"Area {i}", "North East", 60_000)
                for i, a in enumerate(MARAC_AREAS)],
        [registry.Service(f"S0{i + 1}", f"Idva {i + 1}", "idva", a)
         for i, a in enumerate(MARAC_AREAS)])


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


def run_import(export: Path, store: Path, env: dict, script: str = RUN_IMPORT) -> Imported:
    """Import in a process of its own, so its wall time and peak memory are its alone."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, str(export), str(store)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{done.stdout.strip()} {done.stderr.strip()[-2000:]}")
    headline, rows, peak_kb = done.stdout.strip().splitlines()[-3:]
    return Imported(headline, int(rows), wall, int(peak_kb) / 1024)


def timed_import(export: Path, store: Path, env: dict, script: str = RUN_IMPORT) -> None:
    try:
        done = run_import(export, store, env, script)
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
    parser.add_argument("--marac", action="store_true",
                        help="a Marac coordinators' file (CSV) instead of a cases export")
    parser.add_argument("--linkage", action="store_true",
                        help="with --marac: an NHS number column and SI_LINKAGE_KEY=1")
    args = parser.parse_args()
    if args.marac:
        return marac(args)
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


def marac(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(args.export or Path(tmp) / "marac.csv")
        store = Path(tmp) / "insights.duckdb"
        if not export.exists():
            t = time.perf_counter()
            write_marac_export(export, args.rows, linkage=args.linkage)
            print(f"Wrote {args.rows:,} Marac referrals to {export.name} "
                  f"({export.stat().st_size / 2**20:,.0f} MB) in {time.perf_counter() - t:.1f} s")
        fresh_marac_store(store)
        env = import_env()
        if args.linkage:
            env["SI_LINKAGE_KEY"] = "1"
        print("First import (every referral new):")
        timed_import(export, store, env, RUN_MARAC_IMPORT)
        print("Same file again (every referral replaced):")
        timed_import(export, store, env, RUN_MARAC_IMPORT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
