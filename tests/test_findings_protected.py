"""Findings are judged on the numbers the viewer sees (issue 12): for a commissioner the
rule's counts are perturbed before its threshold is tested, so whether a finding appears
says nothing about the exact counts; the service's own manager is judged on the exact
ones. Cases are built so the exact and the perturbed counts fall on opposite sides of the
threshold; which side each viewer gets is worked out here by hand (the ptable applied to
the record keys, tests/by_hand.py, and the Wilson interval written out below), never by
the code under test."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import yaml

from service_insights import settings
from service_insights.access import grants
from service_insights.catalogue import catalog, keying, periods, results, selection
from service_insights.catalogue.scope import Scope
from service_insights.findings import evaluation
from service_insights.store import db
from tests import by_hand, handmade

FY = periods.financial_year("2024-25")
RULE = "findings/long_abuse_before_help"
REFERENCE = yaml.safe_load((settings.ROOT / "data" / "reference.yaml").read_text())
THRESHOLD = REFERENCE["long_abuse_share_threshold"]["value"]
LONG = REFERENCE["long_abuse_months"]["value"]
CLIENTS = 60


def wilson_lower(k: int, n: int) -> float:
    """The lower end of the 95% Wilson score interval, in percent (z = 1.959964)."""
    z = 1.959964
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 100 * max(0.0, (centre - spread) / (1 + z * z / n))


def fires(k: int, n: int) -> bool:
    return n > 0 and wilson_lower(k, n) > THRESHOLD


def first_long_enough() -> int:
    """The fewest long-abuse clients of CLIENTS for which the rule fires on exact counts."""
    return next(k for k in range(CLIENTS + 1) if fires(k, CLIENTS))


def keys_where(long: int, want_exact: bool, want_perturbed: bool) -> np.ndarray:
    """Record keys (the first `long` clients abused for years) for which the rule fires
    (or not) on the exact counts and (or not) on the perturbed ones, by hand."""
    assert fires(long, CLIENTS) == want_exact
    for seed in range(2000):
        keys = np.random.default_rng(seed).integers(0, 256, size=CLIENTS)
        k = by_hand.perturb(long, int(keys[:long].sum()))
        n = by_hand.perturb(CLIENTS, int(keys.sum()))
        if fires(k, n) == want_perturbed:
            return keys
    raise AssertionError("no record keys give that case")


def build(tmp_path, long: int, keys: np.ndarray):
    day = dt.date(2024, 6, 1)
    rows = [handmade.case(service_id="S1", referral_date=day,
                          abuse_months=LONG + 12 if i < long else 6, record_key=int(key))
            for i, key in enumerate(keys)]
    rows += [handmade.case(service_id=s, referral_date=day) for s in ("S2", "S3", "S4")
             for _ in range(30)]
    return db.Store(handmade.build(tmp_path / f"findings-{long}.duckdb", rows))


def judged(store, viewer) -> list[evaluation.Finding]:
    entry = catalog.get(settings.get().queries_dir, RULE)
    scope = grants.clamp(Scope(("S1",), ("E0000000A",), True, "Service 1"), viewer)
    report = evaluation.Report()
    evaluation.evaluate_rule(store, entry, scope, FY, settings.get(), report,
                             grants.audience(viewer))
    assert not report.errors, report.errors
    return report.findings


def viewers(store):
    catalogue = selection.services_table(store)
    return (grants.resolve("cat", "commissioner", [], ["E0000000A"], catalogue),
            grants.resolve("sam", "service_manager", ["S1"], [], catalogue))


@pytest.mark.parametrize(("exact", "perturbed"), [(True, False), (False, True)],
                         ids=["fires-on-exact-only", "fires-on-perturbed-only"])
def test_the_finding_follows_the_numbers_the_viewer_sees(tmp_path, exact, perturbed):
    long = first_long_enough() - (0 if exact else 1)
    keys = keys_where(long, exact, perturbed)
    store = build(tmp_path, long, keys)
    try:
        commissioner, manager = viewers(store)
        theirs, mine = judged(store, commissioner), judged(store, manager)
    finally:
        store.close()
    assert bool(theirs) == perturbed, "the commissioner is judged on perturbed counts"
    assert bool(mine) == exact, "the manager is judged on their own exact counts"
    k = by_hand.perturb(long, int(keys[:long].sum()))
    n = by_hand.perturb(CLIENTS, int(keys.sum()))
    for found, (count, base) in ((theirs, (k, n)), (mine, (long, CLIENTS))):
        if found:
            f = found[0]
            assert f.base == base
            share = round(100.0 * count / base, 1)
            assert f.message.startswith(f"{share:g}% of Service 1's clients"), f.message


def test_a_finding_never_rests_on_a_suppressed_figure(tmp_path):
    """Four clients, all abused for years: the exact counts clear the threshold (the
    Wilson lower bound of 4 of 4 is 51%), but 4 is shown only as "<5", and a share needs
    a base of at least SI_MIN_RATE_BASE (10). Perturbed, the 4 may show as 5 or 6 of 5 or
    6, which also clears the threshold: still no finding, for either viewer."""
    day = dt.date(2024, 6, 1)
    assert fires(4, 4)
    cleared = 0
    for seed in range(6):
        keys = np.random.default_rng(seed).integers(0, 256, size=4)
        rows = [handmade.case(service_id="S1", referral_date=day, abuse_months=LONG + 1,
                              record_key=int(key)) for key in keys]
        rows += [handmade.case(service_id="S2", referral_date=day) for _ in range(30)]
        store = db.Store(handmade.build(tmp_path / f"small-{seed}.duckdb", rows))
        try:
            commissioner, manager = viewers(store)
            theirs, mine = judged(store, commissioner), judged(store, manager)
        finally:
            store.close()
        shown = by_hand.perturb(4, int(keys.sum()))
        cleared += shown >= 5 and fires(shown, shown)
        assert not mine and not theirs, (seed, shown)
    assert cleared, "some perturbed counts cleared the threshold (and were not used)"


def test_every_rule_is_judged_on_perturbed_counts():
    """Each finding file's counts are perturbed before its outer SELECT judges them."""
    for entry in evaluation.rules(settings.get().queries_dir):
        j = keying.judged(entry.spec.sql)
        assert not j.problem and j.inputs, (entry.id, j.problem)
        assert keying.PERTURB_FUNCTION.upper() in j.sql.upper()


