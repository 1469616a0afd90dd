"""Honest repeat rates: is a Marac repeat rate built on a full 12-month look-back?

A referral is a repeat when the same victim was heard at the same Marac in the 365 days
before (SafeLives). A referral heard less than 365 days after the store's first referral
for its Marac area may be a repeat of one the store never saw, so a repeat rate over such
referrals is understated: the first year of a new store showed 18.5% against about 32%
later, and every service's rate fell "below the expected range". The store works the
date out per area (store.marac_sequence.lookback_complete_from; on the views,
`has_full_lookback`); a query file asks for the check with the header key
`lookback: marac`. The chart, its caption, its exports and the report pack then say
"look-back incomplete" for the period (or, on a trend, for each quarter) where it is, and
the repeat-rate finding rule leaves those rows out in its own SQL.

What is shown is only whether any referral behind a figure lacks its look-back and the
month the latest area's data begins: no count, so nothing here needs disclosure control.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import Scope, scoped_sql

KINDS = ("marac",)
"""What `lookback:` may name: the Marac repeat definition's 12-month look-back."""

FLAG = "look-back incomplete"

_SQL = """
select quarter_label,
       bool_or(not has_full_lookback) as incomplete,
       max(lookback_complete_from)    as complete_from
from marac_referrals
where meeting_date between $lookback_start and $lookback_end
group by quarter_label
"""


@dataclass(frozen=True)
class Lookback:
    incomplete_quarters: tuple[str, ...] = ()
    """Quarter labels with a referral heard before its area had 12 months of data."""
    data_from: dt.date | None = None
    """The latest first day of data among the areas behind the flagged referrals."""

    @property
    def incomplete(self) -> bool:
        return bool(self.incomplete_quarters)


def statement(scope: Scope, start: dt.date, end: dt.date) -> tuple[str, dict]:
    """The check's SQL and parameters (the benchmark runs the same statement raw, so its
    comparison with the product is like with like)."""
    text, _ = scoped_sql(_SQL)
    return text, {**scope.params(), "lookback_start": start, "lookback_end": end}


def check(store, scope: Scope, start: dt.date, end: dt.date, settings) -> Lookback:
    """The look-back of every referral in `scope` heard from `start` to `end`."""
    text, params = statement(scope, start, end)
    res = store.query(text, params,
                      timeout_s=settings.query_timeout_s, max_rows=settings.max_rows)
    frame = res.frame
    if frame.height == 0:  # no referrals at all: nothing to flag (columns may be untyped)
        return Lookback()
    frame = frame.filter(pl.col("incomplete").cast(pl.Boolean).fill_null(False))
    if frame.height == 0:
        return Lookback()
    latest = frame["complete_from"].max()
    return Lookback(tuple(sorted(frame["quarter_label"].to_list())),
                    latest.replace(year=latest.year - 1) if latest is not None else None)


def note(mine: Lookback, benchmark: Lookback | None, period: Period, trend: bool) -> str:
    """The sentence under the chart (and in every export) when a look-back is short."""
    if not mine.incomplete and not (benchmark and benchmark.incomplete):
        return ""
    starts = [lb.data_from for lb in (mine, benchmark) if lb and lb.data_from]
    since = f" (its data begins in {max(starts):%B %Y})" if starts else ""
    where = ("Some quarters" if trend else "This period") if mine.incomplete \
        else "The benchmark"
    verb = "include" if where == "Some quarters" else "includes"
    return (f"Look-back incomplete: {where} {verb} Marac referrals heard less than 12 "
            f"months after the store's data for their Marac area begins{since}, so "
            "repeats of referrals before then cannot be seen and the repeat rate is "
            "understated. No finding is drawn from it.")


def row_flag(res, x_value) -> str:
    """The look-back note column's text for one row of a chart's data."""
    lb = getattr(res, "lookback", None)
    if lb is None:
        return ""
    if not lb.incomplete:
        return "complete"
    trend = "trend_start" in res.spec.params and res.spec.x == "quarter_label"
    if trend:
        return FLAG if x_value in lb.incomplete_quarters else "complete"
    return FLAG
