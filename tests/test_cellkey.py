"""The cell key method: equal to ONS's own implementation, consistent across routes, and
the differencing attacks of issue 12 no longer recover a small count.

Expected values come from ONS's `cell-key-perturbation` package (create_perturbed_table)
and from the ptable applied by hand (tests/by_hand.py), never from the product's code.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools

import duckdb
import numpy as np
import pandas as pd
import pytest
from cell_key_perturbation.create_perturbed_table import create_perturbed_table
from cell_key_perturbation.utils.generate_test_ptable import generate_ptable_10_5_rule

from service_insights import cli, settings
from service_insights.access import grants
from service_insights.catalogue import catalog, keying, periods, results, selection
from service_insights.catalogue.scope import ALL_SERVICES
from service_insights.protection import cellkey
from service_insights.store import db
from tests import by_hand, handmade

QUERIES = settings.ROOT / "queries"
FY = periods.financial_year("2024-25")


@pytest.fixture(scope="module")
def store(sample_db):
    s = db.Store(sample_db)
    yield s
    s.close()


def microdata(db_path, where="true") -> pd.DataFrame:
    con = duckdb.connect(str(db_path), read_only=True, config=db.read_only_config())
    try:
        return con.execute(
            "select c.service_id, s.area_code, c.gender, c.age_band, c.record_key "
            f"from store.cases c join store.services s using (service_id) where {where}"
        ).df()
    finally:
        con.close()


def ons_table(data: pd.DataFrame, ptable: pd.DataFrame, geog, tab_vars) -> dict:
    out = create_perturbed_table(data=data, ptable=ptable, geog=geog, tab_vars=tab_vars,
                                 record_key="record_key", threshold=0)
    return {tuple(r[c] for c in geog + tab_vars): int(r["count"]) for _, r in out.iterrows()}


# ---------------------------------------------------------------- ONS's implementation


def test_the_default_ptable_is_the_documented_one():
    """data/ptable.csv is what cellkey.default_ptable() makes, and has the stated
    properties: counts 1 to 4 always move and never go below zero, a 2 never becomes 0
    nor a 3 a 5; noise is at most 3, zero for 40% of keys from 5 up and more than 2 for
    4 keys in 256; mean zero on every row."""
    rows = by_hand.ptable()
    assert len(rows) == 750 * 256
    for pcv in range(1, 751):
        noise = [rows[(pcv, k)] for k in range(256)]
        assert sum(noise) == 0, pcv
        assert all(abs(v) <= 3 and pcv + v >= 0 for v in noise), pcv
        if pcv <= 4:
            assert 0 not in noise and all(abs(v) <= 2 for v in noise), pcv
        else:
            assert noise.count(0) == 102 and sum(abs(v) == 3 for v in noise) == 4, pcv
    assert 0 not in {2 + rows[(2, k)] for k in range(256)}
    assert 5 not in {3 + rows[(3, k)] for k in range(256)}
    made = cellkey.default_ptable()
    assert {(r["pcv"], r["ckey"]): r["pvalue"] for r in made.iter_rows(named=True)} == rows


def test_counts_equal_ons_create_perturbed_table_cell_for_cell(sample_db):
    """Every (area, service, gender, age band) cell of the whole sample, small and large
    (some over 750, where the pcv wraps), perturbed by the product's ptable code and by
    ONS's package on the same microdata and record keys."""
    data = microdata(sample_db)
    ptable = pd.read_csv(by_hand.PTABLE)
    ours = cellkey.load(by_hand.PTABLE)
    for geog, tab_vars in ((["area_code"], ["service_id", "gender", "age_band"]),
                           (["area_code"], ["gender"]), ([], ["gender"])):
        expected = ons_table(data, ptable, geog, tab_vars)
        grouped = data.groupby(geog + tab_vars).agg(n=("record_key", "size"),
                                                   k=("record_key", "sum")).reset_index()
        got = dict(zip([tuple(r) for r in grouped[geog + tab_vars].itertuples(index=False)],
                       ours.perturb(grouped["n"].tolist(), grouped["k"].tolist()),
                       strict=True))
        # ONS's table also lists every empty combination, as 0 (zeros are never moved).
        assert got == {c: v for c, v in expected.items() if c in got}
        assert all(v == 0 for c, v in expected.items() if c not in got)
        assert len(got) >= 4  # the wrap above 750 is exercised
    assert max(data.groupby("gender").size()) > 750


