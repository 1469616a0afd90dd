"""Workbench counts get the same protection as a chart's (issue 12): perturbed by the cell
key method for everyone but a service manager looking at their own services, then
suppressed, with rates from the protected counts; saved workbench queries shown on pages
likewise. Written as the attacks: the same grouped count over complementary selections,
differenced, recovers no small count; the counts equal ONS's `create_perturbed_table` and
the ptable applied by hand (tests/by_hand.py) on the same record keys, never the code
under test."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from cell_key_perturbation.create_perturbed_table import create_perturbed_table

from service_insights import settings
from service_insights.access import grants
from service_insights.catalogue import catalog, keying, periods, results, selection, workbench
from service_insights.catalogue.scope import ALL_SERVICES
from service_insights.protection import cellkey
from service_insights.store import db
from tests import by_hand

FY = periods.financial_year("2024-25")
PERIOD = "referral_date between $period_start and $period_end"
GENDERS = f"select gender, count(*) from cases where {PERIOD} group by gender"
"""The issue's attack query, as an analyst would type it (the count has no name)."""


@pytest.fixture(scope="module")
def wb(sample_db):
    store = workbench.open_connection(sample_db)
    yield store
    store.close()


@pytest.fixture(scope="module")
def catalogue(wb):
    return selection.services_table(wb)


def true_cells(db_path, where: str = "true") -> dict[str, tuple[int, int]]:
    """gender -> (count, sum of record keys) in 2024-25, straight from the store file."""
    con = duckdb.connect(str(db_path), read_only=True, config=db.read_only_config())
    try:
        rows = con.execute(
            "select c.gender, count(*), sum(c.record_key) from store.cases c "
            "join store.services s using (service_id) "
            f"where c.referral_date between $a and $b and {where} group by 1",
            {"a": FY.start, "b": FY.end}).fetchall()
    finally:
        con.close()
    return {g: (int(n), int(k)) for g, n, k in rows}


def shown_by_gender(out: workbench.Outcome) -> dict[str, str]:
    frame = out.protected.display()
    return dict(zip(frame["gender"].to_list(), frame[out.counts[0]].to_list(), strict=True))


def commissioner_for(catalogue, area: str) -> grants.Viewer:
    return grants.resolve("cat", "commissioner", [], [area], catalogue)


def test_a_commissioners_counts_are_the_by_hand_perturbed_ones(wb, sample_db, catalogue):
    """The issue's query, unnamed count and all: each cell is the true count plus the
    ptable's noise for the sum of its records' keys, or "<5"."""
    area = catalogue["area_code"][0]
    viewer = commissioner_for(catalogue, area)
    out = workbench.run(wb, GENDERS, ALL_SERVICES, FY, viewer, settings.get())
    assert out.counts == ["n"] and out.protected.perturbed
    truth = true_cells(sample_db, f"s.area_code = '{area}'")
    shown = shown_by_gender(out)
    assert set(shown) == set(truth)
    moved = 0
    for gender, (n, k) in truth.items():
        expected = by_hand.shown(n, k)
        if shown[gender] != "–":  # a secondary suppression
            assert shown[gender] == ("<5" if expected is None else f"{expected:,}"), gender
        moved += by_hand.perturb(n, k) != n
    assert moved, "at least one count is one the ptable moves"


def test_an_analysts_counts_equal_ons_create_perturbed_table(wb, sample_db):
    """Every service's counts by gender, as an analyst sees them in the workbench, equal
    ONS's reference implementation on the same microdata and record keys, cell for cell."""
    con = duckdb.connect(str(sample_db), read_only=True, config=db.read_only_config())
    try:
        data = con.execute("select service_id, gender, record_key from store.cases "
                           "where referral_date between $a and $b",
                           {"a": FY.start, "b": FY.end}).df()
    finally:
        con.close()
    ons = create_perturbed_table(data=data, ptable=pd.read_csv(by_hand.PTABLE),
                                 geog=["service_id"], tab_vars=["gender"],
                                 record_key="record_key", threshold=0)
    expected = {(r["service_id"], r["gender"]): int(r["count"]) for _, r in ons.iterrows()}
    analyst = grants.Viewer("ana", "analyst", None, None)
    out = workbench.run(wb, "select service_id, gender, count(*) as n from cases "
                        f"where {PERIOD} group by all", ALL_SERVICES, FY, analyst,
                        settings.get())
    frame, hidden = out.protected.frame, out.protected.hidden["n"]
    compared = 0
    for row, was_hidden in zip(frame.iter_rows(named=True), hidden, strict=True):
        want = expected[(row["service_id"], row["gender"])]
        if was_hidden:
            assert 1 <= want <= 4 or out.protected.secondary
        else:
            assert row["n"] == want
            compared += 1
    assert compared >= 20


