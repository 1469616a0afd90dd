"""Issue 15's new measures: waits, days supported, exit coverage, Marac capacity, trend
markers on a result. Every expected figure is computed here by hand or with Polars from
the rows themselves, never from the dashboard's own SQL.
"""

import datetime as dt
import math
import subprocess
import sys

import polars as pl
import pytest

from service_insights import settings
from service_insights.catalogue import catalog, coverage, periods, results
from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.findings import evaluation, trends
from service_insights.protection import disclosure
from service_insights.store import db, registry, synth
from tests import handmade

FY = periods.financial_year(2024)  # 1 April 2024 to 31 March 2025
D = dt.date


def run(store, qid, scope=ALL_SERVICES, exact=False, period=FY):
    spec = catalog.get(settings.get().queries_dir, qid).spec
    audience = (results.Audience(own=tuple(scope.services)) if exact else results.EVERYONE)
    res = results.run(store, spec, scope, period, settings.get(), audience)
    assert res.error is None, res.error
    return res


def one(service):
    return Scope((service,), None, True, service)


# --------------------------------------------------------------- waits and support

@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("nm") / "s.duckdb"
    synth.write_sample(path, 50_000, 11)
    store = db.Store(path)
    yield store, synth.generate(50_000, 11)
    store.close()


def test_waits_and_days_supported_equal_polars(sample_store):
    store, sample = sample_store
    cases = sample.cases.filter(pl.col("service_id") == "S02")
    referred = cases.filter(pl.col("referral_date").is_between(FY.start, FY.end)
                            & pl.col("intake_date").is_not_null())
    waits = (referred["intake_date"] - referred["referral_date"]).dt.total_days()
    closed = cases.filter(pl.col("exit_date").is_between(FY.start, FY.end))
    stays = (closed["exit_date"] - closed["intake_date"]).dt.total_days()
    recorded = closed.filter(pl.any_horizontal(
        [pl.col(c).is_not_null() for c in ("abuse_ceased", "risk_reduced", "feels_safer",
                                           "quality_of_life_improved")]))
    res = run(store, "overview/waits_and_support", one("S02"), exact=True)
    row = res.data.frame.row(0, named=True)
    assert row["cases_with_intake"] == waits.len()
    assert row["median_days_to_intake"] == pytest.approx(waits.median())
    # quantile_disc: the smallest value with at least 90% of values at or below it.
    ordered = sorted(waits.to_list())
    assert row["p90_days_to_intake"] == ordered[math.ceil(0.9 * len(ordered)) - 1]
    assert row["closed_cases"] == closed.height
    assert row["median_days_supported"] == pytest.approx(stays.median())
    assert row["closed_with_outcomes"] == recorded.height
    assert row["pct_exit_coverage"] == round(100 * recorded.height / closed.height, 1)
    # The synthetic sample makes S02 wait longer and record fewer outcomes on purpose.
    assert row["median_days_to_intake"] > 15 and row["pct_exit_coverage"] < 60


def test_days_supported_by_risk_level_equal_polars(sample_store):
    store, sample = sample_store
    closed = sample.cases.filter((pl.col("service_id") == "S04")
                                 & pl.col("exit_date").is_between(FY.start, FY.end))
    expect = (closed.with_columns(days=(pl.col("exit_date") - pl.col("intake_date"))
                                  .dt.total_days())
              .group_by("risk_level").agg(pl.col("days").median(), pl.len()))
    res = run(store, "overview/days_supported_by_risk_level", one("S04"), exact=True)
    got = {r["risk"].lower(): r for r in res.data.frame.iter_rows(named=True)}
    for r in expect.iter_rows(named=True):
        assert got[r["risk_level"]]["closed_cases"] == r["len"]
        assert got[r["risk_level"]]["median_days_supported"] == pytest.approx(r["days"])


# --------------------------------------------------------------- quantile disclosure

