"""The cell key method applied by hand, for expectations independent of the product's code.

Reads the ptable CSV with the csv module and applies ONS's rules as their reference
implementation states them (cell key = sum of record keys mod 256; pcv = the count up to
750, else ((count - 1) mod 250) + 501; a missing (pcv, ckey) adds nothing; zero stays
zero). Record keys are read from the store file with plain DuckDB.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import duckdb

from service_insights import settings
from service_insights.store import db

PTABLE = settings.ROOT / "data" / "ptable.csv"


@functools.lru_cache(maxsize=4)
def ptable(path: Path = PTABLE) -> dict[tuple[int, int], int]:
    with open(path, newline="") as fh:
        return {(int(r["pcv"]), int(r["ckey"])): int(r["pvalue"]) for r in csv.DictReader(fh)}


def perturb(count: int, key_sum: int, path: Path = PTABLE) -> int:
    if count == 0:
        return 0
    table = ptable(path)
    key_range = max(k for _, k in table) + 1
    pcv = count if count <= 750 else (count - 1) % 250 + 501
    return count + table.get((pcv, key_sum % key_range), 0)


def shown(count: int, key_sum: int, threshold: int = 5) -> int | None:
    """What a viewer who needs perturbation sees: the perturbed count, None if 1 to 4."""
    value = perturb(count, key_sum)
    return None if 0 < value < threshold else value


def truth(db_path: Path, sql: str, params: dict | None = None) -> tuple[int, int]:
    """(count, sum of record keys) from `sql`, which selects those two from store tables."""
    con = duckdb.connect(str(db_path), read_only=True, config=db.read_only_config())
    try:
        n, k = con.execute(sql, params or {}).fetchone()
    finally:
        con.close()
    return int(n), int(k or 0)
