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
    # 15.625 > 9.55 (Fingertips' 99.8% level): a marked, increasing trend.
    t = trends.recent_trend(YEARS, [10, 15, 20, 25, 30], [100] * 5, trends.HIGHER_IS_BETTER)
    assert t.marker == "Increasing and getting better"
    t = trends.recent_trend(YEARS, [10, 15, 20, 25, 30], [100] * 5, trends.LOWER_IS_BETTER)
    assert t.marker == "Increasing and getting worse" and t.worse
    t = trends.recent_trend(YEARS, [30, 25, 20, 15, 10], [100] * 5, trends.HIGHER_IS_BETTER)
    assert t.marker == "Decreasing and getting worse"
    t = trends.recent_trend(YEARS, [30, 25, 20, 15, 10], [100] * 5)
    assert t.marker == "Decreasing"


def test_not_significant():
    # r = 20, 22, 24, 26, 28 of 100: p = 0.24, numerator = 20+44+72+104+140 - 120x3 = 20;
    # chi2 = 400 / (0.24 x 0.76 x 1000) = 2.193: below 9.55, so no significant change.
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


def test_fingertips_level_is_99_8_percent():
    # Fingertips' TrendMarkerCalculator.cs compares chi2 with 9.54953570608324, the
    # chi-squared value on 1 df at p = 0.002. r = 40, 44, 52, 58, 64 of 200 each:
    # R = 258, N = 1000, p = 0.258; sum(r t) = 40+88+156+232+320 = 836; R t_bar = 774;
    # numerator = 62; sum(n t^2) - N t_bar^2 = 11000 - 9000 = 2000;
    # chi2 = 3844 / (0.258 x 0.742 x 2000) = 10.04: above 9.55 (marked) though below
    # the 10.83 of a 0.1% level. The yearly shares only rise, so no year is an outlier.
    stat, _ = trends.chi2_trend([40, 44, 52, 58, 64], [200] * 5)
    assert stat == pytest.approx(3844 / (0.258 * 0.742 * 2000))
    assert 9.5495 < stat < 10.8276
    assert trends.recent_trend(YEARS, [40, 44, 52, 58, 64], [200] * 5).marker == "Increasing"


def test_one_unusual_year_is_not_a_trend():
    # r = 120, 80, 80, 80, 180 of 400 each: R = 540, p = 0.27; sum(r t) = 1740,
    # R t_bar = 1620, numerator = 120; chi2 = 14400 / (0.27 x 0.73 x 4000) = 18.26, far
    # above 9.55. But the log-odds are ln(120/280) = -0.847, ln(80/320) = -1.386 (three
    # times) and ln(180/220) = -0.201: over all five years the slope is positive
    # (sum (t - 3) v = 1.694 + 1.386 - 1.386 - 0.401 = 1.293 > 0), and with the last year
    # dropped it is negative (-0.847 then -1.386 three times). Fingertips' outlier check
    # needs all six slopes to agree, so no trend is marked.
    stat, _ = trends.chi2_trend([120, 80, 80, 80, 180], [400] * 5)
    assert stat == pytest.approx(14400 / (0.27 * 0.73 * 4000))
    assert trends.recent_trend(YEARS, [120, 80, 80, 80, 180], [400] * 5).marker == \
        trends.NO_CHANGE
    # A year with none (log-odds undefined) cannot pass the check either.
    assert trends.recent_trend(YEARS, [0, 15, 20, 25, 30], [100] * 5).marker == \
        trends.NO_CHANGE