def test_quantiles_need_enough_cases_each_side():
    # Median: at least 10 cases each side, so 20; 90th percentile: 10 above it, so 100.
    assert disclosure.quantile_base(0.5, 10) == 20
    assert disclosure.quantile_base(0.9, 10) == 100
    frame = pl.DataFrame({"x": ["a", "b", "c", "d"], "n": [19, 20, 99, 100],
                          "v": [5.0, 6.0, 7.0, 8.0]})
    p = disclosure.protect(frame, measures={"v": "n"}, dims=["x"],
                           quantiles={"v": [0.5, 0.5, 0.9, 0.9]})
    assert p.frame["v"].to_list() == [None, 6.0, None, 8.0]
    assert "medians need at least 20 cases" in p.note()
    assert "90th percentiles need at least 100 cases" in p.note()


def test_a_small_service_p90_wait_is_withheld(tmp_path):
    # 30 cases: a median may show (30 >= 20), the 90th percentile may not (30 < 100).
    rows = [handmade.case(referral_date=D(2024, 6, 1), intake_date=D(2024, 6, 1 + i % 20))
            for i in range(30)]
    store = db.Store(handmade.build(tmp_path / "w.duckdb", rows))
    res = run(store, "overview/waits_and_support", one("S1"), exact=True)
    row = res.data.frame.row(0, named=True)
    assert row["median_days_to_intake"] is not None
    assert row["p90_days_to_intake"] is None
    store.close()


# --------------------------------------------------------------- exit coverage

def test_exit_coverage_by_hand(tmp_path):
    # 12 closed in the year: 9 with an outcome recorded (any one of the four), 3 without;
    # 2 still open and 1 closed the year before do not count. 9 / 12 = 75.0%.
    closed = dict(referral_date=D(2024, 5, 1), intake_date=D(2024, 5, 2),
                  exit_date=D(2024, 9, 1))
    rows = ([handmade.case(**closed, abuse_ceased=True) for _ in range(6)]
            + [handmade.case(**closed, feels_safer=False) for _ in range(3)]
            + [handmade.case(**closed) for _ in range(3)]
            + [handmade.case(referral_date=D(2024, 5, 1)) for _ in range(2)]
            + [handmade.case(referral_date=D(2023, 5, 1), intake_date=D(2023, 5, 1),
                             exit_date=D(2023, 9, 1), abuse_ceased=True)])
    store = db.Store(handmade.build(tmp_path / "c.duckdb", rows))
    res = run(store, "overview/waits_and_support", one("S1"), exact=True)
    row = res.data.frame.row(0, named=True)
    assert (row["closed_cases"], row["closed_with_outcomes"], row["pct_exit_coverage"]) == \
        (12, 9, 75.0)
    assert coverage.sentence(res).startswith(
        "Exit coverage: 75.0% of the cases closed in the period have outcomes recorded "
        "(9 of 12)")
    store.close()


def test_every_outcome_chart_is_marked_for_coverage():
    specs = {e.id: e.spec for e in catalog.discover(settings.get().queries_dir) if e.spec}
    marked = {i for i, s in specs.items() if coverage.is_outcome_chart(s)}
    assert {"risk/outcomes_by_risk_level", "risk/abuse_ceased_by_abuse_type",
            "children/outcomes_for_families"} <= marked
    assert coverage.COVERAGE_QUERY not in marked


# --------------------------------------------------------------- capacity

CAP_SERVICES = [
    {"service_id": "S1", "name": "Service 1", "service_type": "idva", "area_code": "E0000000A",
     "idva_fte": 1.5, "admin_fte": 0.25},
    {"service_id": "S2", "name": "Service 2", "service_type": "outreach",
     "area_code": "E0000000A", "idva_fte": 0.5, "admin_fte": None},
    {"service_id": "S3", "name": "Service 3", "service_type": "idva", "area_code": "E0000000A",
     "idva_fte": None, "admin_fte": None},
] + [{"service_id": f"S{i}", "name": f"Service {i}", "service_type": "idva",
      "area_code": "E0000000B", "idva_fte": 6.0, "admin_fte": 1.0} for i in range(4, 7)]


