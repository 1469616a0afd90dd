"""Where things live and the tunable rules (suppression threshold, marking).

Read lazily from the environment on each call so tests and the CLI can point the app at
another store without import-time side effects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The project folder: data/, queries/ and app_pages/ sit beside the package."""


@dataclass(frozen=True)
class Settings:
    db_path: Path
    queries_dir: Path
    schema_path: Path
    suppression_threshold: int
    """Counts from 1 to threshold-1 are shown as "<threshold"."""
    min_rate_base: int
    """A rate needs at least this many cases behind it to be shown."""
    min_other_services: int
    """The all-services benchmark is shown only when at least this many services lie
    outside the viewer's scope, so one service cannot be recovered by subtraction."""
    protective_marking: str
    query_timeout_s: float
    max_rows: int
    sample_cases: int
    sample_seed: int
    ptable_path: Path = ROOT / "data" / "ptable.csv"
    """The cell key method's perturbation table (protection/cellkey.py), ONS format."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a whole number") from exc


def get() -> Settings:
    env = os.environ
    return Settings(
        db_path=Path(env.get("SI_DB_PATH", ROOT / "data" / "insights.duckdb")),
        queries_dir=Path(env.get("SI_QUERIES_DIR", ROOT / "queries")),
        schema_path=ROOT / "data" / "schema.sql",
        suppression_threshold=_int("SI_SUPPRESSION_THRESHOLD", 5),
        min_rate_base=_int("SI_MIN_RATE_BASE", 10),
        min_other_services=_int("SI_MIN_OTHER_SERVICES", 3),
        protective_marking=env.get("SI_PROTECTIVE_MARKING", "OFFICIAL-SENSITIVE"),
        query_timeout_s=float(env.get("SI_QUERY_TIMEOUT_S", "20")),
        max_rows=_int("SI_MAX_ROWS", 50_000),
        sample_cases=_int("SI_SAMPLE_CASES", 50_000),
        sample_seed=_int("SI_SAMPLE_SEED", 20240401),
        ptable_path=Path(env.get("SI_PTABLE", ROOT / "data" / "ptable.csv")),
    )
