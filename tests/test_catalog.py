"""The query catalogue: every file parses and runs; broken files fail alone, with a line."""

import datetime as dt
import textwrap
from pathlib import Path

import duckdb
import polars as pl
import pytest

from service_insights import settings
from service_insights.catalogue import catalog, periods, results
from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.presentation import charts
from service_insights.store import db
from tests import by_hand, handmade
from tests.handmade import case, referral

QUERIES = settings.ROOT / "queries"
FY = periods.financial_year("2024-25")
ONE_SERVICE = Scope(("S03",), ("E06000002",), True, "Brindlehurst Family Idva")
ONE_AREA = Scope(("S01", "S02", "S20"), ("E06000001",), False, "Ashcombe")


def all_query_ids():
    return [e.id for e in catalog.discover(QUERIES) if not e.id.startswith("findings/")]


@pytest.fixture(scope="module")
def store(sample_db):
    s = db.Store(sample_db)
    yield s
    s.close()


@pytest.mark.parametrize("qid", all_query_ids())
def test_every_query_file_parses_and_runs(store, qid):
    entry = catalog.get(QUERIES, qid)
    assert entry.error is None, str(entry.error)
    spec = entry.spec
    assert spec.page == qid.split("/")[0], "a query lives in the folder of its page"
    for scope in (ALL_SERVICES, ONE_SERVICE, ONE_AREA):
        res = results.run(store, spec, scope, FY, settings.get())
        assert res.error is None, str(res.error)
        for col in spec.declared_columns():
            assert col in res.data.frame.columns
        if spec.chart == "finding":
            continue  # a finding returns rows only where it holds (tests/test_findings.py)
        assert res.data.frame.height > 0, f"{qid} returned no rows for {scope.label}"
        if spec.chart == "funnel":
            # Only the all-services rate leaves the data layer, never other services' rows.
            assert res.benchmark is None and res.overall
        elif spec.benchmark and not scope.is_all:
            assert res.benchmark is not None
        if spec.chart not in ("kpi", "table"):
            fig = charts.build(res)
            assert spec.title in fig.layout.title.text
            assert fig.layout.yaxis.title.text
        for rate in spec.rates:
            values = [v for v in res.data.frame[rate].to_list() if v is not None]
            assert all(0 <= v <= 100 for v in values), f"{rate} outside 0-100"


