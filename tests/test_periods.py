import datetime as dt

import pytest

from service_insights.catalogue import periods


def test_financial_year_runs_april_to_march():
    p = periods.financial_year("2024-25")
    assert (p.start, p.end) == (dt.date(2024, 4, 1), dt.date(2025, 3, 31))


@pytest.mark.parametrize(("day", "fy"), [
    (dt.date(2025, 3, 31), 2024), (dt.date(2025, 4, 1), 2025), (dt.date(2024, 1, 15), 2023),
])
def test_fy_start_year(day, fy):
    assert periods.fy_start_year(day) == fy


@pytest.mark.parametrize(("q", "start", "end"), [
    (1, dt.date(2024, 4, 1), dt.date(2024, 6, 30)),
    (2, dt.date(2024, 7, 1), dt.date(2024, 9, 30)),
    (3, dt.date(2024, 10, 1), dt.date(2024, 12, 31)),
    (4, dt.date(2025, 1, 1), dt.date(2025, 3, 31)),
])
def test_quarters(q, start, end):
    p = periods.quarter("2024-25", q)
    assert (p.start, p.end) == (start, end)


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="2024-25"):
        periods.financial_year("2024-26")
    with pytest.raises(ValueError):
        periods.custom(dt.date(2024, 5, 1), dt.date(2024, 4, 1))


def test_years_between_newest_first():
    assert periods.financial_years_between(dt.date(2023, 3, 1), dt.date(2024, 4, 2)) == [
        "2024-25", "2023-24", "2022-23"]