def test_the_product_shows_ons_counts_through_a_chart(sample_db, store):
    """The gender chart for each area and for all services, as a commissioner sees it,
    against ONS's table on the same records: a shown count equals ONS's, "<5" stands
    where ONS's count is 1 to 4."""
    data = microdata(sample_db, "referral_date between '2024-04-01' and '2025-03-31'")
    names = {"female": "Female", "male": "Male", "non_binary": "Non-binary",
             "not_recorded": "Not recorded"}
    data["gender_group"] = data["gender"].map(names)
    ptable = pd.read_csv(by_hand.PTABLE)
    expected = ons_table(data, ptable, ["area_code"], ["gender_group"])
    totals = ons_table(data, ptable, [], ["area_code"])
    spec = catalog.get(QUERIES, "equality/cases_by_gender").spec
    compared = 0
    for area in sorted(set(data["area_code"])):
        scope = selection.scope_for(store, areas=[area])
        res = results.run(store, spec, scope, FY, settings.get())
        assert res.perturbed
        for row, hidden in zip(res.data.frame.iter_rows(named=True),
                               res.data.hidden["cases"], strict=True):
            want = expected.get((area, row["gender_group"]), 0)
            if hidden:
                assert 1 <= want <= 4 or res.data.secondary
            else:
                assert row["cases"] == want, (area, row)
                compared += 1
            assert row["all_cases"] == totals[(area,)]
    assert compared >= 16


def test_a_stricter_ptable_is_swapped_in_by_setting(sample_db, store, tmp_path, monkeypatch):
    """SI_PTABLE with ONS's 10_5 rule table: counts under 10 become 0, others round to 5,
    as ONS's package gives."""
    path = tmp_path / "ptable_10_5_rule.csv"
    generate_ptable_10_5_rule().to_csv(path, index=False)
    monkeypatch.setenv("SI_PTABLE", str(path))
    data = microdata(sample_db, "referral_date between '2024-04-01' and '2025-03-31'")
    expected = ons_table(data, pd.read_csv(path), [], ["service_id"])
    spec = catalog.get(QUERIES, "home/headline_figures").spec
    for sid in ("S01", "S07", "S13"):
        scope = selection.scope_for(store, services=[sid])
        res = results.run(store, spec, scope, FY, settings.get())
        assert res.data.frame["cases"][0] == expected[(sid,)]
        assert res.data.frame["cases"][0] % 5 == 0


def test_a_broken_ptable_is_named_in_one_sentence(store, tmp_path, monkeypatch):
    path = tmp_path / "bad.csv"
    path.write_text("pcv,ckey,pvalue\n1,0,-5\n")
    monkeypatch.setenv("SI_PTABLE", str(path))
    spec = catalog.get(QUERIES, "home/headline_figures").spec
    res = results.run(store, spec, ALL_SERVICES, FY, settings.get())
    assert res.data is None
    assert "bad.csv" in res.error.message and "negative count" in res.error.message


# ---------------------------------------------------------------- consistency