def test_a_service_manager_sees_their_own_service_exactly(wb, sample_db, catalogue):
    """Their own records, not perturbed; the same query over the area, for the area's
    commissioner, is."""
    service = "S03"
    manager = grants.resolve("sam", "service_manager", [service], [], catalogue)
    out = workbench.run(wb, GENDERS, ALL_SERVICES, FY, manager, settings.get())
    truth = true_cells(sample_db, f"c.service_id = '{service}'")
    assert not out.protected.perturbed and "perturbed" not in out.protected.note()
    frame, hidden = out.protected.frame, out.protected.hidden["n"]
    for gender, value, was_hidden in zip(frame["gender"], frame["n"], hidden,
                                         strict=True):
        n = truth[gender][0]
        if was_hidden:
            assert 0 < n < 5 or out.protected.secondary, gender
        else:
            assert value == n, gender
    assert any(by_hand.perturb(*truth[g]) != truth[g][0] for g in truth), \
        "a count the ptable would move, shown exactly to the manager"


def _candidates(ptable: cellkey.Ptable, shown: str, limit: int = 400) -> set[int] | None:
    """True counts a cell could hold, given what it shows and the ptable (any cell key);
    None when a secondary suppression shows nothing."""
    if shown == "–":
        return None
    out = set()
    for t in range(limit):
        outcomes = {t + e for e in ptable.spread(t)}
        if shown.startswith("<"):
            if t > 0 and outcomes & set(range(1, int(shown[1:]))):
                out.add(t)
        elif int(shown.replace(",", "")) in outcomes:
            out.add(t)
    return out


def test_complementary_selections_differenced_recover_no_small_count(wb, sample_db,
                                                                     catalogue):
    """The attack: a commissioner asks the issue's query over their whole area and again
    over the area less one service, for every service of every area, and subtracts. With
    exact counts (as before) every shown pair gives the service's count exactly; now the
    two answers, and the service's own "<5", fit several values, never only the truth."""
    ptable = cellkey.load(by_hand.PTABLE)
    cfg = settings.get()
    small = judged = pinned_before = pinned_after = 0
    for area in sorted(set(catalogue["area_code"])):
        viewer = commissioner_for(catalogue, area)
        ids = list(viewer.services)
        whole = shown_by_gender(workbench.run(
            wb, GENDERS, selection.scope_for(wb, services=ids), FY, viewer, cfg))
        truth_area = true_cells(sample_db, f"s.area_code = '{area}'")
        for sid in ids:
            rest_ids = [s for s in ids if s != sid]
            rest = shown_by_gender(workbench.run(
                wb, GENDERS, selection.scope_for(wb, services=rest_ids), FY, viewer, cfg))
            alone = shown_by_gender(workbench.run(
                wb, GENDERS, selection.scope_for(wb, services=[sid]), FY, viewer, cfg))
            truth = true_cells(sample_db, f"c.service_id = '{sid}'")
            for gender, (n, k) in truth.items():
                if not 1 <= n <= 4:
                    continue
                small += 1
                area_n, area_k = truth_area[gender]
                rest_n = area_n - n
                # What the two answers show is the by-hand perturbation of their records.
                for got, cell in ((whole.get(gender, "0"), (area_n, area_k)),
                                  (rest.get(gender, "0"), (rest_n, area_k - k))):
                    want = by_hand.shown(*cell)
                    assert got in ("–", "<5" if want is None else f"{want:,}"), (sid, gender)
                # Before: exact counts, so area minus the rest, both large, is the count.
                pinned_before += truth_area[gender][0] >= 5 and rest_n >= 5
                mine = _candidates(ptable, alone.get(gender, "0"))
                a = _candidates(ptable, whole.get(gender, "0"))
                r = _candidates(ptable, rest.get(gender, "0"))
                if mine is None or a is None or r is None:
                    continue
                fits = {v for v in mine if any(v + x in a for x in r)}
                assert n in fits
                judged += 1
                pinned_after += fits == {n}
    print(f"\nsmall cells {small} ({judged} with every figure shown); pinned by difference "
          f"before {pinned_before}, after {pinned_after}")
    assert small >= 5 and pinned_before >= 3 and judged >= pinned_before
    assert pinned_after == 0


