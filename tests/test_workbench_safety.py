"""The workbench asks only safe questions: each leak class of issue 12, written as the
attack, is refused with one sentence naming the column and the rule, or protected like a
chart; the questions an analyst should be able to ask still work; the audit log holds
every run's SQL text, never its result; a runaway query stops at the memory limit."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from service_insights import settings
from service_insights.access import audit, grants
from service_insights.catalogue import periods, workbench
from service_insights.catalogue.scope import ALL_SERVICES
from service_insights.store import db
from tests import by_hand

FY = periods.financial_year(2024)
ANALYST = grants.Viewer("ana", "analyst", None, None)
PERIOD = "referral_date between $period_start and $period_end"

LEAKS = {
    # arithmetic, casts, text and booleans on a count
    "count_plus_1000": ("select gender, count(*)+1000 as n from cases group by gender", "n"),
    "count_times_7": ("select gender, count(*)*7 as n from cases group by gender", "n"),
    "minus_count": ("select gender, -count(*) as n from cases group by gender", "n"),
    "count_to_varchar": ("select gender, count(*)::varchar as n from cases group by gender",
                         "n"),
    "text_n_equals": ("select gender, 'n='||count(*) as n from cases group by gender", "n"),
    "count_below_4": ("select gender, count(*)<4 as small from cases group by gender",
                      "small"),
    "list_of_count": ("select gender, [count(*)] as l from cases group by gender", "l"),
    "struct_of_count": ("select gender, {'n': count(*)} as s from cases group by gender",
                        "s"),
    "date_plus_count": ("select gender, date '2024-01-01' + count(*)::int as d "
                        "from cases group by gender", "d"),
    # a measure beside a large count
    "sum_filter_beside_count": (
        "select count(*) as n, sum(1.0) filter (where gender = 'non_binary') as m "
        "from cases", "sum()"),
    # aggregates that return records' values
    "string_agg": ("select string_agg(case_id, ',') as ids from cases", "ids"),
    "list": ("select list(client_key) as keys from cases", "keys"),
    "histogram": ("select histogram(abuse_months) as h from cases", "histogram()"),
    "min": ("select min(referral_date) as d, count(*) as n from cases", "min()"),
    "max": ("select max(abuse_months) as m, count(*) as n from cases", "max()"),
    "first": ("select first(case_id) as c, count(*) as n from cases", "first()"),
    "arg_max": ("select arg_max(case_id, abuse_months) as c from cases", "arg_max()"),
    "mode": ("select mode(dash_score) as m from cases", "mode()"),
    "median": ("select median(abuse_months) as m from cases", "median()"),
    # one row per case
    "group_by_case_id": ("select count(*) as n from cases group by case_id", "case_id"),
    "group_by_client_key": ("select client_key, count(*) as n from cases group by 1",
                            "client_key"),
    "group_by_referral_date": ("select referral_date, count(*) as n from cases "
                               "group by referral_date", "referral_date"),
    "renamed_in_a_cte": ("with t as (select case_id as g from cases) "
                         "select g, count(*) as n from t group by g", "case_id"),
    "constant_alias_over_case_id": ("select 'x' as case_id, count(*) as n from cases "
                                    "group by case_id", "case_id"),
    "rows": ("select * from cases", "case_id"),
    # the record key behind perturbation: never selected, grouped or filtered on
    "record_key_grouped": ("select record_key, count(*) as n from cases group by 1",
                           "record_key"),
    "record_key_filtered": ("select count(*) filter (where record_key % 2 = 0) as n "
                            "from cases", "record_key"),
    "whole_record_as_text": ("select count(*) filter (where c::varchar like '%7%') as n "
                             "from cases c", "'c'"),
    # counts feeding conditions, orderings and subtotals
    "having_count_is_3": ("select gender, count(*) as n from cases group by gender "
                          "having count(*) = 3", "count()"),
    "count_inside_a_cte": ("with t as (select gender, count(*) as n from cases group by 1) "
                           "select count(*) filter (where n = 3) as hits from t",
                           "outer SELECT"),
    "order_by_count": ("select gender, count(*) as n from cases group by gender order by n",
                       "ORDER BY a count"),
    "window": ("select gender, count(*) over () as n from cases", "window"),
    "rollup": ("select gender, count(*) as n from cases group by rollup (gender)", "ROLLUP"),
    "union_equality_oracle": ("select 'a' as k, count(*) as n from cases union "
                              "select 'a', 3", "UNION"),
}


@pytest.fixture
def wb(sample_db):
    store = workbench.open_connection(sample_db)
    yield store
    store.close()


def independent(sample_db, sql, params=None):
    con = duckdb.connect(str(sample_db), read_only=True, config=db.read_only_config())
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("name", list(LEAKS))
def test_each_leak_class_is_refused_in_one_sentence(wb, name):
    sql, named = LEAKS[name]
    with pytest.raises(workbench.Refused) as info:
        workbench.run(wb, sql, ALL_SERVICES, FY, ANALYST, settings.get())
    message = str(info.value)
    assert named in message, message
    assert "\n" not in message and message.endswith(".")
    assert "Traceback" not in message
    events = audit.read()
    assert events[-1]["action"] == "workbench_run" and events[-1]["ok"] is False
    assert events[-1]["sql"] == sql


def test_a_grouped_count_by_gender_and_year_still_works(wb, sample_db):
    """An analyst's counts are perturbed (the cell key method, applied by hand here from
    the record keys and the ptable), then suppressed like a chart's."""
    sql = ("select gender, financial_year, count(*) as cases from cases "
           f"where {PERIOD} group by all")
    out = workbench.run(wb, sql, ALL_SERVICES, FY, ANALYST, settings.get())
    raw = {(g, y): (n, k) for g, y, n, k in independent(
        sample_db, "select gender, financial_year, count(*), sum(record_key) "
        "from store.cases c, "
        "lateral (select case when month(c.referral_date) < 4 then year(c.referral_date) - 1 "
        "else year(c.referral_date) end as y0) "
        "cross join lateral (select y0::varchar || '-' || lpad(((y0 + 1) % 100)::varchar, 2, "
        "'0') as financial_year) "
        "where referral_date between $a and $b group by all",
        {"a": FY.start, "b": FY.end})}
    assert out.keys == ["gender", "financial_year"] and out.counts == ["cases"]
    assert out.protected.perturbed and "perturbed" in out.protected.note()
    shown = out.protected.display()
    assert shown.height == len(raw)
    compared = 0
    for row in shown.iter_rows(named=True):
        n, k = raw[(row["gender"], row["financial_year"])]
        expected = by_hand.shown(n, k)
        if expected is None:
            assert row["cases"] == "<5"
        elif row["cases"] != "–":
            assert row["cases"] == f"{expected:,}"
            compared += 1
    assert compared >= 2