def test_the_same_records_get_the_same_noise_on_every_route(store):
    """An area's cases in a year are one set of records whichever chart counts them, so
    every chart shows the same perturbed total, and it is the by-hand one."""
    scope = selection.scope_for(store, areas=["E06000001"])
    cfg = settings.get()

    def first(qid, col):
        res = results.run(store, catalog.get(QUERIES, qid).spec, scope, FY, cfg)
        return res.data.frame[col][0]

    totals = {first("home/headline_figures", "cases"),
              first("equality/cases_by_gender", "all_cases"),
              first("equality/cases_by_ethnicity", "all_cases"),
              first("overview/cases_by_referral_source", "all_cases"),
              first("children/cases_by_number_of_children", "all_cases")}
    truth = by_hand.truth(store.path, "select count(*), sum(c.record_key) from store.cases c "
                          "join store.services s using (service_id) where s.area_code = "
                          "'E06000001' and referral_date between '2024-04-01' and "
                          "'2025-03-31'")
    assert totals == {by_hand.perturb(*truth)}
    heard = {first("home/headline_figures", "marac_referrals_heard"),
             first("marac/partner_agency_share", "referrals_heard"),
             first("marac/marac_volume_by_population", "marac_referrals_heard")}
    assert len(heard) == 1
    # One service inside a funnel of the area and the same service on its own.
    funnel = results.run(store, catalog.get(QUERIES, "compare/funnel_high_risk").spec,
                         scope, FY, cfg).data.frame
    one = selection.scope_for(store, services=["S01"])
    name = selection.services_table(store).filter(
        selection.pl.col("service_id") == "S01")["name"][0]
    dash = results.run(store, catalog.get(QUERIES, "risk/cases_by_dash_band").spec, one, FY,
                       cfg).data.frame
    in_funnel = funnel.filter(selection.pl.col("service_name") == name)["assessed_cases"][0]
    assert in_funnel == dash["assessed_cases"][0]


def test_a_manager_sees_their_own_counts_exactly_and_a_commissioner_perturbed(store):
    catalogue = selection.services_table(store)
    manager = grants.resolve("sam", "service_manager", ["S03"], [], catalogue)
    area = catalogue.filter(selection.pl.col("service_id") == "S03")["area_code"][0]
    commissioner = grants.resolve("cat", "commissioner", [], [area], catalogue)
    scope = selection.scope_for(store, services=["S03"])
    spec = catalog.get(QUERIES, "home/headline_figures").spec
    cfg = settings.get()
    n, k = by_hand.truth(store.path, "select count(*), sum(record_key) from store.cases "
                         "where service_id = 'S03' and referral_date between '2024-04-01' "
                         "and '2025-03-31'")
    assert by_hand.perturb(n, k) != n, "this service's count is one the ptable moves"
    mine = results.run(store, spec, grants.clamp(scope, manager), FY, cfg,
                       grants.audience(manager))
    theirs = results.run(store, spec, grants.clamp(scope, commissioner), FY, cfg,
                         grants.audience(commissioner))
    assert mine.data.frame["cases"][0] == n and not mine.perturbed
    assert theirs.data.frame["cases"][0] == by_hand.perturb(n, k) and theirs.perturbed
    assert "perturbed" in theirs.data.note() and "perturbed" not in mine.data.note()
    # The manager's benchmark spans other services: perturbed too.
    assert mine.benchmark is not None and mine.benchmark.perturbed


def test_every_query_file_keys_every_count():
    """Every query file: every count, rate count and base is keyed (or not a count of
    records at all, like a population), so none is withheld for want of a key."""
    entries = catalog.discover(QUERIES)
    assert len(entries) == len(list(QUERIES.rglob("*.sql")))  # counted a second way
    for e in entries:
        spec = e.spec
        k = keying.rewrite(spec.sql)
        assert not k.problem, (e.id, k.problem)
        cols = {*spec.counts, *(r.count for r in spec.rates.values()),
                *(r.base for r in spec.rates.values()), *spec.measures.values()}
        for col in cols:
            assert k.kind(col) in ("keyed", "plain"), (e.id, col, k.kind(col))


@pytest.mark.parametrize(("sql", "kind"), [
    ("select count(distinct client_key) as n from cases", "tainted"),
    ("select count(*) + 1 as n from cases", "tainted"),
    ("select sum(1) as n from cases", "record"),
    ("select count(*) * 7 as n from cases", "tainted"),
    ("select sum(adult_female_population) as n from areas", "plain"),
    ("select count(*) as n from cases", "keyed"),
])
def test_counts_that_cannot_be_keyed_are_recognised(sql, kind):
    assert keying.rewrite(sql).kind("n") == kind


