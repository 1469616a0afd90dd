"""Comparators (issue 15 item 1): the benchmark of each comparator equals an independent
Polars computation over the services it should pool, perturbed by hand; too small a pool
is withheld; differencing one comparator against another recovers no small count; and
findings print the comparator's figure (item 5)."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

from service_insights import cli, settings
from service_insights.catalogue import catalog, periods, results, selection
from service_insights.catalogue.scope import Scope
from service_insights.findings import evaluation
from service_insights.store import db
from tests import by_hand, handmade
from tests.test_cellkey import _candidates

QUERIES = settings.ROOT / "queries"
FY = periods.financial_year("2024-25")
START, END = dt.date(2024, 4, 1), dt.date(2025, 3, 31)


@pytest.fixture
def store(sample_db):
    s = db.Store(sample_db)
    yield s
    s.close()


def _frames(path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The store's own tables (not the product's queries), as Polars frames."""
    con = duckdb.connect(str(path), read_only=True, config=db.read_only_config())
    try:
        cases = pl.from_arrow(con.sql("select * from store.cases").to_arrow_table())
        refs = pl.from_arrow(con.sql(
            "select service_id, meeting_date, is_repeat, record_key "
            "from store.marac_referrals_keyed").to_arrow_table())
        services = pl.from_arrow(con.sql(
            "select s.service_id, s.service_type, a.region from store.services s "
            "join store.areas a using (area_code)").to_arrow_table())
    finally:
        con.close()
    return cases, refs, services


def _noisy(frame: pl.DataFrame, cond: pl.Expr) -> int:
    """A count perturbed by hand (tests/by_hand.py) from its records' keys."""
    sub = frame.filter(cond)
    return by_hand.perturb(sub.height, int(sub["record_key"].cast(pl.Int64).sum() or 0))


def _rate(count: int, base: int) -> float | None:
    if 0 < count < 5 or base < 10 or not base:
        return None
    return round(100.0 * count / base, 1)


@pytest.mark.parametrize("kind", ["same_type", "all", "region"])
def test_headline_benchmark_equals_polars_for_each_comparator(sample_db, store, kind):
    cases, refs, services = _frames(sample_db)
    me = "S01"  # Ashcombe Idva Service, North East: 7 other Idva services, 4 others nearby
    mine = services.filter(pl.col("service_id") == me).row(0, named=True)
    if kind == "all":
        pool = services["service_id"].to_list()
        label = "All services"
    elif kind == "same_type":
        pool = services.filter((pl.col("service_type") == mine["service_type"])
                               & (pl.col("service_id") != me))["service_id"].to_list()
        label = "Other Idva services"
    else:
        pool = services.filter((pl.col("region") == mine["region"])
                               & (pl.col("service_id") != me))["service_id"].to_list()
        label = "Other services in North East"
    assert len(pool) >= 3
    c = cases.filter(pl.col("service_id").is_in(pool)
                     & pl.col("referral_date").is_between(START, END))
    r = refs.filter(pl.col("meeting_date").is_between(START, END))
    if kind != "all":
        r = r.filter(pl.col("service_id").is_in(pool))
    kids = pl.col("children_in_household") > 0
    recorded = kids & (pl.col("social_care") != "unknown")
    expected = {
        "pct_high_risk": _rate(_noisy(c, pl.col("dash_score") >= 14),
                               _noisy(c, pl.col("dash_score").is_not_null())),
        "pct_with_children": _rate(_noisy(c, kids), _noisy(c, pl.lit(True))),
        "pct_families_known_to_social_care": _rate(
            _noisy(c, recorded & (pl.col("social_care") != "none")), _noisy(c, recorded)),
        "pct_marac_repeat": _rate(_noisy(r, pl.col("is_repeat")), _noisy(r, pl.lit(True))),
    }
    spec = catalog.get(QUERIES, "home/headline_figures").spec
    scope = selection.scope_for(store, services=[me])
    res = results.run(store, spec, scope, FY, settings.get(), results.EVERYONE, kind)
    assert res.benchmark is not None, res.benchmark_note
    assert res.benchmark_label == label
    got = res.benchmark.frame.row(0, named=True)
    for col, value in expected.items():
        assert got[col] == pytest.approx(value), col
    # Cases: an average service of the pool (the perturbed pooled count / pool size).
    assert got["cases"] == pytest.approx(_noisy(c, pl.lit(True)) / len(pool))
    assert res.count_benchmark_label.endswith("average per service")


