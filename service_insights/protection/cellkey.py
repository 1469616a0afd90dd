"""The cell key method: consistent noise on counts, as ONS used for Census 2021.

Every case and Marac referral carries a random record key (0 to 255, stored, never shown).
A cell's key is the sum of its records' keys modulo 256; the perturbation table (ptable)
gives, for the cell's value and key, the noise to add. The same records always make the
same cell key, so the same count gets the same noise on every page, export and query:
differencing two tables or averaging repeats gives noise, never the true value.

The rules are ONS's own, as in their reference implementation (`cell-key-perturbation`
3.1.0, `create_perturbed_table`), so the two give equal counts cell for cell:

- cell key = (sum of record keys) mod (largest ckey in the ptable + 1);
- the ptable is looked up by pcv, the count itself up to 750; a larger count wraps to
  ((count - 1) mod 250) + 501, so the table needs rows for 1 to 750 only;
- a (pcv, ckey) pair missing from the table adds no noise; a zero stays zero (pcv 0 has
  no row: an empty cell has no records to perturb).

The ptable is data (data/ptable.csv, in ONS's pcv,ckey,pvalue format; `SI_PTABLE`
swaps it, for example for ONS's stricter "10_5 rule" table). data/DICTIONARY.md states
how the default was made; `default_ptable()` below makes it again.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import polars as pl

MAX_PCV = 750
WRAP_FROM, WRAP_SIZE, WRAP_BASE = 750, 250, 501
"""ONS's pcv for counts above 750: ((count - 1) % 250) + 501."""

DEFAULT_SEED = 20210321
"""Census day 2021: the seed of the default ptable's key-to-noise assignment."""

# Noise for each pcv as {noise: how many of the 256 cell keys get it}; every row has mean
# zero and no count goes below zero.
# - Counts from 1 to 4 always move (never shown as themselves). A 1 becomes 0 or 2, a 2
#   becomes 1, 3 or 4 (never 0), a 3 becomes 1, 2 or 4 (never 5): so a shown 0 means a
#   true 0 or 1, and a shown 5 means a true 4 or more. Without those two rules, parts
#   shown as 0 or "<5" beside a total pinned the parts down (0 + 0 + 0 = 5 can only be
#   1 + 1 + 1), which the catalogue-wide attack in tests/test_cellkey.py found.
# - From 5 up, the noise is 0 for 102 keys in 256 (40%), +-1 for 51 each, +-2 for 24
#   each and +-3 for 2 each: rarely more than 2, so large counts stay close, and the rare
#   +-3 keeps "the total minus the other parts" from pinning a small part at the edge of
#   the noise's range.
_SMALL = {
    1: {-1: 128, 1: 128},
    2: {-1: 149, 1: 65, 2: 42},
    3: {-2: 42, -1: 65, 1: 149},
    4: {-2: 51, -1: 77, 1: 77, 2: 51},
}
_LARGE = {-3: 2, -2: 24, -1: 51, 0: 102, 1: 51, 2: 24, 3: 2}


class PtableError(Exception):
    """The ptable file cannot be used; the message names the file and the problem."""


def default_ptable(seed: int = DEFAULT_SEED) -> pl.DataFrame:
    """The default ptable (data/ptable.csv): for each pcv, the noise values above dealt
    to the 256 cell keys in a random order drawn from `seed`."""
    rng = np.random.default_rng(seed)
    rows_pcv, rows_ckey, rows_p = [], [], []
    for pcv in range(1, MAX_PCV + 1):
        spread = _SMALL.get(pcv, _LARGE)
        noise = np.repeat(list(spread), list(spread.values()))
        assert noise.size == 256
        rng.shuffle(noise)
        rows_pcv.append(np.full(256, pcv))
        rows_ckey.append(np.arange(256))
        rows_p.append(noise)
    return pl.DataFrame({"pcv": np.concatenate(rows_pcv), "ckey": np.concatenate(rows_ckey),
                         "pvalue": np.concatenate(rows_p)}).cast(pl.Int64)