def test_a_count_that_cannot_be_keyed_is_withheld_not_shown(store):
    text = ("/*---\ntitle: Clients\ndescription: Distinct clients.\npage: risk\nchart: kpi\n"
            "y: [clients]\ncounts: [clients]\n---*/\n"
            "select count(distinct client_key) as clients from cases\n")
    spec = catalog.parse(text, "queries/risk/clients.sql")
    scope = selection.scope_for(store, areas=["E06000001"])
    res = results.run(store, spec, scope, FY, settings.get())
    assert res.data.frame["clients"][0] is None and res.data.hidden["clients"] == [True]
    assert "clients could not be perturbed" in res.data.note()
    mine = results.run(store, spec, scope, FY, settings.get(),
                       results.Audience(own=scope.services))
    assert mine.data.frame["clients"][0] > 0, "the services' own manager sees it"


def test_record_keys_are_out_of_reach_of_query_files(store):
    for relation in ("cases", "marac_referrals"):
        frame = store.query(f"select * from main.{relation} limit 0").frame
        assert keying.RECORD_KEY not in frame.columns
    spec = catalog.parse("/*---\ntitle: K\ndescription: K.\npage: risk\nchart: table\n"
                         "benchmark: false\n---*/\nselect gender, max(record_key) as k "
                         "from cases group by gender\n", "queries/risk/k.sql")
    res = results.run(store, spec, ALL_SERVICES, FY, settings.get())
    assert res.error is not None and "record_key" in res.error.message


# ---------------------------------------------------------------- differencing attacks


def _attack_store(tmp_path, keys_seed: int):
    """Area A holds S1, S2 and S3. Non-binary clients: S1 (service A) 5, S2 (service B)
    3, S3 none, so the area has 8: the issue's example."""
    day = dt.date(2024, 6, 1)
    rows = ([handmade.case(service_id="S1", gender="non_binary", referral_date=day)
             for _ in range(5)]
            + [handmade.case(service_id="S1", gender="female", referral_date=day)
               for _ in range(40)]
            + [handmade.case(service_id="S2", gender="non_binary", referral_date=day)
               for _ in range(3)]
            + [handmade.case(service_id="S2", gender="female", referral_date=day)
               for _ in range(30)]
            + [handmade.case(service_id="S3", gender="female", referral_date=day)
               for _ in range(25)]
            + [handmade.case(service_id=f"S{i}", gender="female", referral_date=day)
               for i in (4, 5, 6) for _ in range(20)])
    keys = np.random.default_rng(keys_seed).integers(0, 256, size=len(rows))
    for row, key in zip(rows, keys, strict=True):
        row["record_key"] = int(key)
    return handmade.build(tmp_path / f"attack-{keys_seed}.duckdb", rows)


def _cli_csv(tmp_path, args) -> dict[str, str]:
    out = tmp_path / "export.csv"
    rc = cli.main(["export", *args, "--year", "2024-25", "--query",
                   "equality/cases_by_gender", "--format", "csv", "--out", str(out)])
    assert rc == 0
    lines = out.read_text(encoding="utf-8-sig").split("\n\n", 1)[1]
    rows = list(csv.reader(io.StringIO(lines)))
    col = rows[0].index("Cases")
    return {r[0]: r[col] for r in rows[1:] if r}


def test_commissioner_differencing_no_longer_recovers_the_small_count(tmp_path, monkeypatch):
    """Issue 12: area = 8 non-binary, service A = 5, service B "<5", so B = 3 exactly.
    Three CLI CSV exports now show perturbed counts: area minus A is a guess, and what the
    three files show is consistent with several values for B (3 among them)."""
    ptable = cellkey.load(by_hand.PTABLE)
    right = 0
    draws = 12
    for seed in range(draws):
        monkeypatch.setenv("SI_DB_PATH", str(_attack_store(tmp_path, seed)))
        area = _cli_csv(tmp_path, ["--area", "E0000000A"])["Non-binary"]
        a = _cli_csv(tmp_path, ["--service", "S1"])["Non-binary"]
        b = _cli_csv(tmp_path, ["--service", "S2"])["Non-binary"]
        path = tmp_path / f"attack-{seed}.duckdb"

        def noisy(where, path=path):
            value = by_hand.shown(*by_hand.truth(
                path, "select count(*), sum(record_key) from store.cases "
                f"where gender = 'non_binary' and {where}"))
            return "<5" if value is None else str(value)

        # The files show the by-hand perturbed counts, not the true 8 and 5.
        assert area == noisy("service_id in ('S1', 'S2', 'S3')")
        assert a == noisy("service_id = 'S1'")
        candidates = _candidates(ptable, b, [a, "0"], area)
        assert 3 in candidates and len(candidates) > 1, (seed, area, a, b, candidates)
        right += area.isdigit() and a.isdigit() and int(area) - int(a) == 3
    # Before perturbation area minus A gave 3 every time; now it is one guess among
    # several, right only by chance.
    assert right < draws * 0.6, right


