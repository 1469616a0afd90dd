"""Every finding prints the comparator's figure (issue 15 item 5): "Under-represented
groups" (a different registered measure on each row) and "Marac volume below expected"
(a figure per population, about whole Marac areas) print the chosen comparator's figure,
equal to an independent Polars computation over the services or areas it should pool,
perturbed by hand (tests/by_hand.py) as the product perturbs every pooled count."""

from __future__ import annotations

import re

import duckdb
import polars as pl
import pytest

from service_insights import settings
from service_insights.catalogue import comparators, results, selection
from service_insights.findings import evaluation
from service_insights.store import db
from tests.test_comparators import END, FY, START, _frames, _names, _noisy, _rate

GROUPS = {
    "Male clients": (pl.col("gender") == "male", pl.col("gender") != "not_recorded"),
    "LGBT+ clients": (pl.col("lgbt") == "yes", pl.col("lgbt") != "not_recorded"),
    "Disabled clients": (pl.col("disability") == "yes",
                         pl.col("disability") != "not_recorded"),
    "Black, Asian or racially minoritised clients": (
        pl.col("ethnicity").is_in(["black", "asian", "mixed", "other"]),
        pl.col("ethnicity") != "not_recorded"),
}


@pytest.fixture
def store(sample_db):
    s = db.Store(sample_db)
    yield s
    s.close()


def _areas(path) -> pl.DataFrame:
    con = duckdb.connect(str(path), read_only=True, config=db.read_only_config())
    try:
        return pl.from_arrow(con.sql("select area_code, name, region, adult_female_population "
                                     "from store.areas").to_arrow_table())
    finally:
        con.close()


@pytest.mark.parametrize("kind", ["same_type", "all", "region", "national"])
def test_under_represented_groups_print_the_comparator_figure(sample_db, store, kind):
    cases, _, services = _frames(sample_db)
    report = evaluation.evaluate(store, selection.ALL_SERVICES, FY, settings.get(),
                                 results.EVERYONE, kind)
    found = [f for f in report.findings if f.rule == "findings/under_represented_groups"]
    assert found, "the sample should show an under-represented group"
    names = dict(zip(*_names(sample_db), strict=True))
    national = {"Male clients": "6.4", "LGBT+ clients": "1.6", "Disabled clients": "10.1",
                "Black, Asian or racially minoritised clients": "14.1"}
    for f in found:
        label = f.comparison.split(":", 1)[0]
        num, den = GROUPS[label]
        assert f.message.endswith(f.comparison)
        if kind == "national":
            assert f.comparison.endswith(f"against {national[label]}% nationally.")
            continue
        sid = names[f.subject]
        me = services.filter(pl.col("service_id") == sid).row(0, named=True)
        if kind == "all":
            pool, phrase = services["service_id"].to_list(), "across all services"
        else:
            col = "service_type" if kind == "same_type" else "region"
            pool = services.filter((pl.col(col) == me[col])
                                   & (pl.col("service_id") != sid))["service_id"].to_list()
            phrase = (f"at other {comparators.TYPE_NAMES[me[col]]} services"
                      if kind == "same_type" else f"at other services in {me[col]}")
        if len(pool) < 3:
            assert "no comparator figure" in f.comparison and "fewer than 3" in f.comparison
            continue
        c = cases.filter(pl.col("service_id").is_in(pool)
                         & pl.col("referral_date").is_between(START, END))
        want = _rate(_noisy(c, num & den), _noisy(c, den))
        assert f.comparison.endswith(f"against {want:.1f}% {phrase}."), (f.comparison, want)


