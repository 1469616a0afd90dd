"""One definition per measure (issue 15 item 2): every place a measure's label appears
shows the number data/measures.yaml defines, for a fixed selection, computed here
independently with Polars from the store's own tables; the dictionary lists each one."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import duckdb
import polars as pl
import pytest

from service_insights import settings
from service_insights.catalogue import catalog, measure_sql, measures, periods, results, selection
from service_insights.exports import chart_files
from service_insights.findings import evaluation
from service_insights.store import db

QUERIES = settings.ROOT / "queries"
FY = periods.financial_year("2024-25")
START, END = dt.date(2024, 4, 1), dt.date(2025, 3, 31)
SERVICE, NAME = "S03", "Brindlehurst Family Idva"
CASES = 12_000
"""The fixed selection must be large enough for every figure to be shown, a 90th
percentile included (100 cases with an intake date, SI_MIN_RATE_BASE 10): the shared
8,000-case sample leaves S03 just under that once some referrals are never taken on."""


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    """This module's own, larger sample (same seed as the shared one)."""
    from service_insights.store import synth
    from tests.conftest import SAMPLE_SEED

    path = tmp_path_factory.mktemp("measures") / "sample.duckdb"
    synth.write_sample(path, CASES, SAMPLE_SEED)
    return path


@pytest.fixture(scope="module")
def truth(sample_db) -> dict[str, tuple[int, int | None]]:
    """Each measure for S03 in 2024-25 as (numerator, denominator), worked out with Polars
    from store.cases and the Marac view, from the written definitions (not their SQL)."""
    con = duckdb.connect(str(sample_db), read_only=True, config=db.read_only_config())
    try:
        cases = pl.from_arrow(con.sql("select * from store.cases").to_arrow_table())
        # The return flags are derived in the cases view (checked on hand-made rows in
        # tests/test_marac_measures.py); here they are the inputs, counted by Polars.
        returns = pl.from_arrow(con.sql(
            "select service_id, referral_date, dash_score, is_return_after_marac, "
            "is_missed_rereferral from main.cases").to_arrow_table())
        refs = pl.from_arrow(con.sql(
            "select service_id, meeting_date, referring_agency, is_repeat "
            "from store.marac_referrals_keyed").to_arrow_table())
    finally:
        con.close()
    c = cases.filter((pl.col("service_id") == SERVICE)
                     & pl.col("referral_date").is_between(START, END))
    r = refs.filter((pl.col("service_id") == SERVICE)
                    & pl.col("meeting_date").is_between(START, END))
    closed = cases.filter((pl.col("service_id") == SERVICE)
                          & pl.col("exit_date").is_between(START, END))
    kids = c.filter(pl.col("children_in_household") > 0)
    recorded = kids.filter(pl.col("social_care") != "unknown")
    known = recorded.filter(pl.col("social_care") != "none")
    offer = known.filter(pl.col("whole_family_support").is_not_null())
    waits = (c.filter(pl.col("intake_date").is_not_null())
             .select((pl.col("intake_date") - pl.col("referral_date")).dt.total_days())
             .to_series())
    stays = (closed.filter(pl.col("intake_date").is_not_null())
             .select((pl.col("exit_date") - pl.col("intake_date")).dt.total_days())
             .to_series())
    ordered = sorted(waits.to_list())
    back = returns.filter((pl.col("service_id") == SERVICE)
                          & pl.col("referral_date").is_between(START, END)
                          & pl.col("is_return_after_marac") & (pl.col("dash_score") >= 14))
    return {
        "missed_rereferrals": (back.filter(pl.col("is_missed_rereferral")).height,
                               back.height),
        # Quantile measures: (the statistic, the cases it is over). A discrete 90th
        # percentile is the smallest wait with at least 90% of waits at or below it.
        "median_days_to_intake": (waits.median(), waits.len()),
        "p90_days_to_intake": (ordered[math.ceil(0.9 * len(ordered)) - 1], waits.len()),
        "median_days_supported": (stays.median(), stays.len()),
        "cases": (c.height, None),
        "high_risk": (c.filter(pl.col("dash_score") >= 14).height,
                      c.filter(pl.col("dash_score").is_not_null()).height),
        "with_children": (kids.height, c.height),
        "known_to_social_care": (known.height, recorded.height),
        "whole_family_support": (offer.filter(pl.col("whole_family_support")).height,
                                 offer.height),
        "marac_repeats": (r.filter(pl.col("is_repeat")).height, r.height),
        "partner_referrals": (r.filter(pl.col("referring_agency") != "police").height,
                              r.height),
        "long_abuse": (c.filter(pl.col("abuse_months") >= 36).height,
                       c.filter(pl.col("abuse_months").is_not_null()).height),
        "exit_coverage": (closed.filter(pl.any_horizontal(
            [pl.col(o).is_not_null() for o in ("abuse_ceased", "risk_reduced", "feels_safer",
                                               "quality_of_life_improved")])).height,
                          closed.height),
    }


def _declaring() -> list[catalog.Entry]:
    return [e for e in catalog.discover(QUERIES) if e.spec and e.spec.measure_ids]


def test_every_measure_is_declared_somewhere_and_the_fix_is_in():
    used = {m for e in _declaring() for m in e.spec.measure_ids.values()}
    # A rule whose rate is a different measure on each row (under-represented groups)
    # names it per row in a `measure_id` column; those measures count as used.
    for entry in catalog.discover(QUERIES):
        if entry.spec and entry.spec.chart == "finding" and "measure_id" in entry.spec.sql:
            used |= {mid for mid, _ in measure_sql.references(
                (QUERIES / f"{entry.id}.sql").read_text(encoding="utf-8"))}
    assert used == set(measures.load())
    # The inconsistency: Findings now share Home's base for this measure.
    home = catalog.get(QUERIES, "home/headline_figures").spec
    rule = catalog.get(QUERIES, "findings/whole_family_support").spec
    assert home.measure_ids["pct_families_known_to_social_care"] == "known_to_social_care"
    assert rule.measure_ids["pct_known"] == "known_to_social_care"