def _cands(ptable: cellkey.Ptable, shown: str, limit: int = 60) -> set[int] | None:
    """True values a cell could have, given what it shows and the ptable (any cell key).
    None when nothing is known ("–")."""
    if shown == disclosure_withheld():
        return None
    out = set()
    for t in range(0, limit):
        outs = {t + e for e in ptable.spread(t)}
        if shown.startswith("<"):
            if t > 0 and outs & set(range(1, int(shown[1:]))):
                out.add(t)
        elif int(shown.replace(",", "")) in outs:
            out.add(t)
    return out


def disclosure_withheld() -> str:
    from service_insights.protection.disclosure import WITHHELD_TEXT

    return WITHHELD_TEXT


def _candidates(ptable, hidden: str, others: list[str], total: str) -> set[int]:
    """Values of the hidden cell consistent with its own shown value, the other parts'
    and the total's (the total is the sum of the parts)."""
    mine, whole = _cands(ptable, hidden), _cands(ptable, total)
    parts = [_cands(ptable, o) for o in others]
    if mine is None or whole is None or any(p is None for p in parts):
        return set(range(0, 60))  # a withheld part or total: nothing pins the cell down
    sums = {0}
    for p in parts:
        sums = {s + v for s in sums for v in p}
    return {b for b in mine if any(s + b in whole for s in sums)}


def _recoveries(store, ptable, qids, period_list) -> tuple[int, int, int]:
    """Area minus each service over the given queries and periods: how many cells with a
    true count of 1 to 4 there are, and how many of them the attacker pins down to one
    value from what is shown, before perturbation (exact counts, suppression only) and
    with it."""
    cfg = settings.get()
    table = selection.services_table(store)
    exact = results.Audience(own=tuple(table["service_id"]))
    no_noise = cellkey.Ptable(cellkey.pl.DataFrame({"pcv": [1], "ckey": [0], "pvalue": [0]}),
                              "no noise")
    small = before = after = 0
    areas = {}
    for area in sorted(set(table["area_code"])):
        ids = sorted(table.filter(selection.pl.col("area_code") == area)["service_id"])
        scopes = {s: selection.scope_for(store, services=[s]) for s in ids}
        scopes[area] = selection.scope_for(store, areas=[area])
        areas[area] = (ids, scopes)
    for qid, period in itertools.product(qids, period_list):
        spec = catalog.get(QUERIES, qid).spec
        if spec.chart in ("funnel", "finding") or not spec.counts:
            continue
        cols = list(dict.fromkeys([*spec.counts, *(r.count for r in spec.rates.values())]))
        for area, (ids, scopes) in areas.items():
            seen = {}
            runs = {k: results.run(store, spec, sc, period, cfg, exact)
                    for k, sc in scopes.items()}
            seen["exact"] = {k: _by_dims(spec, r) for k, r in runs.items()}
            true = {k: _by_dims(spec, r, raw=True) for k, r in runs.items()}
            if not any(v is not None and 1 <= v <= 4 for s in ids
                       for values in true[s].values() for v in values.values()):
                continue  # no small count in this area to attack: nothing to difference
            runs = {k: results.run(store, spec, sc, period, cfg, results.EVERYONE)
                    for k, sc in scopes.items()}
            seen["noisy"] = {k: _by_dims(spec, r) for k, r in runs.items()}
            for s in ids:
                for dims, values in true[s].items():
                    for col in cols:
                        v = values.get(col)
                        if v is None or not 1 <= v <= 4:
                            continue
                        small += 1
                        for name, pt in (("exact", no_noise), ("noisy", ptable)):
                            shown = seen[name]
                            others = [shown[o].get(dims, {}).get(col, "0")
                                      for o in ids if o != s]
                            got = _candidates(pt, shown[s].get(dims, {}).get(col, "0"),
                                              others, shown[area].get(dims, {}).get(col, "0"))
                            if got == {v}:
                                before += name == "exact"
                                after += name == "noisy"
    return small, before, after