def test_capacity_arithmetic_on_hand_made_rows(tmp_path):
    # Area A hears 500 referrals in 2024-25 (365 days: 500 / (365 / 365.25) = 500.3 a
    # year): 500.3 / 100 = 5.0 Idva FTE and 500.3 / 400 = 1.25 -> 1.3 administrator FTE
    # implied; registered 1.5 + 0.5 = 2.0 Idva and 0.25 -> 0.3 administrator FTE.
    # Area B hears 40: 0.4 Idva FTE implied, 18 registered.
    start = D(2024, 4, 1)
    refs = ([handmade.referral(f"K{i}", start + dt.timedelta(days=i % 365))
             for i in range(500)]
            + [handmade.referral(f"B{i}", start + dt.timedelta(days=i * 9),
                                 marac_area="E0000000B", service_id="S4") for i in range(40)])
    store = db.Store(handmade.build(tmp_path / "cap.duckdb", [handmade.case()], refs,
                                    services=CAP_SERVICES))
    years = 365 / 365.25
    res = run(store, "marac/capacity_by_area", Scope(None, ("E0000000A",), False, "A"),
              exact=False)
    spec = catalog.get(settings.get().queries_dir, "marac/capacity_by_area").spec
    every = tuple(f"S{i}" for i in range(1, 7))
    exact = results.run(store, spec, Scope(every, ("E0000000A", "E0000000B"), False, "all"),
                        FY, settings.get(), results.Audience(own=every))
    assert not exact.perturbed
    rows = {r["area_name"]: r for r in exact.data.frame.iter_rows(named=True)}
    a, b = rows["Area A"], rows["Area B"]
    assert a["referrals"] == 500 and b["referrals"] == 40
    assert a["idva_fte_implied"] == round(500 / years / 100, 1) == 5.0
    assert a["admin_fte_implied"] == round(500 / years / 400, 1) == 1.3
    assert a["idva_fte_registered"] == 2.0 and a["admin_fte_registered"] == 0.3
    assert b["idva_fte_implied"] == 0.4 and b["idva_fte_registered"] == 18.0
    assert res.perturbed  # an area spans services: the viewer gets perturbed counts
    # Scaled with the perturbed referrals, a year's cases stay a whole number (585, not
    # 585.0): the perturbed referrals / years, rounded to a whole number.
    shown = res.data.frame.row(0, named=True)
    assert isinstance(shown["cases_a_year"], int)
    assert shown["cases_a_year"] == round(shown["referrals"] / years)

    # The finding fires for A only; its interval is in FTE, from Byar's interval for 500:
    # 500 (1 - 1/4500 - 1.96/(3 sqrt 500))^3 = 457.1 and 501 (1 - 1/4509 + 1.96/(3 sqrt
    # 501))^3 = 546.0 referrals, / years / 100 = 4.6 to 5.5 FTE.
    entry = catalog.get(settings.get().queries_dir, "findings/idva_capacity_below_guidance")
    report = evaluation.Report()
    evaluation.evaluate_rule(store, entry, Scope(every, ("E0000000A", "E0000000B"), False,
                                                 "all"), FY, settings.get(), report,
                             results.Audience(own=every))
    assert not report.errors
    texts = [f.message + " " + f.confidence for f in report.findings]
    assert len(texts) == 1 and "Area A" in texts[0] and "Area B" not in texts[0]
    z = 1.959964
    low = 500 * (1 - 1 / 4500 - z / (3 * math.sqrt(500))) ** 3 / years / 100 * (5.0 / 5.003)
    high = 501 * (1 - 1 / 4509 + z / (3 * math.sqrt(501))) ** 3 / years / 100 * (5.0 / 5.003)
    assert f"{low:.1f} to {high:.1f} FTE" in texts[0]
    assert "%" not in texts[0].split("interval")[-1]
    store.close()


# --------------------------------------------------------------- register, CLI

def test_register_fte_and_refuse_bad_fte(tmp_path):
    path = tmp_path / "real.duckdb"
    area = registry.Area("E0000000Z", "Zed", "North", 5000)
    registry.register_service(registry.Service("R1", "Real Idva", "idva", "E0000000Z", 2.5,
                                               0.5), area, path=path)
    listed = registry.services(path).row(0, named=True)
    assert (listed["idva_fte"], listed["admin_fte"]) == (2.5, 0.5)
    with pytest.raises(registry.RegistrationError, match="idva_fte -1"):
        registry.register_service(registry.Service("R2", "Bad", "idva", "E0000000Z", -1),
                                  path=path)


