"""Disclosure control: what every number passes through before anyone sees or exports it.

Counts reach here already perturbed by the cell key method where the viewer needs it
(catalogue/results.py decides, protection/cellkey.py adds the noise): suppression is
judged on the perturbed counts, as ONS does, so a shown count and its "<5" are both
consistent across every table the same records appear in.

Counts from 1 to threshold-1 are suppressed (shown "<5"); where one cell of a group is
suppressed, the next-smallest is too, so it cannot be recovered from the group's total
(secondary suppression, along every dimension of the table); rates and averages on a
suppressed or small base are withheld. It runs in the rendering path for charts, tables,
KPIs and exports alike and takes its rules from settings, never from a query header.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

WITHHELD_TEXT = "–"  # an en dash: the cell exists but is not shown


@dataclass(frozen=True)
class Rules:
    threshold: int = 5
    min_base: int = 10


@dataclass
class Protected:
    frame: pl.DataFrame
    """The result with every suppressed or withheld cell set to null."""
    hidden: dict[str, list[bool]]
    """Per protected column, which rows were hidden."""
    primary: int = 0
    secondary: int = 0
    withheld: int = 0
    rules: Rules = field(default_factory=Rules)
    perturbed: bool = False
    """The counts carry cell-key noise (protection/cellkey.py)."""
    unkeyed: tuple[str, ...] = ()
    """Columns withheld whole because the cell-key pass could not key them."""
    quantile_bases: tuple[tuple[float, int], ...] = ()
    """Each quantile shown (0.5, 0.9) with the base it needs (quantile_base)."""

    @property
    def any_hidden(self) -> bool:
        return bool(self.primary or self.secondary or self.withheld)

    def note(self) -> str:
        """One sentence for under a chart or in an export's footnote."""
        t = self.rules.threshold
        parts = [f"Counts from 1 to {t - 1} are shown as <{t}"]
        if self.secondary:
            parts.append(f"{self.secondary} more cell{'s' if self.secondary != 1 else ''} "
                         "withheld so small numbers cannot be worked out from totals")
        parts.append(f"rates and averages need a base of at least {self.rules.min_base}")
        for q, b in self.quantile_bases:
            name = "medians" if q == 0.5 else f"{_ordinal(round(100 * q))} percentiles"
            parts.append(f"{name} need at least {b} cases")
        text = "; ".join(parts) + "."
        if self.perturbed:
            text = ("Counts are perturbed: small random noise is added to each (the cell key "
                    "method, as in ONS's Census 2021 tables), so figures may not add up "
                    "exactly. " + text)
        if self.unkeyed:
            text += (f" {', '.join(self.unkeyed)} could not be perturbed, so "
                     f"{'it is' if len(self.unkeyed) == 1 else 'they are'} withheld.")
        if self.any_hidden:
            hidden = self.primary + self.secondary + self.withheld
            text = f"Small numbers withheld ({hidden} value{'s' if hidden != 1 else ''}). " + text
        return text

    def display(self) -> pl.DataFrame:
        """The frame as text for tables and CSV: '<5' for small counts, '–' for withheld."""
        out = {}
        for col in self.frame.columns:
            series = self.frame[col]
            if col in self.hidden:
                shown = []
                for value, hid, raw in zip(series.to_list(), self.hidden[col],
                                           self._raw[col], strict=True):
                    if hid:
                        is_small_count = (col in self._count_cols and raw is not None
                                          and 0 < raw < self.rules.threshold)
                        shown.append(f"<{self.rules.threshold}" if is_small_count
                                     else WITHHELD_TEXT)
                    else:
                        shown.append(_fmt(value))
                out[col] = shown
            else:
                out[col] = [_fmt(v) for v in series.to_list()]
        return pl.DataFrame(out, schema={c: pl.String for c in out})

    _raw: dict[str, list] = field(default_factory=dict, repr=False)
    _count_cols: frozenset[str] = frozenset()


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def quantile_base(q: float, min_base: int) -> int:
    """The smallest base a quantile may be shown on: at least `min_base` cases on each side
    of it (20 for a median, 100 for a 90th percentile with the default 10). A quantile is
    one case's own value; over a few cases the top decile is the longest wait or stay of
    one or two people, which the rule for averages (a base of 10) would let through."""
    tail = min(q, 1 - q)
    return max(min_base, math.ceil(min_base / tail - 1e-9))


def _groups(rows: int, frame: pl.DataFrame, by: Sequence[str]) -> Iterable[list[int]]:
    if not by:
        yield list(range(rows))
        return
    keyed: dict[tuple, list[int]] = {}
    cols = [frame[c].to_list() for c in by]
    for i in range(rows):
        keyed.setdefault(tuple(c[i] for c in cols), []).append(i)
    yield from keyed.values()