@pytest.mark.parametrize("qid", [e.id for e in _declaring()])
def test_each_declared_figure_equals_the_definition(sample_db, truth, qid):
    """Exact figures (the viewer holds the records): what the file shows for S03 is the
    measure computed from its definition; findings are checked where they fire."""
    s = db.Store(sample_db)
    try:
        spec = catalog.get(QUERIES, qid).spec
        scope = selection.scope_for(s, services=[SERVICE])
        own = results.Audience(visible=(SERVICE,), own=(SERVICE,))
        res = results.run(s, spec, scope, FY, settings.get(), own)
    finally:
        s.close()
    assert res.error is None, res.error
    frame = res.data.frame
    if spec.chart in ("funnel", "finding"):
        name_col = spec.x if spec.chart == "funnel" else spec.finding["subject"]
        frame = frame.filter(pl.col(name_col) == NAME)
        if spec.chart == "finding" and frame.height == 0:
            assert qid != "findings/whole_family_support", "the fixed selection should fire it"
            return
    assert frame.height == 1, frame
    row = frame.row(0, named=True)
    for col, mid in spec.measure_ids.items():
        num, den = truth[mid]
        if measures.get(mid).is_quantile:
            assert den >= 100 and row[spec.measures[col]] == den, (qid, col)
            assert row[col] == pytest.approx(num), (qid, col)
        elif den is None:
            assert row[col] == num, (qid, col)
        elif 0 < num < 5:  # a small count is shown as "<5" and its rate withheld
            rate = spec.rates[col]
            assert (row[rate.count], row[rate.base], row[col]) == (None, den, None), (qid, col)
        else:
            rate = spec.rates[col]
            assert (row[rate.count], row[rate.base]) == (num, den), (qid, col)
            assert row[col] == pytest.approx(round(100.0 * num / den, 1)), (qid, col)
        assert spec.label(col) == measures.get(mid).label


def test_the_same_label_shows_the_same_number_on_every_page_and_export(sample_db, truth):
    """Every place a measure's label appears (query files: KPI, charts, findings; the CSV
    export; the page text) names the registered measure and, for the fixed selection,
    its number; perturbed, the number is the same wherever the same records are counted."""
    registry = measures.load()
    by_label = {m.label.lower(): m.id for m in registry.values()}
    places = 0
    for entry in catalog.discover(QUERIES):
        if entry.spec is None:
            continue
        spec = entry.spec
        for col in spec.declared_columns():
            mid = by_label.get(spec.label(col).lower())
            if mid is not None:
                assert spec.measure_ids.get(col) == mid, (entry.id, col)
                places += 1
        text = (QUERIES / f"{entry.id}.sql").read_text(encoding="utf-8").lower()
        for label, mid in by_label.items():
            if label in text and not spec.dims and spec.chart != "finding":
                # A single-figure chart naming the measure must show that measure.
                assert mid in spec.measure_ids.values(), (entry.id, label)
    assert places >= len(registry)
    # Page text names no figure of its own: numbers come only from query files.
    for page in (settings.ROOT / "app_pages").glob("*.py"):
        body = page.read_text(encoding="utf-8").lower()
        for label in by_label:
            if label in body:
                assert "%" not in body.split(label, 1)[1][:40], (page.name, label)
    # The CSV export of Home's KPI and the measure computed alone (perturbed: the same
    # records give the same noise) print the same figure under the same label.
    s = db.Store(sample_db)
    try:
        scope = selection.scope_for(s, services=[SERVICE])
        home = results.run(s, catalog.get(QUERIES, "home/headline_figures").spec, scope, FY,
                           settings.get())
        csv_text = chart_files.export(home, "csv", "OFFICIAL").decode("utf-8-sig")
        alone = measures.compute(s, "known_to_social_care", scope, FY, settings.get())
        report = evaluation.evaluate(s, selection.ALL_SERVICES, FY, settings.get())
    finally:
        s.close()
    figure = alone.data.frame["value"][0]
    assert home.data.frame["pct_families_known_to_social_care"][0] == figure
    rows = [r for r in csv.reader(io.StringIO(csv_text)) if r]
    head = next(i for i, r in enumerate(rows) if r[0] == "Cases referred")
    column = rows[head].index("Families known to children's social care")
    assert rows[head + 1][column] == f"{figure}"
    fired = [f for f in report.findings
             if f.rule == "findings/whole_family_support" and f.subject == NAME]
    assert fired and f"{figure}% of those families" in fired[0].message


def test_the_dictionary_lists_every_measure_with_its_definition():
    text = (settings.ROOT / "data" / "DICTIONARY.md").read_text(encoding="utf-8")
    assert measures.dictionary_section() in text
    for m in measures.load().values():
        assert f"| `{m.id}` | {m.label} | {m.numerator or m.value} |" in text


def test_an_unknown_measure_in_a_header_is_refused_with_its_line():
    text = ("/*---\ntitle: t\ndescription: d\npage: home\nchart: kpi\ny: [pct]\n"
            "rates:\n  pct: {count: n, base: b}\nmeasure: {pct: no_such_measure}\n---*/\n"
            "select 1 as n, 2 as b, 50.0 as pct from cases\n")
    with pytest.raises(catalog.QueryFileError) as exc:
        catalog.parse(text, "queries/home/x.sql")
    assert exc.value.error.line == 9 and "no_such_measure" in exc.value.error.message