def test_a_rate_from_a_declared_count_and_base(wb, sample_db):
    """The rate is worked out from the perturbed count and base, as for a chart."""
    sql = ("select risk_level, count(*) as cases, "
           "count(*) filter (where children_in_household > 0) as with_children "
           f"from cases where {PERIOD} and risk_level is not null group by risk_level")
    rates = workbench.parse_rates("pct_with_children = with_children / cases")
    out = workbench.run(wb, sql, ALL_SERVICES, FY, ANALYST, settings.get(), rates=rates)
    raw = independent(sample_db, "select risk_level, count(*), sum(record_key), "
                      "count(*) filter (where children_in_household > 0), "
                      "sum(record_key) filter (where children_in_household > 0) "
                      "from store.cases where referral_date between $a and $b "
                      "and risk_level is not null group by 1", {"a": FY.start, "b": FY.end})
    frame = out.protected.frame
    for level, n, nk, k, kk in raw:
        row = frame.filter(frame["risk_level"] == level).row(0, named=True)
        n, k = by_hand.perturb(n, nk), by_hand.perturb(k, kk or 0)
        assert (row["cases"], row["with_children"]) == (n, k)
        assert row["pct_with_children"] == round(100.0 * k / n, 1)


def test_a_rate_on_a_small_base_is_withheld(wb, sample_db):
    """A base whose perturbed count is 1 to 4 is suppressed, and the rate on it withheld."""
    cells = independent(sample_db, "select service_id, count(*), sum(record_key) "
                        "from store.cases where referral_date between $a and $b "
                        "and gender = 'non_binary' group by 1 order by 1",
                        {"a": FY.start, "b": FY.end})
    small = [s for s, n, k in cells if by_hand.shown(n, k) is None
             and by_hand.perturb(n, k) > 0]
    assert small, "the sample has a service with a small non-binary count"
    service = small[0]
    sql = ("select gender, count(*) as cases, count(*) filter (where has_children) as fam "
           f"from cases where {PERIOD} and service_id = '{service}' group by gender")
    out = workbench.run(wb, sql, ALL_SERVICES, FY, ANALYST, settings.get(),
                        rates={"pct_fam": ("fam", "cases")})
    row = out.protected.frame.filter(out.protected.frame["gender"] == "non_binary")
    assert row["cases"][0] is None and row["pct_fam"][0] is None
    shown = out.protected.display().filter(out.protected.frame["gender"] == "non_binary")
    assert shown["cases"][0] == "<5"


