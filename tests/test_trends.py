"""Fingertips recent-trend markers (findings/trends.py) against hand-worked figures.

The statistic is worked here by hand from the chi-squared test for linear trend, and by
a second route (Fingertips' own form: the weighted slope of the proportions), and checked
against R's documented prop.trend.test example; never against trends.py's own output.
"""

import pytest

from service_insights.findings import trends

YEARS = ["2020-21", "2021-22", "2022-23", "2023-24", "2024-25"]


def test_hand_worked_example():
    # r = 10, 15, 20, 25, 30 of n = 100 each year, scores t = 1..5:
    # p = 100/500 = 0.2; t_bar = 3; sum(r t) = 10+30+60+100+150 = 350; R t_bar = 300;
    # numerator = 50; sum(n t^2) = 100 x 55 = 5500; N t_bar^2 = 500 x 9 = 4500;
    # chi2 = 50^2 / (0.2 x 0.8 x 1000) = 2500 / 160 = 15.625
    stat, numerator = trends.chi2_trend([10, 15, 20, 25, 30], [100] * 5)
    assert stat == pytest.approx(15.625)
    assert numerator == pytest.approx(50)
    # 15.625 > 10.83 (p < 0.001): a marked, increasing trend.
    t = trends.recent_trend(YEARS, [10, 15, 20, 25, 30], [100] * 5, trends.HIGHER_IS_BETTER)
    assert t.marker == "Increasing and getting better"
    t = trends.recent_trend(YEARS, [10, 15, 20, 25, 30], [100] * 5, trends.LOWER_IS_BETTER)
    assert t.marker == "Increasing and getting worse" and t.worse
    t = trends.recent_trend(YEARS, [30, 25, 20, 15, 10], [100] * 5, trends.HIGHER_IS_BETTER)
    assert t.marker == "Decreasing and getting worse"
    t = trends.recent_trend(YEARS, [30, 25, 20, 15, 10], [100] * 5)
    assert t.marker == "Decreasing"


def test_not_significant_at_one_in_a_thousand():
    # r = 20, 22, 24, 26, 28 of 100: p = 0.24, numerator = 20+44+72+104+140 - 120x3 = 20;
    # chi2 = 400 / (0.24 x 0.76 x 1000) = 2.193: below 10.83, so no significant change.
    stat, _ = trends.chi2_trend([20, 22, 24, 26, 28], [100] * 5)
    assert stat == pytest.approx(400 / (0.24 * 0.76 * 1000))
    assert trends.recent_trend(YEARS, [20, 22, 24, 26, 28], [100] * 5).marker == \
        trends.NO_CHANGE


def test_second_route_fingertips_slope_form():
    # Fingertips writes the statistic through the weighted slope of the proportions:
    # chi2 = [sum n_i (p_i - p)(t_i - t_bar)]^2 / (p (1 - p) sum n_i (t_i - t_bar)^2).
    r = [80, 62, 49, 29, 14]
    n = [429, 491, 502, 552, 562]
    t = [1, 2, 3, 4, 5]
    p = sum(r) / sum(n)
    t_bar = sum(ni * ti for ni, ti in zip(n, t, strict=True)) / sum(n)
    top = sum(ni * (ri / ni - p) * (ti - t_bar) for ri, ni, ti in zip(r, n, t, strict=True)) ** 2
    bottom = p * (1 - p) * sum(ni * (ti - t_bar) ** 2 for ni, ti in zip(n, t, strict=True))
    stat, numerator = trends.chi2_trend(r, n)
    assert stat == pytest.approx(top / bottom)
    assert numerator < 0
    assert trends.recent_trend(YEARS, r, n, trends.HIGHER_IS_BETTER).marker == \
        "Decreasing and getting worse"


def test_r_prop_trend_test_reference():
    # R: prop.trend.test(c(83, 90, 129, 70), c(86, 93, 136, 82)) gives X-squared = 8.2249.
    stat, _ = trends.chi2_trend([83, 90, 129, 70], [86, 93, 136, 82])
    assert stat == pytest.approx(8.2249, abs=5e-5)


def test_broken_or_short_series_gets_no_marker():
    assert trends.recent_trend(YEARS[:4], [1, 2, 3, 4], [10] * 4).marker == trends.NOT_ENOUGH
    # A suppressed year (None) breaks the series.
    assert trends.recent_trend(YEARS, [10, None, 20, 25, 30], [100] * 5).marker == \
        trends.NOT_ENOUGH
    # A missing year (2022-23 absent) is a break.
    gap = ["2019-20", "2020-21", "2021-22", "2023-24", "2024-25"]
    assert trends.recent_trend(gap, [10, 15, 20, 25, 30], [100] * 5).marker == \
        trends.NOT_ENOUGH
    # Only the most recent five are tested: an early sixth year is ignored.
    six = ["2019-20", *YEARS]
    assert trends.recent_trend(six, [90, 10, 15, 20, 25, 30], [100] * 6).marker == \
        "Increasing"
