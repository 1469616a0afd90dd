"""Recent-trend markers for annual proportions, by OHID Fingertips' method.

Why: a line over quarters shows movement, but not whether a service is really getting
better or worse. Fingertips ("Fingertips trend markers", OHID public health technical
guidance, https://fingertips.phe.org.uk/static-reports/public-health-technical-guidance/
Presentation/Trend_markers.html) marks the recent trend of an indicator from its most
recent five annual values, only for yearly data (monthly and quarterly series are not
tested), only with at least five points and no breaks. For a proportion it uses the
chi-squared test for linear trend (Armitage; Altman, Practical Statistics for Medical
Research, 1991, pp 261-265), with the year as the score:

    p = sum(r) / sum(n)             (the pooled proportion)
    t_bar = sum(n * t) / sum(n)     (the mean score, weighted by each year's base)
    chi2 = [sum(r * t) - sum(r) * t_bar]^2 / (p (1 - p) [sum(n * t^2) - sum(n) * t_bar^2])

on one degree of freedom. A trend is marked only when chi2 exceeds the critical value at
SIGNIFICANCE (two-sided) and the series has no outlier; otherwise "no significant
change". Both rules are Fingertips' own code (ukhsa-collaboration/fingertips-open,
PholioVisualisationWS/Analysis/TrendMarkers/TrendMarkerCalculator.cs,
`IsSignificantForProportions`): the critical value there is 9.54953570608324, the
chi-squared value on one degree of freedom at p = 0.002 (99.8% confidence), and the
outlier check fits the least-squares slope of the log-odds log(r / (n - r)) on the year
score over all five years and over each four left when one year is dropped; all six
slopes must have the same sign, so a trend that rests on one unusual year is not marked.
A year with a count of 0 or equal to its base has no log-odds; Fingertips' check then
cannot pass, and no trend is marked. The direction comes from the sign of the
numerator. Where a measure has a polarity (higher is better or worse)
the marker says "getting better" or "getting worse"; where it has none (a share of
clients at high risk describes the caseload, not the service's quality) it says
"increasing" or "decreasing" only.

The counts given here must be the ones the viewer sees: protected (perturbed) counts for
anyone who gets perturbed figures (catalogue/results.py), so a marker never rests on an
exact count the viewer may not see. A year whose count or base is suppressed or withheld
breaks the series, and no marker is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

POINTS = 5
"""Fingertips tests the most recent five annual values."""
SIGNIFICANCE = 0.002
"""Two-sided significance level for a marked trend (0.2%, Fingertips' 99.8%)."""
CRITICAL = {0.05: 3.841459, 0.01: 6.634897, 0.002: 9.549536, 0.001: 10.827566}
"""The chi-squared critical values on one degree of freedom."""

HIGHER_IS_BETTER, LOWER_IS_BETTER, NO_POLARITY = "higher", "lower", "none"

NO_CHANGE = "No significant change"
NOT_ENOUGH = "Not enough years"


@dataclass(frozen=True)
class Trend:
    marker: str
    """"Increasing and getting worse", "Decreasing", "No significant change", ..."""
    statistic: float | None = None
    direction: int = 0
    """+1 increasing, -1 decreasing, 0 none or not tested."""
    years: tuple[str, ...] = ()

    @property
    def worse(self) -> bool:
        return self.marker.endswith("getting worse")

    @property
    def symbol(self) -> str:
        if self.direction > 0:
            return "▲"
        if self.direction < 0:
            return "▼"
        return "●" if self.statistic is not None else "○"


def chi2_trend(counts: Sequence[float], bases: Sequence[float],
               scores: Sequence[float] | None = None) -> tuple[float, float]:
    """The chi-squared statistic for linear trend in proportions, and its signed
    numerator (the direction). Raises ValueError when it cannot be computed."""
    if len(counts) != len(bases) or len(counts) < 2:
        raise ValueError("counts and bases must be the same length, two or more")
    scores = list(scores) if scores is not None else list(range(1, len(counts) + 1))
    n_total = float(sum(bases))
    r_total = float(sum(counts))
    if n_total <= 0:
        raise ValueError("no cases")
    p = r_total / n_total
    if p <= 0 or p >= 1:
        raise ValueError("the proportion is 0 or 1 in every year: no variance")
    t_bar = sum(n * t for n, t in zip(bases, scores, strict=True)) / n_total
    numerator = sum(r * t for r, t in zip(counts, scores, strict=True)) - r_total * t_bar
    spread = sum(n * t * t for n, t in zip(bases, scores, strict=True)) - n_total * t_bar ** 2
    if spread <= 0:
        raise ValueError("the scores do not vary")
    return numerator ** 2 / (p * (1 - p) * spread), numerator


def no_outlier(counts: Sequence[float], bases: Sequence[float]) -> bool:
    """Fingertips' outlier check: the ordinary least-squares slope of the log-odds on the
    year score (1..k) has the same sign over all years and with each one year left out.
    False when a year's log-odds are undefined (a count of 0 or equal to its base)."""
    if any(c <= 0 or c >= b for c, b in zip(counts, bases, strict=True)):
        return False
    points = [(t, math.log(c / (b - c)))
              for t, (c, b) in enumerate(zip(counts, bases, strict=True), start=1)]
    signs = set()
    for drop in range(len(points) + 1):  # 0 keeps every year
        kept = [(t, v) for t, v in points if t != drop]
        k = len(kept)
        sum_t = sum(t for t, _ in kept)
        sum_v = sum(v for _, v in kept)
        slope = ((k * sum(t * v for t, v in kept) - sum_t * sum_v)
                 / (k * sum(t * t for t, _ in kept) - sum_t ** 2))
        signs.add(slope < 0)  # Fingertips counts a zero slope with the positive ones
    return len(signs) == 1


def recent_trend(years: Sequence[str], counts: Sequence[float | None],
                 bases: Sequence[float | None], polarity: str = NO_POLARITY,
                 significance: float = SIGNIFICANCE) -> Trend:
    """The marker for the most recent POINTS consecutive financial years ("2020-21").

    `years` must be in order; a missing year, or a suppressed or withheld count or base
    (None) among the last five, gives NOT_ENOUGH, as Fingertips does for a broken
    series."""
    rows = list(zip(years, counts, bases, strict=True))[-POINTS:]
    if len(rows) < POINTS or any(c is None or b is None or b <= 0 for _, c, b in rows):
        return Trend(NOT_ENOUGH)
    starts = [int(y[:4]) for y, _, _ in rows]
    if starts != list(range(starts[0], starts[0] + POINTS)):
        return Trend(NOT_ENOUGH, years=tuple(y for y, _, _ in rows))
    label = tuple(y for y, _, _ in rows)
    try:
        stat, numerator = chi2_trend([c for _, c, _ in rows], [b for _, _, b in rows])
    except ValueError:
        return Trend(NO_CHANGE, None, 0, label)
    if (stat <= CRITICAL[significance] or numerator == 0
            or not no_outlier([c for _, c, _ in rows], [b for _, _, b in rows])):
        return Trend(NO_CHANGE, stat, 0, label)
    direction = 1 if numerator > 0 else -1
    word = "Increasing" if direction > 0 else "Decreasing"
    if polarity == NO_POLARITY:
        return Trend(word, stat, direction, label)
    better = (direction > 0) == (polarity == HIGHER_IS_BETTER)
    return Trend(f"{word} and getting {'better' if better else 'worse'}", stat, direction, label)


METHOD_NOTE = (
    "Trend: OHID Fingertips' recent-trend method: the chi-squared test for linear trend "
    "on the last five financial years (each year's protected count and base), marked "
    "only when significant at Fingertips' 99.8% level and no single year drives it; "
    "quarterly figures are not tested.")


TREND_QUERY = "overview/headline_rates_by_year"
"""The annual series of the headline measures (one row per year and measure, with its
protected count, base and the measure's polarity), drawn on Overview and marked on Home."""


@dataclass(frozen=True)
class MeasureTrend:
    measure: str
    polarity: str
    latest_year: str | None
    latest: float | None
    """The latest year's rate (protected), in percent."""
    comparator: float | None
    """The comparator's rate for the same year, when there is one."""
    worse_than_comparator: bool
    """The latest year's 95% interval lies wholly on the worse side of the comparator."""
    trend: Trend

    @property
    def alert(self) -> bool:
        """Fingertips' flag: worse than the comparator and getting worse."""
        return self.worse_than_comparator and self.trend.worse


def measure_trends(result) -> list[MeasureTrend]:
    """Each measure of a TREND_QUERY result (catalogue/results.ChartResult) with its
    marker, judged on the protected counts the viewer sees, and its comparison with the
    benchmark for the latest year."""
    from service_insights.findings import stats

    if result.data is None:
        return []
    frame = result.data.frame
    bench = {}
    if result.benchmark is not None:
        for row in result.benchmark.frame.iter_rows(named=True):
            bench[(row["measure"], row["financial_year"])] = row["pct"]
    out = []
    for measure in dict.fromkeys(frame["measure"].to_list()):
        rows = sorted((r for r in frame.iter_rows(named=True) if r["measure"] == measure),
                      key=lambda r: r["financial_year"])
        polarity = rows[0]["polarity"] or NO_POLARITY
        trend = recent_trend([r["financial_year"] for r in rows], [r["n"] for r in rows],
                             [r["base"] for r in rows], polarity)
        last = rows[-1]
        comparator = bench.get((measure, last["financial_year"]))
        worse = False
        if comparator is not None and last["n"] is not None and last["base"]:
            interval = stats.wilson(int(last["n"]), int(last["base"]))
            if interval is not None and polarity == HIGHER_IS_BETTER:
                worse = interval.high < comparator
            elif interval is not None and polarity == LOWER_IS_BETTER:
                worse = interval.low > comparator
        out.append(MeasureTrend(measure, polarity, last["financial_year"], last["pct"],
                                comparator, worse, trend))
    return out