def test_a_saved_query_cannot_publish_case_level_rows(tmp_path):
    queries = tmp_path / "queries"
    queries.mkdir()
    header = {"title": "Cases", "description": "Every case.", "page": "home",
              "chart": "table", "counts": ["n"]}
    for sql in ("select case_id, gender, count(*) as n from cases group by all",
                "select * from cases",
                "select client_key, count(*) as n from cases group by client_key"):
        with pytest.raises(workbench.Refused):
            workbench.save(sql, header, queries)
    assert not list(queries.rglob("*.sql")), "nothing was written"


def test_a_saved_query_with_a_rate_becomes_a_working_chart(tmp_path, sample_db):
    from service_insights.catalogue import catalog, results

    queries = tmp_path / "queries"
    queries.mkdir()
    sql = ("select risk_level, count(*) as cases, count(*) filter (where has_children) "
           f"as fam from cases where {PERIOD} and risk_level is not null group by risk_level")
    path = workbench.save(sql, {"title": "Families by risk", "description": "Families.",
                                "page": "risk", "chart": "bar", "x": "risk_level",
                                "y": "pct_fam", "counts": ["cases", "fam"]}, queries,
                          rates={"pct_fam": ("fam", "cases")})
    spec = catalog.parse(path.read_text(), "queries/risk/families_by_risk.sql")
    assert spec.rates["pct_fam"] == catalog.Rate("fam", "cases")
    from service_insights.catalogue.scope import Scope

    # As the service's own manager, so counts are exact (others see them perturbed).
    area = independent(sample_db, "select area_code from store.services where service_id = 'S01'")
    scope = Scope(("S01",), (area[0][0],), True, "S01")
    store = db.Store(sample_db)
    try:
        res = results.run(store, spec, scope, FY, settings.get(),
                          results.Audience(visible=("S01",), own=("S01",)))
    finally:
        store.close()
    assert res.error is None
    raw = dict((lvl, round(100.0 * k / n, 1)) for lvl, n, k in independent(
        sample_db, "select risk_level, count(*), count(*) filter (where children_in_household "
        "> 0) from store.cases where service_id = 'S01' and referral_date between $a and $b "
        "and risk_level is not null group by 1", {"a": FY.start, "b": FY.end}))
    for row in res.data.frame.iter_rows(named=True):
        assert row["pct_fam"] == raw[row["risk_level"]]