def test_the_same_query_twice_gives_the_same_noise(wb, catalogue):
    """Asking again (or averaging many asks) gives the same perturbed value, so
    repetition does not wear the noise away."""
    viewer = commissioner_for(catalogue, catalogue["area_code"][0])
    runs = [shown_by_gender(workbench.run(wb, GENDERS, ALL_SERVICES, FY, viewer,
                                          settings.get())) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_a_key_column_the_analyst_names_cannot_unlock_exact_counts(wb, sample_db):
    """An output named like the cell-key pass's own columns makes the pass refuse; the
    counts are then withheld, never shown exactly."""
    analyst = grants.Viewer("ana", "analyst", None, None)
    out = workbench.run(wb, "select gender as n__cell_key, count(*) as n from cases "
                        f"where {PERIOD} group by 1", ALL_SERVICES, FY, analyst,
                        settings.get())
    assert out.counts == ["n"] and out.keys == ["n__cell_key"]
    assert out.protected.frame["n"].null_count() == out.protected.frame.height
    assert "n could not be perturbed" in out.protected.note()
    with pytest.raises(workbench.Refused) as info:
        workbench.run(wb, "select gender, count(*) filter (where record_key > 0) as n "
                      "from cases group by 1", ALL_SERVICES, FY, analyst, settings.get())
    assert "record_key" in str(info.value)


def test_a_count_the_key_pass_cannot_key_is_withheld(wb):
    """count(distinct ...) is a count of values, not of records: it has no cell key, so a
    viewer who needs perturbation never sees it."""
    analyst = grants.Viewer("ana", "analyst", None, None)
    out = workbench.run(wb, "select gender, count(distinct client_key) as clients, "
                        f"count(*) as cases from cases where {PERIOD} group by 1",
                        ALL_SERVICES, FY, analyst, settings.get())
    frame = out.protected.frame
    assert frame["clients"].null_count() == frame.height
    assert frame["cases"].null_count() < frame.height
    assert keying.rewrite("select count(distinct client_key) as n from cases").kind("n") \
        == "tainted"


def test_a_saved_workbench_query_on_a_page_is_perturbed_for_a_commissioner(
        tmp_path, wb, sample_db, catalogue):
    """Saved from the workbench, shown as a chart: a commissioner gets the by-hand
    perturbed counts and the rate from them; the service's own manager gets them exact."""
    queries = tmp_path / "queries"
    queries.mkdir()
    sql = ("select gender, count(*) as cases, count(*) filter (where has_children) as fam "
           f"from cases where {PERIOD} group by gender")
    path = workbench.save(sql, {"title": "Families by gender", "description": "F.",
                                "page": "equality", "chart": "table",
                                "counts": ["cases", "fam"]}, queries,
                          rates={"pct_fam": ("fam", "cases")})
    spec = catalog.parse(path.read_text(), "queries/equality/families_by_gender.sql")
    service = "S05"
    area = catalogue.filter(selection.pl.col("service_id") == service)["area_code"][0]
    scope = selection.scope_for(wb, services=[service])
    commissioner = commissioner_for(catalogue, area)
    manager = grants.resolve("sam", "service_manager", [service], [], catalogue)
    theirs = results.run(wb, spec, grants.clamp(scope, commissioner), FY, settings.get(),
                         grants.audience(commissioner))
    mine = results.run(wb, spec, grants.clamp(scope, manager), FY, settings.get(),
                       grants.audience(manager))
    all_cases = true_cells(sample_db, f"c.service_id = '{service}'")
    families = true_cells(sample_db, f"c.service_id = '{service}' and "
                          "c.children_in_household > 0")
    assert theirs.perturbed and not mine.perturbed

    def exact(n, k):
        return n

    compared = 0
    for res, count in ((theirs, by_hand.perturb), (mine, exact)):
        frame = res.data.frame
        for row in frame.iter_rows(named=True):
            cases = count(*all_cases[row["gender"]])
            fam = count(*families.get(row["gender"], (0, 0)))
            if row["cases"] is not None:
                assert row["cases"] == cases
            if row["fam"] is not None:
                assert row["fam"] == fam
            if row["pct_fam"] is not None:
                assert row["pct_fam"] == round(100.0 * fam / cases, 1)
                compared += 1
    assert compared >= 2
    # The commissioner's figures differ from the exact ones somewhere.
    assert theirs.data.frame["cases"].to_list() != mine.data.frame["cases"].to_list()


def test_unnamed_counts_get_names_a_saved_chart_accepts(tmp_path, wb):
    """`count(*)`, `count(col)` and a filtered count without names come back as n,
    n_client_key and n_2, and the run's SQL saves as a chart file that parses."""
    analyst = grants.Viewer("ana", "analyst", None, None)
    out = workbench.run(wb, "select gender, count(*), count(client_key), count(*) filter "
                        f"(where has_children) from cases where {PERIOD} group by gender",
                        ALL_SERVICES, FY, analyst, settings.get())
    assert out.counts == ["n", "n_client_key", "n_2"]
    queries = tmp_path / "queries"
    queries.mkdir()
    path = workbench.save(out.sql, {"title": "By gender", "description": "G.",
                                    "page": "equality", "chart": "bar", "x": "gender",
                                    "y": "n", "counts": out.counts}, queries)
    spec = catalog.parse(path.read_text(), "queries/equality/by_gender.sql")
    assert list(spec.counts) == ["n", "n_client_key", "n_2"]