def protect(
    frame: pl.DataFrame,
    *,
    counts: Sequence[str] = (),
    rates: Mapping[str, tuple[str, str]] | None = None,
    measures: Mapping[str, str] | None = None,
    dims: Sequence[str] = (),
    rules: Rules | None = None,
    perturbed: bool = False,
    unkeyed: Sequence[str] = (),
    quantiles: Mapping[str, Sequence[float | None]] | None = None,
) -> Protected:
    """Apply primary and secondary suppression and withhold rates on small bases.

    `rates` maps a rate column to its (count column, base column); `measures` maps an
    average or median column to its base column; `dims` are the columns that make the
    table's groups (x and series of a chart); `quantiles` gives, for a measure that is a
    quantile, each row's quantile, which needs a larger base (quantile_base).
    """
    quantiles = dict(quantiles or {})
    rules = rules or Rules()
    rates = dict(rates or {})
    measures = dict(measures or {})
    present = set(frame.columns)
    n = frame.height
    rate_counts = [c for c, _ in rates.values()]
    bases = [b for _, b in rates.values()] + list(measures.values())
    count_cols = [c for c in dict.fromkeys([*counts, *rate_counts, *bases]) if c in present]
    raw = {c: frame[c].to_list() for c in frame.columns}

    def small(v) -> bool:
        return v is not None and 0 < v < rules.threshold

    hidden = {c: [small(v) for v in raw[c]] for c in count_cols}
    primary = sum(sum(h) for h in hidden.values())
    unkeyed = tuple(c for c in unkeyed if c in present)
    for c in unkeyed:
        hidden[c] = [True] * n

    # Secondary suppression on the cells that add up to totals (counts, rate numerators).
    # A rate's numerators are parts of one total only where they share a base, so rows
    # of unrelated measures (each with its own base) do not drag each other down.
    secondary = 0
    base_of = {c: b for c, b in rates.values() if b in present}
    additive = [c for c in dict.fromkeys([*counts, *rate_counts]) if c in present]
    dims = [d for d in dims if d in present]
    changed = True
    while changed:
        changed = False
        for col in additive:
            values, mask = raw[col], hidden[col]
            extra = [base_of[col]] if col in base_of else []
            for d in dims or [None]:
                others = [o for o in dims if o != d] + extra
                for rows in _groups(n, frame, others):
                    if len(rows) < 2 or sum(mask[i] for i in rows) != 1:
                        continue
                    candidates = [i for i in rows if not mask[i]
                                  and values[i] is not None and values[i] > 0]
                    if not candidates:
                        continue
                    pick = min(candidates, key=lambda i: values[i])
                    mask[pick] = True
                    secondary += 1
                    changed = True

    withheld = n * len(unkeyed)
    for rate, (count, base) in rates.items():
        if rate not in present:
            continue
        flags = []
        for i in range(n):
            b = raw[base][i] if base in present else None
            hide = (b is None or b < rules.min_base
                    or (count in hidden and hidden[count][i])
                    or (base in hidden and hidden[base][i]))
            flags.append(hide and raw[rate][i] is not None)
        withheld += sum(flags)
        hidden[rate] = flags
    for measure, base in measures.items():
        if measure not in present:
            continue
        flags = []
        for i in range(n):
            b = raw[base][i] if base in present else None
            hide = b is None or b < rules.min_base or (base in hidden and hidden[base][i])
            q = quantiles[measure][i] if measure in quantiles else None
            if q is not None and b is not None and b < quantile_base(q, rules.min_base):
                hide = True
            flags.append(hide and raw[measure][i] is not None)
        withheld += sum(flags)
        hidden[measure] = flags

    # Eager: one Series per hidden column with its hidden cells set to null (with_columns
    # would go through the lazy engine, a millisecond or more a table).
    masked = pl.DataFrame([
        frame[col].clone().scatter([i for i, h in enumerate(hidden[col]) if h], None)
        if col in hidden and any(hidden[col]) else frame[col]
        for col in frame.columns
    ]) if hidden and n else frame
    return Protected(masked, hidden, primary, secondary, withheld, rules,
                     _raw=raw, _count_cols=frozenset(count_cols), perturbed=perturbed,
                     unkeyed=unkeyed,
                     quantile_bases=tuple(sorted(
                         {(q, quantile_base(q, rules.min_base))
                          for m, qs in quantiles.items() if m in present for q in qs
                          if q is not None})))