def test_every_run_is_audited_with_its_sql_and_never_its_result(wb):
    ok_sql = f"select gender, count(*) as n from cases where {PERIOD} group by gender"
    out = workbench.run(wb, ok_sql, ALL_SERVICES, FY, ANALYST, settings.get())
    with pytest.raises(workbench.Refused):
        workbench.run(wb, "select count(*)+1000 as n from cases", ALL_SERVICES, FY, ANALYST,
                      settings.get())
    events = [e for e in audit.read() if e["action"] == "workbench_run"]
    assert [(e["ok"], e["sql"]) for e in events] == [
        (True, ok_sql), (False, "select count(*)+1000 as n from cases")]
    assert events[0]["who"] == "ana" and "computes on a count" in events[1]["reason"]
    assert set(events[0]) == {"at", "who", "action", "ok", "sql", "result_rows"}
    counts = [v for v in out.protected.frame["n"].to_list() if v is not None and v > 10]
    assert counts
    # Every field but the timestamp (whose digits may happen to spell a count).
    text = " ".join(str(v) for e in audit.read() for k, v in e.items() if k != "at")
    for value in counts:
        assert not re.search(rf"\b{value}\b", text), "no count from the result is in the log"


def test_an_error_raised_on_a_record_does_not_quote_it(wb, sample_db):
    case_id = independent(sample_db, "select case_id from store.cases limit 1")[0][0]
    with pytest.raises(workbench.Refused) as info:
        workbench.run(wb, "select count(*) filter (where case_id::int = 1) as n from cases",
                      ALL_SERVICES, FY, ANALYST, settings.get())
    assert "could not run the query on the records" in str(info.value)
    assert case_id not in str(info.value)
    assert not any(case_id in str(e) for e in audit.read())


def test_a_runaway_query_stops_at_the_memory_limit(sample_db, tmp_path, monkeypatch):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(sample_db, copy)
    monkeypatch.setenv("SI_QUERY_MEMORY_LIMIT", "32MB")
    monkeypatch.setenv("SI_QUERY_THREADS", "1")
    store = workbench.open_connection(copy)
    try:
        limits = store.query("select current_setting('memory_limit') as m, "
                             "current_setting('threads') as t, "
                             "current_setting('temp_directory') as d").frame.row(0)
        assert limits[1] == 1 and limits[2] == ""
        assert limits[0].endswith("MiB") and float(limits[0].split()[0]) <= 32
        with pytest.raises(workbench.Refused) as info:
            workbench.run(store, "select a.gender, count(distinct a.case_id || b.case_id) "
                          "as n from cases a, cases b group by a.gender", ALL_SERVICES, FY,
                          ANALYST, settings.get(), timeout_s=120)
    finally:
        store.close()
    message = str(info.value)
    assert "memory limit (32MB)" in message and "\n" not in message
    assert not list(tmp_path.glob("copy.duckdb.tmp*")), "nothing spilled to disk"


def test_the_shared_store_has_the_memory_and_thread_limits(sample_db):
    store = db.Store(sample_db)
    try:
        m, t = store.query("select current_setting('memory_limit') as m, "
                           "current_setting('threads') as t").frame.row(0)
    finally:
        store.close()
    assert t == settings.get().query_threads == 2
    assert m == "1.8 GiB"  # DuckDB shows 2GB (10^9 bytes) in GiB


def test_the_workbench_page_runs_the_example_and_refuses_an_attack(app_env):
    from tests.conftest import app_test

    at = app_test()
    at.run()
    at.switch_page("app_pages/workbench.py").run()
    assert not at.exception
    at.button(key="wb_run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table.columns) == ["risk_level", "cases", "with_children", "pct_with_children"]
    at.text_area(key="wb_sql").input("select gender, count(*)::varchar as n from cases "
                                     "group by gender").run()
    at.button(key="wb_run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Column 'n' is refused: it computes on a count (arithmetic, a cast, text, a "
        "comparison, a list or a struct), and the workbench returns only grouping fields "
        "and plain counts (count(*), count(col), with or without FILTER), with rates "
        "declared as a count over a base."]
    assert not at.dataframe
    assert [e["ok"] for e in audit.read() if e["action"] == "workbench_run"] == [True, False]
