"""Is a difference real? Confidence intervals and funnel limits for rates.

Public-health benchmarking tools (Fingertips, the NHS outcomes frameworks) mark an area
"significantly higher" or "lower" only when its confidence interval excludes the
benchmark, and show all areas on a funnel plot so small ones are not flagged for noise.
We do the same for services. The Wilson score interval behaves at small bases and at
rates near 0% or 100%, where the textbook normal interval goes below zero; the SQL
macros `wilson_lower` and `wilson_upper` in data/schema.sql compute the same interval so
that finding rules can test it in SQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959964
"""Two-sided 95%."""
Z998 = 3.090232
"""Two-sided 99.8%, the outer funnel limit used by PHE."""


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    """Both in percent, like the rates in query results."""

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(count: int, base: int, z: float = Z95) -> Interval | None:
    """The Wilson score interval for count/base, in percent; None without a base."""
    if base is None or count is None or base <= 0:
        return None
    # Counts and bases are perturbed independently (cell key method), so a protected
    # count can exceed its protected base: the proportion is at most 1, never more.
    count = min(max(count, 0), base)
    p = count / base
    z2 = z * z
    denom = 1 + z2 / base
    centre = (p + z2 / (2 * base)) / denom
    half = z * math.sqrt(p * (1 - p) / base + z2 / (4 * base * base)) / denom
    # At 0 of n the lower end is exactly 0, at n of n the upper end exactly 100; in floating
    # point they came out as 1e-17 and 99.99999999999999, so a service at 100% was
    # "significantly lower" than a comparator also at 100%.
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == base else min(1.0, centre + half)
    return Interval(100 * low, 100 * high)


HIGHER = "higher"
LOWER = "lower"
SIMILAR = "similar"


def compare(count: int | None, base: int | None, benchmark_rate: float | None) -> str | None:
    """higher / lower / similar: whether the 95% interval excludes the benchmark rate.

    The benchmark (all services) includes the service itself, as Fingertips compares an
    area with England; with at least a few other services in it the overlap is small.
    """
    if benchmark_rate is None:
        return None
    ci = wilson(count, base)
    return None if ci is None else verdict(ci, benchmark_rate)


def verdict(ci: Interval, benchmark_rate: float) -> str:
    """higher / lower / similar for an interval already worked out."""
    if ci.low > benchmark_rate:
        return HIGHER
    if ci.high < benchmark_rate:
        return LOWER
    return SIMILAR


def funnel_limits(centre: float, base: float, z: float) -> tuple[float, float]:
    """Control limits around `centre` (percent) for a unit with `base` cases.

    The binomial normal approximation (Spiegelhalter, 2005), clipped to 0 to 100%.
    """
    p = centre / 100
    half = z * math.sqrt(max(p * (1 - p), 0.0) / base) if base > 0 else 1.0
    return 100 * max(0.0, p - half), 100 * min(1.0, p + half)


def funnel_position(count: int, base: int, centre: float) -> str:
    """Where a unit sits on the funnel: above/below the 95% or 99.8% limits, or within."""
    rate = 100 * count / base
    lo95, hi95 = funnel_limits(centre, base, Z95)
    lo998, hi998 = funnel_limits(centre, base, Z998)
    if rate > hi998:
        return "above 99.8% limit"
    if rate > hi95:
        return "above 95% limit"
    if rate < lo998:
        return "below 99.8% limit"
    if rate < lo95:
        return "below 95% limit"
    return "within limits"


def confidence_level(base: int) -> str:
    """Plain words for how much a rate on this base can be trusted."""
    if base >= 100:
        return "high"
    if base >= 30:
        return "moderate"
    return "low"


def byar(count: int, z: float = Z95) -> tuple[float, float] | None:
    """The 95% interval for a Poisson count by Byar's approximation (as PHE uses for
    counts and rates): a count of events a year, such as Marac cases, not a share.
    Returned as counts, not percent; None for a negative count."""
    if count is None or count < 0:
        return None
    low = 0.0 if count == 0 else count * (1 - 1 / (9 * count) - z / (3 * math.sqrt(count))) ** 3
    up = count + 1
    high = up * (1 - 1 / (9 * up) + z / (3 * math.sqrt(up))) ** 3
    return max(0.0, low), high