def test_cli_services_add_with_fte(tmp_path):
    path = tmp_path / "cli.duckdb"
    env = {"SI_DB_PATH": str(path), "PYTHONPATH": ".", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "service_insights.cli", "services"]
    out = subprocess.run([*cmd, "add", "--id", "R1", "--name", "Real", "--type", "idva",
                          "--area", "E0000000Z", "--area-name", "Zed", "--region", "North",
                          "--population", "5000", "--idva-fte", "3", "--admin-fte", "0.5"],
                         capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    listed = subprocess.run([*cmd, "list"], capture_output=True, text=True, env=env,
                            check=True).stdout
    assert listed.strip().split("\t")[-2:] == ["3", "0.5"]
    bad = subprocess.run([*cmd, "add", "--id", "R2", "--name", "Bad", "--type", "idva",
                          "--area", "E0000000Z", "--idva-fte", "lots"],
                         capture_output=True, text=True, env=env, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


# --------------------------------------------------------------- trends on a result

def test_home_markers_from_protected_annual_series(sample_store):
    store, _ = sample_store
    res = run(store, trends.TREND_QUERY, one("S03"))
    assert res.perturbed
    items = {m.measure: m for m in trends.measure_trends(res)}
    wf = items["Families known to social care offered whole-family support"]
    rows = [r for r in res.data.frame.iter_rows(named=True)
            if r["measure"] == "Families known to social care offered whole-family support"]
    # The marker is the hand formula on the counts shown to this viewer.
    r = [x["n"] for x in rows]
    n = [x["base"] for x in rows]
    p = sum(r) / sum(n)
    t_bar = sum(ni * t for ni, t in zip(n, range(1, 6), strict=True)) / sum(n)
    top = (sum(ri * t for ri, t in zip(r, range(1, 6), strict=True)) - sum(r) * t_bar) ** 2
    spread = sum(ni * t * t for ni, t in zip(n, range(1, 6), strict=True)) - sum(n) * t_bar ** 2
    assert wf.trend.statistic == pytest.approx(top / (p * (1 - p) * spread))
    assert wf.trend.marker == "Decreasing and getting worse"
    assert wf.worse_than_comparator and wf.alert
    assert not items["High risk (DASH 14+)"].alert  # no polarity: never "worse"


def test_the_pack_prints_exit_coverage_beside_outcome_charts(sample_store):
    # Without Chromium the pack keeps its text: each outcome chart on the risk page has the
    # coverage sentence, whose figures are worked out here with Polars (perturbed in the
    # pack, so the share is compared within the perturbation's reach).
    import io

    import pypdf

    from service_insights.exports import images, report_pack

    store, sample = sample_store
    pack = report_pack.build(store, one("S02"), FY, settings.get(), pages=["risk"],
                             image_server=images.ImageServer(browser_path="/nonexistent"))
    text = " ".join(" ".join(p.extract_text().split())
                    for p in pypdf.PdfReader(io.BytesIO(pack.pdf)).pages)
    outcome_charts = [e for e in catalog.for_page(settings.get().queries_dir, "risk")
                      if e.spec and coverage.is_outcome_chart(e.spec)]
    assert text.count("Exit coverage:") == len(outcome_charts) >= 2
    closed = sample.cases.filter((pl.col("service_id") == "S02")
                                 & pl.col("exit_date").is_between(FY.start, FY.end))
    shown = float(text.split("Exit coverage: ")[1].split("%")[0])
    recorded = closed.filter(pl.any_horizontal(
        [pl.col(c).is_not_null() for c in ("abuse_ceased", "risk_reduced", "feels_safer",
                                           "quality_of_life_improved")]))
    true = 100 * recorded.height / closed.height
    assert abs(shown - true) < 2.0 and shown < 60
