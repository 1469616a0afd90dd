"""Where things live and the tunable rules (suppression threshold, marking).

Read lazily from the environment on each call so tests and the CLI can point the app at
another store without import-time side effects.
"""

from __future__ import annotations

import os
import re
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
    query_memory_limit: str
    """DuckDB's memory_limit for the dashboard's read-only store (charts, exports and the
    workbench): a runaway query (one cross join reached 6.3 GB) is refused, not the machine
    starved. Nothing spills to disk: records are never copied to temporary files."""
    query_threads: int
    """DuckDB's threads for the read-only store, so one query cannot take every core."""
    sample_cases: int
    sample_seed: int
    session_idle_minutes: int = 30
    """A signed-in session ends after this long without a click (SI_SESSION_IDLE_MINUTES)."""
    session_max_hours: int = 12
    """...and in any case this long after sign-in (SI_SESSION_MAX_HOURS)."""
    ptable_path: Path = ROOT / "data" / "ptable.csv"
    """The cell key method's perturbation table (protection/cellkey.py), ONS format."""
    linkage_key: bool = False
    """SI_LINKAGE_KEY=1: imports derive one more keyed pseudonym from an NHS number, or
    surname and date of birth, the same at every service and Marac (off by default; it
    needs a data-sharing agreement between the services and Maracs, see README)."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a whole number") from exc


def _memory(raw: str) -> str:
    text = raw.strip().replace(" ", "")
    if not re.fullmatch(r"\d+(\.\d+)?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text, re.I):
        raise ValueError(f"environment variable SI_QUERY_MEMORY_LIMIT={raw!r} is not a size "
                         "like 2GB or 500MB")
    return text


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
        query_memory_limit=_memory(env.get("SI_QUERY_MEMORY_LIMIT", "2GB")),
        query_threads=_int("SI_QUERY_THREADS", 2),
        sample_cases=_int("SI_SAMPLE_CASES", 50_000),
        sample_seed=_int("SI_SAMPLE_SEED", 20240401),
        session_idle_minutes=_int("SI_SESSION_IDLE_MINUTES", 30),
        session_max_hours=_int("SI_SESSION_MAX_HOURS", 12),
        ptable_path=Path(env.get("SI_PTABLE", ROOT / "data" / "ptable.csv")),
        linkage_key=env.get("SI_LINKAGE_KEY", "").strip().lower() in ("1", "true", "yes",
                                                                       "on"),
    )
