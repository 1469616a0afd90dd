"""One definition per measure, in SQL (issue 15): query files name a measure
(`{{measure.<id>.numerator}}`) instead of spelling its condition, the catalogue expands
the name from data/measures.yaml before every check, and changing the definition there
changes the figure everywhere it is shown. Figures are checked against Polars, computed
from the store's own table with the changed definition written out by hand."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys

import duckdb
import polars as pl
import pytest
import yaml

from service_insights import settings
from service_insights.catalogue import catalog, measure_sql, measures, periods, results, selection
from service_insights.store import db

QUERIES = settings.ROOT / "queries"
FY = periods.financial_year("2024-25")
START, END = dt.date(2024, 4, 1), dt.date(2025, 3, 31)
SERVICE, NAME = "S03", "Brindlehurst Family Idva"
OWN = results.Audience(visible=(SERVICE,), own=(SERVICE,))

_STRIP = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/|\{\{.*?\}\}", re.S)


def _norm(sql: str) -> str:
    """Lower case, comments, strings and measure references removed, table aliases
    (`c.`, `m.`) dropped, whitespace collapsed: what a hand-spelt condition looks like."""
    sql = _STRIP.sub(" ", sql).lower()
    sql = re.sub(r"\b[a-z_][a-z0-9_]*\.(?=[a-z_])", "", sql)
    return " ".join(sql.split())


def _hand_spelt(body: str, declares: bool) -> list[str]:
    """Registered conditions written out in `body` as a whole condition (after where,
    and, or, or an opening bracket), a quantile of a registered quantile measure's value,
    and, in a file that shows a measure, `count(x)` for a base `x is not null`."""
    text, found = _norm(body), []
    for m in measures.load().values():
        value = _norm(m.value_sql)
        if value and re.search(r"\b(?:median|quantile|quantile_cont|quantile_disc)\(\s*\(?"
                               + re.escape(value) + r"\b", text):
            found.append(f"{m.id}: a quantile of {value}")
        for frag in {m.numerator_sql, m.denominator_sql}:
            f = _norm(frag)
            if not f or f == "true":
                continue
            pat = (r"(?:\bwhere|\band|\bor|\()\s*" + re.escape(f)
                   + r"\s*(?=\)|\band\b|\bor\b|\bgroup\b|\border\b|$)")
            if re.search(pat, text):
                found.append(f"{m.id}: {frag}")
            col = re.fullmatch(r"([a-z_]+) is not null", f)
            if declares and col and re.search(rf"\bcount\(\s*{col.group(1)}\s*\)", text):
                found.append(f"{m.id}: count({col.group(1)})")
    return found


def _files():
    return sorted(QUERIES.rglob("*.sql"))


def test_no_query_file_spells_a_registered_measure_by_hand():
    """The lint: every condition data/measures.yaml registers is named, never copied."""
    offenders = {}
    for p in _files():
        entry = catalog.load_file(p, QUERIES)
        body = p.read_text(encoding="utf-8").split("---*/", 1)[-1]
        declares = bool(entry.spec and entry.spec.measure_ids)
        spelt = _hand_spelt(body, declares)
        if spelt:
            offenders[entry.id] = spelt
    assert offenders == {}


def test_the_lint_catches_a_copied_condition():
    """The lint above is not vacuous: the old hand-spelt Home query is caught."""
    old = ("select count(*) filter (where c.is_high_risk) as h, count(c.dash_score) as a,\n"
           "count(*) filter (where is_known_to_social_care is not null) as f,\n"
           "median(c.days_to_intake) as w from cases c")
    assert sorted(_hand_spelt(old, True)) == [
        "high_risk: count(dash_score)", "high_risk: is_high_risk",
        "known_to_social_care: is_known_to_social_care is not null",
        "median_days_to_intake: a quantile of days_to_intake",
        "p90_days_to_intake: a quantile of days_to_intake"]


def test_every_measure_shown_is_named_by_reference():
    """Each file that declares a measure names that measure's SQL by reference, and every
    registered measure is referenced by some file."""
    referenced: set[str] = set()
    for p in _files():
        raw = p.read_text(encoding="utf-8")
        refs = {mid for mid, _ in measure_sql.references(raw)}
        referenced |= refs
        entry = catalog.load_file(p, QUERIES)
        if entry.spec and entry.spec.measure_ids:
            missing = set(entry.spec.measure_ids.values()) - refs
            assert not missing, (entry.id, missing)
    assert referenced == set(measures.load())


def test_expansion_is_the_definition_on_one_line():
    m = measures.get("whole_family_support")
    assert measure_sql.expand("select count(*) filter (where {{ measure.whole_family_support"
                              ".numerator }}) from cases") == (
        "select count(*) filter (where ((is_known_to_social_care and whole_family_support "
        "is not null) and (is_known_to_social_care and whole_family_support))) from cases")
    assert measure_sql.condition(m, "denominator") == (
        "(is_known_to_social_care and whole_family_support is not null)")
    assert measure_sql.condition(measures.get("cases"), "numerator") == "(true)"
    # The label as a SQL string, quotes doubled: the annual series names each measure so.
    assert measure_sql.expand("select {{measure.known_to_social_care.label}} as m") == (
        "select 'Families known to children''s social care' as m")
    series = catalog.get(QUERIES, "overview/headline_rates_by_year").spec
    assert set(series.series_order) <= {m.label for m in measures.load().values()}


HEADER = ("/*---\ntitle: t\ndescription: d\npage: home\nchart: kpi\ny: [n]\ncounts: [n]\n"
          "params: [period_start, period_end]\n---*/\n")


@pytest.mark.parametrize("ref, words", [
    ("{{measure.no_such.numerator}}", "'no_such' is not a measure in data/measures.yaml"),
    ("{{measure.high_risk.base}}", "measure 'high_risk' has no part 'base'"),
    ("{{measure.cases.denominator}}", "measure 'cases' is a count and has no denominator"),
    ("{{high_risk}}", "is not a measure reference"),
])
def test_a_bad_reference_is_refused_with_its_file_and_line(ref, words):
    text = (HEADER + "select\n    count(*) filter (where referral_date between $period_start"
            f" and $period_end\n        and {ref}) as n\nfrom cases\n")
    with pytest.raises(catalog.QueryFileError) as exc:
        catalog.parse(text, "queries/home/x.sql")
    assert exc.value.error.line == 12, exc.value.error
    assert words in exc.value.error.message and "\n" not in exc.value.error.message


def test_check_and_query_health_list_a_bad_reference(tmp_path):
    """`service-insights check` names the file and line (and exits 1); the same Entry
    error is what Query health lists."""
    root = tmp_path / "queries"
    (root / "home").mkdir(parents=True)
    shutil.copy(QUERIES / "home" / "headline_figures.sql", root / "home" / "good.sql")
    bad = (HEADER + "select\n    count(*) filter (where {{measure.high_risks.numerator}}) as n"
           "\nfrom cases\nwhere referral_date between $period_start and $period_end\n")
    (root / "home" / "bad.sql").write_text(bad, encoding="utf-8")
    entry = catalog.load_file(root / "home" / "bad.sql", root)
    assert entry.spec is None and entry.error.line == 11
    env = {"SI_QUERIES_DIR": str(root), "PYTHONPATH": str(settings.ROOT),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "service_insights.cli", "check"],
                         capture_output=True, text=True, env=env, cwd=settings.ROOT, timeout=120)
    assert out.returncode == 1
    assert "queries/home/bad.sql, line 11: 'high_risks' is not a measure" in out.stderr
    assert "1 of 2 query files parse." in out.stdout
    assert "Traceback" not in out.stderr


def _with_definition(tmp_path, monkeypatch, **changes):
    data = yaml.safe_load(measures.DEFAULT_PATH.read_text(encoding="utf-8"))
    for key, fields in changes.items():
        data[key].update(fields)
    copy = tmp_path / "measures.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("SI_MEASURES_FILE", str(copy))


@pytest.mark.parametrize("sql", [
    "(select count(*) from main.cases) > 0",
    "dash_score in (select dash_score from read_csv('/etc/passwd'))",
])
def test_a_definition_cannot_reach_past_the_scope(tmp_path, monkeypatch, sql):
    """Attack: a measures.yaml entry whose SQL reads the unscoped table or a file. The
    scope check runs on the expanded text, so every file using the measure is refused."""
    _with_definition(tmp_path, monkeypatch, high_risk={"numerator_sql": sql})
    entry = catalog.get(QUERIES, "compare/funnel_high_risk")
    assert entry.spec is None, "the expanded SQL must be checked"
    assert any(w in entry.error.message for w in ("outside the scope", "not allowed")), (
        entry.error)


def test_a_definition_cannot_add_a_statement(tmp_path, monkeypatch):
    _with_definition(tmp_path, monkeypatch,
                     high_risk={"numerator_sql": "true); drop table cases; select (1"})
    entry = catalog.get(QUERIES, "home/headline_figures")
    assert entry.spec is None and entry.error.path == "queries/home/headline_figures.sql"


@pytest.fixture(scope="module")
def s03_cases(sample_db) -> pl.DataFrame:
    con = duckdb.connect(str(sample_db), read_only=True, config=db.read_only_config())
    try:
        cases = pl.from_arrow(con.sql("select * from store.cases").to_arrow_table())
    finally:
        con.close()
    return cases.filter(pl.col("service_id") == SERVICE)


def test_changing_a_definition_changes_the_figure_everywhere(sample_db, s03_cases,
                                                              tmp_path, monkeypatch):
    """One source: with high risk redefined as a DASH of 10 or more in a copy of
    measures.yaml, Home's KPI, the Compare funnel, the annual series and the measure
    computed alone all show the Polars figure for the new definition (and not the old)."""
    fy = s03_cases.filter(pl.col("referral_date").is_between(START, END))
    assessed = fy.filter(pl.col("dash_score").is_not_null()).height
    old = fy.filter(pl.col("dash_score") >= 14).height
    new = fy.filter(pl.col("dash_score") >= 10).height
    assert new > old > 0
    _with_definition(tmp_path, monkeypatch, high_risk={"numerator_sql": "dash_score >= 10"})
    s = db.Store(sample_db)
    try:
        scope = selection.scope_for(s, services=[SERVICE])

        def run(qid):
            res = results.run(s, catalog.get(QUERIES, qid).spec, scope, FY, settings.get(), OWN)
            assert res.error is None, res.error
            return res.data.frame

        home = run("home/headline_figures").row(0, named=True)
        funnel = run("compare/funnel_high_risk").filter(
            pl.col("service_name") == NAME).row(0, named=True)
        year = run("overview/headline_rates_by_year").filter(
            (pl.col("financial_year") == "2024-25")
            & (pl.col("measure") == "High risk (DASH 14+)")).row(0, named=True)
        alone = results.run(s, measures.spec("high_risk"), scope, FY, settings.get(),
                            OWN).data.frame.row(0, named=True)
    finally:
        s.close()
    pct = round(100.0 * new / assessed, 1)
    assert (home["high_risk_cases"], home["assessed_cases"], home["pct_high_risk"]) == (
        new, assessed, pytest.approx(pct))
    assert (funnel["high_risk_cases"], funnel["assessed_cases"]) == (new, assessed)
    assert funnel["pct_high_risk"] == pytest.approx(pct)
    assert (year["n"], year["base"], year["pct"]) == (new, assessed, pytest.approx(pct))
    assert (alone["numerator"], alone["denominator"]) == (new, assessed)
    # Back to the shipped file: the same files show the DASH 14+ figure again.
    monkeypatch.delenv("SI_MEASURES_FILE")
    s = db.Store(sample_db)
    try:
        scope = selection.scope_for(s, services=[SERVICE])
        res = results.run(s, catalog.get(QUERIES, "home/headline_figures").spec, scope, FY,
                          settings.get(), OWN)
    finally:
        s.close()
    assert res.data.frame["high_risk_cases"][0] == old


def test_the_digest_follows_the_definition(tmp_path, monkeypatch):
    """Cached results are keyed by the spec digest: a changed definition is a new digest,
    so no page shows a figure cached under the old definition."""
    before = catalog.get(QUERIES, "home/headline_figures").spec.digest
    _with_definition(tmp_path, monkeypatch, high_risk={"numerator_sql": "dash_score >= 10"})
    after = catalog.get(QUERIES, "home/headline_figures").spec
    assert after.digest != before and "(dash_score >= 10)" in after.sql


def test_query_health_lists_a_bad_reference(app_env, tmp_path, monkeypatch):
    """The Query health page (what an analyst opens) names the file, line and reference."""
    from tests.conftest import app_test, query_health_row

    root = tmp_path / "queries"
    shutil.copytree(QUERIES, root)
    bad = root / "overview" / "zz_bad_measure.sql"
    bad.write_text(HEADER.replace("page: home", "page: overview")
                   + "select\n    count(*) filter (where {{measure.high_risks.numerator}}) as n"
                   "\nfrom cases\nwhere referral_date between $period_start and $period_end\n",
                   encoding="utf-8")
    monkeypatch.setenv("SI_QUERIES_DIR", str(root))
    at = app_test()
    at.run()
    row = query_health_row(at, "overview/zz_bad_measure")
    assert row["status"] == "does not parse"
    assert "line 11" in row["problem"] and "'high_risks' is not a measure" in row["problem"]