@pytest.mark.parametrize("kind", ["same_type", "all", "national"])
def test_marac_volume_prints_the_other_marac_areas_figure(sample_db, store, kind):
    con = duckdb.connect(str(sample_db), read_only=True, config=db.read_only_config())
    try:
        heard = pl.from_arrow(con.sql("select marac_area, meeting_date, record_key "
                                      "from store.marac_referrals_keyed").to_arrow_table())
    finally:
        con.close()
    areas = _areas(sample_db)
    report = evaluation.evaluate(store, selection.ALL_SERVICES, FY, settings.get(),
                                 results.EVERYONE, kind)
    found = [f for f in report.findings if f.rule == "findings/marac_volume_below_expected"]
    assert found, "the sample should show a Marac under its expected volume"
    for f in found:
        assert f.comparison.startswith("Cases a year per 10,000 adult females: ")
        if kind == "national":
            assert f.comparison.endswith("against 47 nationally.")
            continue
        code = areas.filter(pl.col("name") == f.subject)["area_code"][0]
        pool = areas if kind == "all" else areas.filter(pl.col("area_code") != code)
        r = heard.filter(pl.col("meeting_date").is_between(START, END)
                         & pl.col("marac_area").is_in(pool["area_code"].to_list()))
        noisy = _noisy(r, pl.lit(True))
        want = 10000.0 * noisy / pool["adult_female_population"].sum() * 365.25 / 365
        got = float(re.search(r"against ([0-9.,]+) ", f.comparison).group(1).replace(",", ""))
        assert got == pytest.approx(want, abs=0.11), f.comparison
        if kind == "same_type":
            assert "at other Marac areas (a Marac area is compared with other Marac areas" in (
                f.comparison)
        else:
            assert "across all Marac areas." in f.comparison


def test_an_area_comparator_too_close_to_the_viewer_is_withheld(store):
    """A region with one other Marac area's worth of services outside the selection is
    withheld with one sentence, never a figure that could be differenced."""
    table = comparators.services_register(store)
    for region in sorted(set(table["region"].to_list())):
        codes = sorted(set(table.filter(pl.col("region") == region)["area_code"].to_list()))
        scope = selection.scope_for(store, areas=codes[:1])
        chosen = comparators.area_pool(store, scope, "region", 3)
        others = table.filter((pl.col("region") == region)
                              & ~pl.col("area_code").is_in(codes[:1]))
        if others.height < 3:
            assert chosen.scope is None and "fewer than 3" in chosen.note
        else:
            assert set(chosen.scope.areas) == set(others["area_code"].to_list())
            assert chosen.scope.by_service is False


@pytest.mark.parametrize("kind", ["same_type", "region"])
def test_every_finding_sets_a_comparator_figure_beside_its_own_or_says_why_not(store, kind):
    report = evaluation.evaluate(store, selection.ALL_SERVICES, FY, settings.get(),
                                 results.EVERYONE, kind)
    rules = {f.rule for f in report.findings}
    assert len(rules) >= 6, rules
    for f in report.findings:
        assert f.comparison, f.rule
        assert f.message.endswith(f.comparison)
        assert (" against " in f.comparison or "no comparator figure" in f.comparison.lower()
                ), f.comparison
        assert f.comparison.count(".") >= 1 and "\n" not in f.comparison


def test_a_rule_without_a_registered_measure_says_why_no_comparator(store, tmp_path,
                                                                     monkeypatch):
    """An analyst's new rule whose rate is not a registered measure still ends with one
    sentence saying why no comparator figure is shown."""
    import shutil

    root = tmp_path / "queries"
    shutil.copytree(settings.ROOT / "queries", root)
    rule = root / "findings" / "long_abuse_before_help.sql"
    text = rule.read_text(encoding="utf-8")
    assert "measure: {pct_long: long_abuse}\n" in text
    rule.write_text(text.replace("measure: {pct_long: long_abuse}\n", ""), encoding="utf-8")
    monkeypatch.setenv("SI_QUERIES_DIR", str(root))
    report = evaluation.evaluate(store, selection.ALL_SERVICES, FY, settings.get(),
                                 results.EVERYONE, "same_type")
    found = [f for f in report.findings if f.rule == "findings/long_abuse_before_help"]
    assert found, "the sample should show victims living with abuse for years"
    for f in found:
        assert f.comparison.startswith("No comparator figure: ")
        assert "is not a measure in data/measures.yaml" in f.comparison
        assert f.message.endswith(f.comparison)
