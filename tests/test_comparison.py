"""Is a difference real? Chart captions, KPI verdicts and funnel plots on hand-made data
whose intervals are worked out by hand."""

from __future__ import annotations

import pytest

from service_insights import settings
from service_insights.catalogue import catalog, periods, results
from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.findings import significance
from service_insights.presentation import charts
from service_insights.store import db
from tests import by_hand
from tests.handmade import build, case

FY = periods.financial_year(2024)
S1 = Scope(("S1",), ("E0000000A",), True, "Service 1")
MANAGER_S1 = results.Audience(visible=("S1",), own=("S1",))
"""Service 1's manager: their own counts exact, everything else perturbed."""


def perturbed_high_risk(store, services=None):
    """Per service, (high-risk cases, assessed cases) perturbed by hand (tests/by_hand)."""
    out = {}
    for sid in services or HIGH_RISK_BY_SERVICE:
        where = f"from store.cases where service_id = '{sid}'"
        high = by_hand.truth(store.path, f"select count(*), sum(record_key) {where} "
                                         "and dash_score >= 14")
        assessed = by_hand.truth(store.path, f"select count(*), sum(record_key) {where} "
                                             "and dash_score is not null")
        out[sid] = (by_hand.perturb(*high), by_hand.perturb(*assessed))
    return out


def overall_by_hand(store, services=None):
    each = perturbed_high_risk(store, services).values()
    return 100.0 * sum(h for h, _ in each) / sum(a for _, a in each)

HIGH_RISK_BY_SERVICE = {"S1": 60, "S2": 30, "S3": 30, "S4": 30, "S5": 30, "S6": 30}
"""High-risk cases of 100 at each service: all services 210 of 600 = 35%."""


@pytest.fixture
def store(tmp_path):
    rows = []
    for sid, high in HIGH_RISK_BY_SERVICE.items():
        rows += [case(service_id=sid, dash_score=16 if i < high else 8,
                      risk_level="high" if i < high else "medium") for i in range(100)]
    s = db.Store(build(tmp_path / "cmp.duckdb", rows))
    yield s
    s.close()


RISK_SHARE = """\
/*---
title: High-risk share
description: Share of assessed cases at high risk.
page: risk
chart: bar
x: risk
y: pct
counts: [n]
rates:
  pct: {count: n, base: total}
params: [period_start, period_end]
---*/
select risk, n, total, round(100.0 * n / total, 1) as pct
from (
    select case when dash_score >= 14 then 'High' else 'Not high' end as risk,
           count(*) as n, sum(count(*)) over () as total
    from cases where referral_date between $period_start and $period_end
    group by 1
) order by risk
"""


def test_significantly_higher_and_lower_are_marked(store):
    spec = catalog.parse(RISK_SHARE, "queries/risk/x.sql")
    res = results.run(store, spec, S1, FY, settings.get(), MANAGER_S1)
    by_key = {v.key: v for v in significance.verdicts(res)}
    # Service 1: 60 of 100 high (Wilson 50.2% to 69.1%, by hand) against 35% for all services.
    assert by_key[("High",)].verdict == "higher"
    assert by_key[("High",)].interval.low == pytest.approx(50.20, abs=0.01)
    assert by_key[("Not high",)].verdict == "lower"
    text = significance.summary(res)
    assert "Significantly higher than all services for High" in text
    assert "significantly lower for Not high" in text
    fig = charts.build(res)
    marks = [t for t in fig.data if t.name == "significance"]
    assert marks and set(marks[0].text) == {"▲ higher", "▼ lower"}
    ours = fig.data[0]
    # By hand: (0.6 + 0.0192 + 1.96 * sqrt(0.0024 + 0.000096)) / 1.0384 = 0.6906
    assert ours.error_y.array[0] == pytest.approx(69.06 - 60.0, abs=0.01)


def test_a_similar_service_is_not_marked(store):
    spec = catalog.parse(RISK_SHARE, "queries/risk/x.sql")
    res = results.run(store, spec, Scope(("S2",), ("E0000000A",), True, "Service 2"), FY,
                      settings.get())
    # 30 of 100 (Wilson 21.9% to 39.6%) contains 35%.
    assert {v.verdict for v in significance.verdicts(res)} == {"similar"}
    assert "No difference from all services" in significance.summary(res)