def test_a_pool_with_too_few_other_services_is_withheld_with_one_sentence(store):
    # Calderbrook Idva (S05) is in the North West with only one other service (S06).
    spec = catalog.get(QUERIES, "home/headline_figures").spec
    scope = selection.scope_for(store, services=["S05"])
    res = results.run(store, spec, scope, FY, settings.get(), results.EVERYONE, "region")
    assert res.benchmark is None
    assert res.benchmark_note.count(".") == 1 and "fewer than 3" in res.benchmark_note
    assert "other services in North West" in res.benchmark_note
    # The same selection against other Idva services (7 of them) is shown.
    res = results.run(store, spec, scope, FY, settings.get(), results.EVERYONE, "same_type")
    assert res.benchmark is not None and res.benchmark_label == "Other Idva services"


def test_national_comparator_runs_no_pooled_query(store):
    spec = catalog.get(QUERIES, "home/headline_figures").spec
    scope = selection.scope_for(store, services=["S01"])
    res = results.run(store, spec, scope, FY, settings.get(), results.EVERYONE, "national")
    assert res.benchmark is None and "data/reference.yaml" in res.benchmark_note


def test_the_funnel_centre_line_is_the_chosen_comparator(sample_db, store):
    cases, _, services = _frames(sample_db)
    spec = catalog.get(QUERIES, "compare/funnel_high_risk").spec
    scope = selection.scope_for(store, areas=["E06000001"])  # Ashcombe: S01, S02, S20
    res = results.run(store, spec, scope, FY, settings.get(), results.EVERYONE, "same_type")
    types = services.filter(pl.col("service_id").is_in(["S01", "S02", "S20"]))["service_type"]
    pool = services.filter(pl.col("service_type").is_in(types.to_list())
                           & ~pl.col("service_id").is_in(["S01", "S02", "S20"]))
    c = cases.filter(pl.col("service_id").is_in(pool["service_id"].to_list())
                     & pl.col("referral_date").is_between(START, END))
    # The centre line sums the pooled services' own (perturbed) rows, as the funnel does.
    ids = pool["service_id"].to_list()
    one = [c.filter(pl.col("service_id") == sid) for sid in ids]
    want = 100.0 * (sum(_noisy(x, pl.col("dash_score") >= 14) for x in one)
                    / sum(_noisy(x, pl.col("dash_score").is_not_null()) for x in one))
    assert res.overall["pct_high_risk"] == pytest.approx(want)
    assert res.benchmark_label == ("Other children and young people's, Idva and outreach "
                                   "services")


def test_cli_refuses_an_unknown_comparator(capsys):
    with pytest.raises(SystemExit):
        cli.main(["export", "--year", "2024-25", "--comparator", "galaxy"])
    assert "galaxy" in capsys.readouterr().err


# ------------------------------------------------------------ differencing attacks


TYPED = [
    {"service_id": f"S{i}", "name": f"Service {i}",
     "service_type": "idva" if i <= 4 else "refuge",
     "area_code": "E0000000A" if i <= 3 else "E0000000B"}
    for i in range(1, 8)
]
"""S1-S4 Idva, S5-S7 refuges; S1-S3 in the North (area A), S4-S7 in the South (area B)."""


def _typed_store(tmp_path, seed: int):
    """Non-binary clients: S5 has 3, every other service none. The viewer (S4's manager)
    sees all services against 'all' and against 'other Idva services'; their difference
    minus S4's own count is the refuges' total, 3, if the figures were exact."""
    day = dt.date(2024, 6, 1)
    rows = ([handmade.case(service_id="S5", gender="non_binary", referral_date=day)
             for _ in range(3)]
            + [handmade.case(service_id=f"S{i}", gender="female", referral_date=day)
               for i in range(1, 8) for _ in range(20 + 3 * i)])
    keys = np.random.default_rng(seed).integers(0, 256, size=len(rows))
    for row, key in zip(rows, keys, strict=True):
        row["record_key"] = int(key)
    return handmade.build(tmp_path / f"typed-{seed}.duckdb", rows, services=TYPED)