def _by_dims(spec, res, raw=False) -> dict[tuple, dict]:
    frame = res.data.frame if raw else res.data.display()
    dims = [d for d in spec.dims if d in frame.columns]
    out = {}
    for i, row in enumerate(frame.iter_rows(named=True)):
        key = tuple(str(row[d]) for d in dims)
        if raw:
            out[key] = {c: res.data._raw[c][i] for c in res.data._count_cols}
        else:
            out[key] = {c: str(row[c]).replace(",", "") for c in res.data._count_cols}
    return out


@pytest.fixture
def no_benchmark(monkeypatch):
    monkeypatch.setenv("SI_MIN_OTHER_SERVICES", "1000")  # the attack needs no benchmark


@pytest.mark.slow
def test_area_minus_each_service_finds_no_exact_small_count(store, no_benchmark):
    """Every catalogue chart with counts, for each area and its services, in every
    financial year of the sample and each quarter of 2024-25: before perturbation the
    attacker pins down small cells exactly; with it, none."""
    qids = [e.id for e in catalog.discover(QUERIES) if not e.id.startswith("findings/")]
    period_list = ([periods.financial_year(y) for y in
                    ("2020-21", "2021-22", "2022-23", "2023-24", "2024-25")]
                   + [periods.quarter("2024-25", q) for q in (1, 2, 3, 4)])
    small, before, after = _recoveries(store, cellkey.load(by_hand.PTABLE), qids, period_list)
    print(f"\nsmall cells {small}; recovered exactly before {before}, after {after}")
    assert small > 1000 and before > small // 10
    assert after == 0


# ---------------------------------------------------------------- the benchmark guard


def test_benchmark_withheld_when_the_viewer_sees_all_but_one_service(tmp_path):
    """Issue 12: a commissioner who sees three services of four selects one and takes the
    benchmark; benchmark minus the three they see would give the fourth."""
    services = [{"service_id": f"S{i}", "name": f"Service {i}", "service_type": "idva",
                 "area_code": "E0000000A" if i <= 3 else "E0000000B"} for i in range(1, 5)]
    rows = [handmade.case(service_id=f"S{i}") for i in range(1, 5) for _ in range(30)]
    s = db.Store(handmade.build(tmp_path / "four.duckdb", rows, services=services))
    catalogue = selection.services_table(s)
    commissioner = grants.resolve("cat", "commissioner", [], ["E0000000A"], catalogue)
    assert commissioner.services == ("S1", "S2", "S3")
    spec = catalog.get(QUERIES, "equality/cases_by_gender").spec
    one = grants.clamp(selection.scope_for(s, services=["S1"]), commissioner)
    res = results.run(s, spec, one, FY, settings.get(), grants.audience(commissioner))
    assert res.benchmark is None
    assert "the services you can see" in res.benchmark_note
    # An analyst, who sees every service, gets it (4 - 1 = 3 lie outside the selection).
    analyst = grants.resolve("ana", "analyst", [], [], catalogue)
    seen_all = results.run(s, spec, one, FY, settings.get(), grants.audience(analyst))
    assert seen_all.benchmark is not None
    # Never for an empty selection.
    empty = grants.clamp(selection.scope_for(s, services=["S4"]), commissioner)
    assert empty.services == ()
    res = results.run(s, spec, empty, FY, settings.get(), grants.audience(commissioner))
    assert res.benchmark is None and "no services" in res.benchmark_note
    s.close()
