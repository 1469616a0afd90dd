"""Intervals and funnel limits against published values, not our own output."""

import pytest

from service_insights.findings import stats

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (Wilson score without continuity correction).
NEWCOMBE = [
    (81, 263, 25.53, 36.62),
    (15, 148, 6.24, 16.05),
    (0, 20, 0.0, 16.11),
    (1, 29, 0.61, 17.18),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE)
def test_wilson_matches_newcombe(k, n, low, high):
    ci = stats.wilson(k, n)
    assert ci.low == pytest.approx(low, abs=0.01)
    assert ci.high == pytest.approx(high, abs=0.01)


def test_no_interval_without_a_base():
    assert stats.wilson(0, 0) is None
    assert stats.wilson(None, 10) is None


def test_compare_uses_the_interval_not_the_point():
    # 60/100 = 60%, Wilson 95% CI about 50.2 to 69.1.
    assert stats.compare(60, 100, 50.0) == stats.HIGHER
    assert stats.compare(60, 100, 55.0) == stats.SIMILAR  # point above, CI overlaps
    assert stats.compare(60, 100, 70.0) == stats.LOWER
    assert stats.compare(6, 10, 45.0) == stats.SIMILAR  # same point, tiny base
    assert stats.compare(60, 100, None) is None


def test_funnel_limits_by_hand():
    # p0 = 0.31, n = 100: 0.31 +/- 1.959964 * sqrt(0.31 * 0.69 / 100) = 0.31 +/- 0.09065
    low, high = stats.funnel_limits(31.0, 100, stats.Z95)
    assert low == pytest.approx(21.935, abs=0.01)
    assert high == pytest.approx(40.065, abs=0.01)
    # Limits narrow as the base grows and never leave 0 to 100.
    assert stats.funnel_limits(31.0, 10_000, stats.Z95)[1] < high
    assert stats.funnel_limits(2.0, 5, stats.Z998)[0] == 0.0


def test_funnel_position():
    assert stats.funnel_position(45, 100, 31.0) == "above 95% limit"  # 45 > 40.07, < 45.3
    assert stats.funnel_position(50, 100, 31.0) == "above 99.8% limit"
    assert stats.funnel_position(31, 100, 31.0) == "within limits"
    assert stats.funnel_position(10, 100, 31.0) == "below 99.8% limit"


def test_wilson_takes_a_perturbed_count_above_its_base_as_all_of_it():
    # Found by the load test: a protected count of 12 over a protected base of 10 (each
    # perturbed on its own) raised "math domain error" and broke the Risk page. Taken as
    # 10 of 10: by hand, with z = 1.96, the low end is 1 / (1 + z^2/10) = 72.25%.
    ci = stats.wilson(12, 10)
    assert ci is not None
    assert abs(ci.low - 100 / (1 + 1.96**2 / 10)) < 0.05
    assert abs(ci.high - 100.0) < 1e-9


def test_all_or_none_of_the_cases_is_not_a_difference_from_the_same_extreme():
    # Found on Complex needs: 279 of 279 engaged against 100% at other services was
    # captioned "significantly lower", because the computed upper end was
    # 99.99999999999999. By algebra, at p = 1 the Wilson upper end is
    # (1 + z^2/2n + z sqrt(z^2/4n^2)) / (1 + z^2/n) = 1 exactly; at p = 0 the lower is 0.
    for n in (7, 279, 478, 3174):
        assert stats.wilson(n, n).high == 100.0
        assert stats.wilson(0, n).low == 0.0
        assert stats.verdict(stats.wilson(n, n), 100.0) == stats.SIMILAR
        assert stats.verdict(stats.wilson(0, n), 0.0) == stats.SIMILAR