GOOD = """\
/*---
title: Risk levels
description: How many cases were at each risk level.
page: risk
chart: bar
x: risk_level
y: pct
rates:
  pct: {count: n, base: total}
params: [period_start, period_end]
---*/
with levels as (
    select risk_level, count(*) as n
    from cases
    where referral_date between $period_start and $period_end
    group by all
)
select risk_level, n, sum(n) over () as total,
       round(100.0 * n / sum(n) over (), 1) as pct
from levels
order by risk_level
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def parse_error(text: str) -> catalog.QueryError:
    with pytest.raises(catalog.QueryFileError) as info:
        catalog.parse(text, "queries/risk/x.sql")
    return info.value.error


def test_good_file_parses():
    spec = catalog.parse(GOOD, "queries/risk/levels.sql")
    assert spec.id == "risk/levels" and spec.chart == "bar" and spec.params == (
        "period_start", "period_end")
    assert spec.rates["pct"] == catalog.Rate("n", "total")


@pytest.mark.parametrize(("change", "line", "words"), [
    (("page: risk", "page: risk\ncolour: red"), 5, "unknown header key 'colour'"),
    (("title: Risk levels\n", ""), 1, "missing the required key 'title'"),
    (("chart: bar", "chart: pie"), 5, "chart 'pie' is not one of"),
    (("params: [period_start, period_end]", "params: [period_start]"), 10,
     "uses $period_end but 'params' does not declare it"),
    (("params: [period_start, period_end]", "params: [period_start, period_end, trend_start]"),
     10, "declares trend_start but the SQL never uses it"),
    (("params: [period_start, period_end]", "params: [period_start, period_end, who]"),
     10, "unknown parameter 'who'"),
    (("rates:\n  pct: {count: n, base: total}", "counts: [n]"), 7,
     "y column 'pct' must be declared"),
    (("order by risk_level\n", "order by risk_level;\ndelete from cases\n"), 12,
     "exactly one SELECT"),
    (("/*---\n", "/*\n"), 1, "must open with a header block"),
    (("---*/\n", "\n"), 1, "never closed"),
    (("x: risk_level", "x: [risk_level"), 6, "not valid YAML"),
])
def test_malformed_headers_name_the_line(change, line, words):
    old, new = change
    assert old in GOOD
    err = parse_error(GOOD.replace(old, new, 1))
    assert words in err.message
    assert err.line == line, err
    assert err.path == "queries/risk/x.sql"


def test_reserved_scope_parameters_are_refused():
    text = GOOD.replace("from cases\n", "from cases where $scope_services is null\n", 1)
    assert "set by the data layer" in parse_error(text).message


def test_comments_and_strings_do_not_count_as_parameters():
    text = GOOD.replace("select risk_level, n,", "-- $not_a_param\nselect risk_level, n, "
                        "'$nor_this' as note,", 1)
    catalog.parse(text, "queries/risk/x.sql")


def test_runtime_errors_point_into_the_file(store):
    bad = GOOD.replace("select risk_level, n,", "select risk_level, n, no_such_column,", 1)
    spec = catalog.parse(bad, "queries/risk/bad.sql")
    res = results.run(store, spec, ALL_SERVICES, FY, settings.get())
    assert res.error is not None and "no_such_column" in res.error.message
    assert res.error.line == 18  # the line of the select list in the file


def test_header_column_missing_from_result_is_an_error_at_its_key(store):
    spec = catalog.parse(GOOD.replace("x: risk_level", "x: level"), "queries/risk/x.sql")
    res = results.run(store, spec, ALL_SERVICES, FY, settings.get())
    assert res.error.line == 6 and "'x' names column 'level'" in res.error.message


def test_undeclared_numbers_cannot_bypass_disclosure(store):
    text = GOOD.replace("round(100.0 * n / sum(n) over (), 1) as pct",
                        "round(100.0 * n / sum(n) over (), 1) as pct, n + 0 as raw_n")
    spec = catalog.parse(text, "queries/risk/x.sql")
    res = results.run(store, spec, ALL_SERVICES, FY, settings.get())
    assert res.error and "raw_n" in res.error.message and "disclosure" in res.error.message
    assert res.data is None, "no numbers leave a query that disclosure cannot check"


def test_changed_file_is_reread_without_restart(tmp_path):
    path = write(tmp_path / "queries", "risk/levels.sql", GOOD)
    root = tmp_path / "queries"
    assert catalog.get(root, "risk/levels").spec.title == "Risk levels"
    path.write_text(GOOD.replace("title: Risk levels", "title: Risk at intake"))
    assert catalog.get(root, "risk/levels").spec.title == "Risk at intake"
    write(root, "risk/new_one.sql", GOOD.replace("order: 10", ""))
    assert "risk/new_one" in [e.id for e in catalog.discover(root)]


def test_broken_file_is_listed_on_its_page_by_folder(tmp_path):
    root = tmp_path / "queries"
    write(root, "risk/levels.sql", GOOD)
    write(root, "risk/broken.sql", "select 1")
    entries = catalog.for_page(root, "risk")
    assert [e.id for e in entries if e.spec] == ["risk/levels"]
    assert [e.error.line for e in entries if e.error] == [1]


# ---------------------------------------------------------------- scope and benchmark


def hand_store(tmp_path):
    cases = (
        [case(service_id="S1", risk_level="high", dash_score=15) for _ in range(12)]
        + [case(service_id="S1", risk_level="medium") for _ in range(8)]
        + [case(service_id=s, risk_level="high", dash_score=16) for s in ("S2", "S4", "S5")
           for _ in range(10)]
        + [case(service_id=s, risk_level="standard", dash_score=3) for s in ("S2", "S4", "S6")
           for _ in range(30)]
    )
    refs = ([referral(f"A{i}", dt.date(2024, 5, 1), service_id="S1") for i in range(6)]
            + [referral(f"B{i}", dt.date(2024, 5, 1), service_id="S4",
                        marac_area="E0000000B") for i in range(7)])
    return db.Store(handmade.build(tmp_path / "h.duckdb", cases, refs))


def test_scope_binds_the_relations_the_query_reads(tmp_path):
    s = hand_store(tmp_path)
    text = """\
    /*---
    title: Counts
    description: Counts.
    page: risk
    chart: kpi
    y: [n_cases, n_refs, n_services]
    counts: [n_cases, n_refs, n_services]
    ---*/
    select (select count(*) from cases) as n_cases,
           (select count(*) from marac_referrals) as n_refs,
           (select count(*) from services) as n_services
    """
    spec = catalog.parse(textwrap.dedent(text), "queries/risk/counts.sql")
    cfg = settings.get()

    def row(scope):
        return results.run(s, spec, scope, FY, cfg).data.frame.row(0, named=True)

    def shown(table, where):
        return by_hand.shown(*by_hand.truth(s.path, f"select count(*), sum(record_key) from "
                                                    f"store.{table} where {where}"))

    # Counts are perturbed (the cell key method), applied here by hand; services are not
    # records, so their count is exact. One service (a count of 1) and three services are
    # small counts: shown as <5.
    assert row(ALL_SERVICES) == {"n_cases": shown("cases", "true"),
                                 "n_refs": shown("marac_referrals", "true"), "n_services": 6}
    s1 = Scope(("S1",), ("E0000000A",), True, "Service 1")
    assert row(s1) == {"n_cases": shown("cases", "service_id = 'S1'"),
                       "n_refs": shown("marac_referrals", "service_id = 'S1'"),
                       "n_services": None}
    area_b = Scope(("S4", "S5", "S6"), ("E0000000B",), False, "Area B")
    assert row(area_b) == {"n_cases": shown("cases", "service_id in ('S4', 'S5', 'S6')"),
                           "n_refs": shown("marac_referrals", "marac_area = 'E0000000B'"),
                           "n_services": None}
    # A service manager of S1 holds those records: exact.
    own = results.Audience(visible=("S1",), own=("S1",))
    exact = results.run(s, spec, s1, FY, cfg, own).data.frame.row(0, named=True)
    assert exact == {"n_cases": 20, "n_refs": 6, "n_services": None}


def test_benchmark_is_the_all_services_figure_computed_independently(tmp_path):
    s = hand_store(tmp_path)
    spec = catalog.parse(GOOD, "queries/risk/levels.sql")
    s1 = Scope(("S1",), ("E0000000A",), True, "Service 1")
    manager = results.Audience(visible=("S1",), own=("S1",))
    res = results.run(s, spec, s1, FY, settings.get(), manager)
    assert res.benchmark is not None and res.benchmark_label == "All services"
    # By hand: 140 cases; high 12 + 30 = 42; medium 8; standard 90; each count perturbed
    # by its records' keys, and the base (the total) by all 140 records' keys.
    fy = "referral_date between '2024-04-01' and '2025-03-31'"

    def noisy(where):
        return by_hand.perturb(*by_hand.truth(
            s.path, f"select count(*), sum(record_key) from store.cases where {fy} and {where}"))

    total = noisy("true")
    bench = dict(zip(res.benchmark.frame["risk_level"], res.benchmark.frame["pct"],
                     strict=True))
    assert bench == {level: round(100 * noisy(f"risk_level = '{level}'") / total, 1)
                     for level in ("high", "medium", "standard")}
    # The service manager's own service: exact.
    ours = dict(zip(res.data.frame["risk_level"], res.data.frame["pct"], strict=True))
    assert ours == {"high": 60.0, "medium": 40.0}
    fig = charts.build(res)
    names = [t.name for t in fig.data]
    assert names[:2] == ["Service 1", "All services"]
    drawn = dict(zip(fig.data[1].x, fig.data[1].y, strict=True))
    assert drawn["high"] == pytest.approx(bench["high"])


def test_benchmark_hidden_when_too_few_other_services(tmp_path, monkeypatch):
    s = hand_store(tmp_path)
    spec = catalog.parse(GOOD, "queries/risk/levels.sql")
    monkeypatch.setenv("SI_MIN_OTHER_SERVICES", "6")
    res = results.run(s, spec, Scope(("S1",), ("E0000000A",), True, "S1"), FY, settings.get())
    assert res.benchmark is None and "subtracted" in res.benchmark_note


def test_benchmark_on_the_sample_matches_raw_sql(sample_db, store):
    spec = catalog.get(QUERIES, "home/headline_figures").spec
    res = results.run(store, spec, ONE_SERVICE, FY, settings.get())
    con = duckdb.connect(str(sample_db), read_only=True, config=db.read_only_config())
    try:
        hr = con.execute(
            "select round(100.0 * count(*) filter (where dash_score >= 14) / count(dash_score),"
            " 1) from store.cases where referral_date between '2024-04-01' and '2025-03-31'"
        ).fetchone()[0]
    finally:
        con.close()
    assert res.benchmark.frame["pct_high_risk"][0] == pytest.approx(hr)


def test_results_never_carry_small_counts(store):
    for qid in all_query_ids():
        spec = catalog.get(QUERIES, qid).spec
        res = results.run(store, spec, ONE_SERVICE, periods.quarter("2024-25", 4),
                          settings.get())
        for col in [*spec.counts, *[r.count for r in spec.rates.values()]]:
            values = res.data.frame[col].to_list()
            assert not any(v is not None and 0 < v < 5 for v in values), (qid, col)


def test_polars_is_what_queries_return(store):
    spec = catalog.parse(GOOD, "queries/risk/levels.sql")
    res = results.run(store, spec, ALL_SERVICES, FY, settings.get())
    assert isinstance(res.data.frame, pl.DataFrame)


def test_figure_stands_on_its_own(tmp_path):
    s = hand_store(tmp_path)
    spec = catalog.parse(GOOD, "queries/risk/levels.sql")
    res = results.run(s, spec, Scope(("S1",), ("E0000000A",), True, "Service 1"), FY,
                      settings.get())
    fig = charts.build(res)
    assert fig.layout.title.subtitle.text == "Service 1 · financial year 2024-25"
    note = fig.layout.annotations[0].text.replace("<br>", " ")
    assert "Source: Service Insights (synthetic sample" in note
    assert "Counts from 1 to 4 are shown as <5" in note
    assert fig.layout.yaxis.title.text == "Pct (%)"
    bench = fig.data[1]
    assert bench.marker.pattern.shape == "/" and bench.marker.color != fig.data[0].marker.color