class Ptable:
    """A loaded ptable: noise[pcv, ckey], and the key range (ckey max + 1)."""

    def __init__(self, frame: pl.DataFrame, source: str):
        self.source = source
        missing = {"pcv", "ckey", "pvalue"} - set(frame.columns)
        if missing:
            raise PtableError(f"{source} is not a ptable: it has no "
                              f"{', '.join(sorted(missing))} column (ONS's format is "
                              "pcv,ckey,pvalue).")
        try:
            frame = frame.select(pl.col("pcv", "ckey", "pvalue").cast(pl.Int64, strict=True))
        except pl.exceptions.PolarsError:
            raise PtableError(f"{source}: pcv, ckey and pvalue must be whole numbers.") from None
        if frame.null_count().sum_horizontal()[0]:
            raise PtableError(f"{source}: a pcv, ckey or pvalue cell is empty.")
        bad = frame.filter((pl.col("pcv") < 1) | (pl.col("pcv") > MAX_PCV)
                           | (pl.col("ckey") < 0) | (pl.col("ckey") > 4095))
        if bad.height:
            row = bad.row(0, named=True)
            raise PtableError(f"{source}: pcv {row['pcv']}, ckey {row['ckey']} is outside "
                              f"pcv 1 to {MAX_PCV} and ckey 0 to 4095.")
        negative = frame.filter(pl.col("pcv") + pl.col("pvalue") < 0)
        if negative.height:
            row = negative.row(0, named=True)
            raise PtableError(f"{source}: pcv {row['pcv']}, ckey {row['ckey']} would make a "
                              f"negative count (pvalue {row['pvalue']}).")
        if frame.select(pl.struct("pcv", "ckey").is_duplicated().any()).item():
            raise PtableError(f"{source}: a (pcv, ckey) pair appears twice.")
        self.key_range = int(frame["ckey"].max()) + 1 if frame.height else 256
        self._spreads: dict[int, frozenset[int]] = {}
        self.noise = np.zeros((MAX_PCV + 1, self.key_range), dtype=np.int64)
        self.noise[frame["pcv"].to_numpy(), frame["ckey"].to_numpy()] = frame["pvalue"].to_numpy()

    def pcv(self, counts: np.ndarray) -> np.ndarray:
        return np.where(counts > WRAP_FROM, (counts - 1) % WRAP_SIZE + WRAP_BASE, counts)

    def perturb(self, counts, key_sums) -> list[int | None]:
        """Perturbed counts for cells with these true counts and record-key sums (None
        stays None: a cell with no value has nothing to perturb)."""
        n = np.array([-1 if c is None else int(c) for c in counts], dtype=np.int64)
        k = np.array([int(x or 0) % self.key_range for x in key_sums], dtype=np.int64)
        out = self.perturb_array(n, k).tolist()
        return [None if c is None else v for c, v in zip(counts, out, strict=True)]

    def perturb_array(self, counts: np.ndarray, key_sums: np.ndarray) -> np.ndarray:
        """The same on whole arrays at once (one table lookup, no Python loop per cell): a
        count of zero or less (a stand-in for a missing one) is returned as it is."""
        n = np.asarray(counts, dtype=np.int64)
        k = np.asarray(key_sums, dtype=np.int64) % self.key_range
        pcv = np.clip(np.where(n > WRAP_FROM, (n - 1) % WRAP_SIZE + WRAP_BASE, n), 0, MAX_PCV)
        return np.where(n > 0, n + self.noise[pcv, k], n)

    def perturb_series(self, counts: pl.Series, key_sums: pl.Series) -> pl.Series:
        """A count column perturbed by its key-sum column (nulls stay null, the column
        keeps its name); for results.py and the workbench, which hold Polars columns."""
        missing = counts.null_count()
        n = counts.fill_null(-1) if missing else counts
        k = key_sums.fill_null(0) if key_sums.null_count() else key_sums
        out = self.perturb_array(n.to_numpy(), k.to_numpy())
        series = pl.Series(counts.name, out, dtype=pl.Int64)
        if missing:
            series = series.scatter(counts.is_null().arg_true(), None)
        return series

    def spread(self, pcv: int) -> frozenset[int]:
        """The noise values a cell of this pcv can get (what an attacker who knows the
        ptable but not the cell key must allow for)."""
        if pcv <= 0:
            return frozenset({0})
        row = int(self.pcv(np.array(pcv)))
        if row not in self._spreads:
            self._spreads[row] = frozenset(int(v) for v in np.unique(self.noise[row]))
        return self._spreads[row]


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> Ptable:
    try:
        frame = pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise PtableError(f"The ptable {path} could not be read: {exc}") from None
    return Ptable(frame, path)


def load(path: Path) -> Ptable:
    """The ptable at `path`, read once per version of the file."""
    path = Path(path)
    if not path.exists():
        raise PtableError(f"No ptable at {path} (SI_PTABLE).")
    return _load(str(path), path.stat().st_mtime_ns)