def test_funnel_centre_points_and_outliers(store):
    entry = catalog.get(settings.get().queries_dir, "compare/funnel_high_risk")
    res = results.run(store, entry.spec, ALL_SERVICES, FY, settings.get())
    # 210 of 600 = 35% exactly; shown from the perturbed counts of each service.
    assert res.overall["pct_high_risk"] == pytest.approx(overall_by_hand(store))
    assert abs(res.overall["pct_high_risk"] - 35.0) < 1.0
    fig = charts.build(res)
    points = {t.name: list(t.text) for t in fig.data if t.mode and "markers" in t.mode}
    # 35% +/- 3.09 * sqrt(0.35 * 0.65 / 100) = 35 +/- 14.7: 60% is above the outer limit.
    assert points["Above 99.8% limit"] == ["Service 1"]
    assert sorted(points["Within limits"]) == [f"Service {i}" for i in range(2, 7)]
    centre = [t for t in fig.data if t.name and t.name.startswith("All services")]
    assert centre[0].y[0] == pytest.approx(overall_by_hand(store))


def test_funnel_for_one_service_keeps_other_services_out(store):
    entry = catalog.get(settings.get().queries_dir, "compare/funnel_high_risk")
    res = results.run(store, entry.spec, S1, FY, settings.get(), MANAGER_S1)
    assert res.data.frame["service_name"].to_list() == ["Service 1"]
    assert res.data.frame["high_risk_cases"].to_list() == [60]  # their own: exact
    assert res.benchmark is None
    assert res.overall["pct_high_risk"] == pytest.approx(overall_by_hand(store))


def test_a_funnel_of_one_service_shows_the_limits_at_its_base(store):
    """A manager's own funnel: one dot. The limits at its base must be in view, or
    the chart cannot show how far inside them the service sits (seen: an axis from 55.5%
    to 59% with the centre line and the dot, and no limit drawn in it)."""
    import math

    entry = catalog.get(settings.get().queries_dir, "compare/funnel_high_risk")
    res = results.run(store, entry.spec, S1, FY, settings.get(), MANAGER_S1)
    fig = charts.build(res)
    lo, hi = fig.layout.yaxis.range
    centre, base = overall_by_hand(store) / 100, 100  # S1: 60 of 100 assessed, exact
    half = 3.0902 * math.sqrt(centre * (1 - centre) / base)
    assert lo <= 100 * (centre - half) and hi >= 100 * (centre + half)


def test_names_from_the_data_are_shown_not_rendered_as_markup(tmp_path):
    from tests.handmade import SERVICES

    evil = '<a href="http://evil.example">Click</a>'
    services = [dict(s, name=evil) if s["service_id"] == "S1" else s for s in SERVICES]
    rows = [case(service_id=f"S{i}", dash_score=16 if j < 40 else 8) for i in range(1, 7)
            for j in range(100)]
    store = db.Store(build(tmp_path / "evil.duckdb", rows, services=services))
    entry = catalog.get(settings.get().queries_dir, "compare/funnel_high_risk")
    res = results.run(store, entry.spec, ALL_SERVICES, FY, settings.get())
    store.close()
    fig = charts.build(res)
    texts = [t for trace in fig.data if trace.text is not None for t in trace.text]
    assert "&lt;a href=\"http://evil.example\"&gt;Click&lt;/a&gt;" in texts
    assert not any("<a " in str(t) for t in texts)


def test_a_funnel_states_its_base_per_service(tmp_path):
    rows = [case(service_id=f"S{i}", dash_score=16 if j < 30 else 8) for i in range(1, 7)
            for j in range(50 + 10 * i)]
    store = db.Store(build(tmp_path / "bases.duckdb", rows))
    entry = catalog.get(settings.get().queries_dir, "compare/funnel_high_risk")
    res = results.run(store, entry.spec, ALL_SERVICES, FY, settings.get())
    bases = sorted(a for _, a in perturbed_high_risk(store, [f"S{i}" for i in range(1, 7)])
                   .values())
    store.close()
    # 60 to 110 cases, each base perturbed (by hand).
    assert results.base_text(res) == f"Base: n = {bases[0]} to {bases[-1]} per service."