def test_a_rule_that_judges_records_directly_is_reported_not_run(tmp_path):
    """A rule whose outer SELECT counts records itself could only be judged on exact
    counts: for a viewer who needs perturbation it is an error, not a finding."""
    text = ("/*---\ntitle: Many cases\ndescription: D.\npage: findings\nchart: finding\n"
            "counts: [n]\nrates:\n  pct: {count: n, base: n}\n"
            "params: [period_start, period_end]\n"
            "finding:\n  subject: service_id\n  message: \"{n} cases\"\n"
            "  recommendation: R.\n  evidence: E.\n  confidence: pct\n---*/\n"
            "select service_id, count(*) as n, 100.0 as pct from cases "
            "where referral_date between $period_start and $period_end "
            "group by 1 having count(*) > 3\n")
    spec = catalog.parse(text, "queries/findings/many.sql")
    store = db.Store(handmade.build(tmp_path / "direct.duckdb", [
        handmade.case(service_id="S1") for _ in range(10)]))
    try:
        scope = Scope(("S1",), ("E0000000A",), True, "Service 1")
        res = results.run(store, spec, scope, FY, settings.get())
        own = results.run(store, spec, scope, FY, settings.get(),
                          results.Audience(own=("S1",)))
    finally:
        store.close()
    assert res.data is None and "cannot be judged on perturbed counts" in res.error.message
    assert own.error is None and own.data.frame["n"].to_list() == [10]


def test_the_perturbing_function_is_out_of_reach_of_queries(sample_db):
    """si_perturbed_count exists only for the cell-key pass: a query file or workbench
    query that calls it is refused (it would otherwise read any CSV as a ptable)."""
    from service_insights.catalogue import workbench

    sql = ("select gender, count(*) filter (where si_perturbed_count(dash_score, "
           "abuse_months, '/etc/passwd') > 1) as n from cases group by gender")
    store = workbench.open_connection(sample_db)
    try:
        with pytest.raises(workbench.Refused) as info:
            workbench.run(store, sql, Scope(None, None, False, "All"), FY,
                          grants.Viewer("ana", "analyst", None, None), settings.get())
    finally:
        store.close()
    assert "si_perturbed_count" in str(info.value)
    with pytest.raises(catalog.QueryFileError) as bad:
        catalog.parse("/*---\ntitle: T\ndescription: D.\npage: risk\nchart: table\n"
                      "counts: [n]\n---*/\n" + sql + "\n", "queries/risk/t.sql")
    assert "si_perturbed_count" in str(bad.value.error)