def test_comparators_differenced_recover_no_small_count(tmp_path):
    """All services minus other Idva services minus the viewer's own is the refuges'
    pool (3 services, one with 3 non-binary clients): with exact figures the attacker
    would read 3 every time; with the comparators perturbed it is one guess among
    several."""
    from service_insights.protection import cellkey

    ptable = cellkey.load(by_hand.PTABLE)
    spec = catalog.get(QUERIES, "equality/cases_by_gender").spec
    me = Scope(("S4",), ("E0000000B",), True, "Service 4")
    manager = results.Audience(visible=("S4",), own=("S4",))
    right, draws = 0, 10
    for seed in range(draws):
        s = db.Store(_typed_store(tmp_path, seed))
        try:
            shown = {}
            for kind in ("all", "same_type"):
                res = results.run(s, spec, me, FY, settings.get(), manager, kind)
                assert res.benchmark is not None, (kind, res.benchmark_note)
                # The pooled count as the comparator's figures show it (CSV, table).
                shown_frame = res.benchmark.display()
                nb = shown_frame.filter(pl.col("gender_group") == "Non-binary")
                shown[kind] = nb["cases"][0].replace(",", "") if nb.height else "0"
        finally:
            s.close()
        # The pooled figures are what the cell key method gives by hand, not the truth.
        whole = by_hand.shown(*by_hand.truth(
            tmp_path / f"typed-{seed}.duckdb", "select count(*), sum(record_key) from "
            "store.cases where gender = 'non_binary'"))
        assert shown["all"] == ("<5" if whole is None else str(whole))
        candidates = _candidates(ptable, "<5", [shown["same_type"], "0"], shown["all"])
        assert 3 in candidates and len(candidates) > 1, (seed, shown, candidates)
        right += shown["all"].isdigit() and shown["same_type"].isdigit() and \
            int(shown["all"]) - int(shown["same_type"]) == 3
    assert right < draws * 0.6, right


@pytest.mark.parametrize("kind", ["same_type", "region"])
def test_a_pool_within_reach_of_the_viewer_is_withheld(tmp_path, kind):
    """S1's region (North) holds S2 and S3 only; S5's type (refuge) holds S6 and S7 only:
    either pool minus what the viewer sees would single out two services."""
    s = db.Store(_typed_store(tmp_path, 1))
    try:
        spec = catalog.get(QUERIES, "equality/cases_by_gender").spec
        sid = "S1" if kind == "region" else "S5"
        me = Scope((sid,), ("E0000000A",), True, sid)
        res = results.run(s, spec, me, FY, settings.get(),
                          results.Audience(visible=(sid,), own=(sid,)), kind)
        assert res.benchmark is None and "subtracted" in res.benchmark_note
    finally:
        s.close()


# ---------------------------------------------------------------- findings (item 5)


def test_findings_print_the_comparator_figure_beside_the_service(sample_db, store):
    cases, _, services = _frames(sample_db)
    report = evaluation.evaluate(store, selection.ALL_SERVICES, FY, settings.get(),
                                 results.EVERYONE, "same_type")
    found = [f for f in report.findings if f.rule == "findings/whole_family_support"]
    assert found, "the sample should show the whole-family finding"
    names = dict(zip(*_names(sample_db), strict=True))
    for f in found:
        sid = names[f.subject]
        kind = services.filter(pl.col("service_id") == sid)["service_type"][0]
        pool = services.filter((pl.col("service_type") == kind)
                               & (pl.col("service_id") != sid))["service_id"].to_list()
        c = cases.filter(pl.col("service_id").is_in(pool)
                         & pl.col("referral_date").is_between(START, END))
        # The finding's point is the offer (its `compare` rate): among families known to
        # social care with the offer recorded, the share offered whole-family support.
        known = ((pl.col("children_in_household") > 0) & (pl.col("social_care") != "unknown")
                 & (pl.col("social_care") != "none"))
        offer = pl.col("whole_family_support")
        want = _rate(_noisy(c, known & (offer == True)),  # noqa: E712 - a null is not True
                     _noisy(c, known & offer.is_not_null()))
        assert f.comparison.endswith(f"against {want:.1f}% at other Idva services.")
        assert f.comparison.startswith(
            "Families known to social care offered whole-family support: ")
        assert f.message.endswith(f.comparison)


def _names(path):
    con = duckdb.connect(str(path), read_only=True, config=db.read_only_config())
    try:
        rows = con.execute("select name, service_id from store.services").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows], [r[1] for r in rows]
