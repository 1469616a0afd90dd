"""Issue 14 items 4 to 6: honest repeat rates, complex needs, missed Marac re-referrals.

Marac files and cases are built here in plain Python (never by the generator); every
expected figure is worked out by hand or by the small plain-Python functions below, never
by the product's SQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import pytest

from service_insights import settings
from service_insights.catalogue import catalog, periods, results
from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.exports import chart_files
from service_insights.findings import evaluation
from service_insights.store import db
from tests.handmade import build, case, referral
from tests.test_import import GOOD, fetch, sha, write_csv
from tests.test_import import run as run_cases
from tests.test_marac_import import AREA_A, AREA_B, run_marac, write_marac
from tests.test_marac_import import key as _key_fixture
from tests.test_marac_import import referral as marac_row
from tests.test_marac_import import store as _store_fixture

key = _key_fixture
store = _store_fixture

S1 = Scope(("S1",), ("E0000000A",), True, "Service 1")
d = dt.date.fromisoformat


def hand_count(rows: list[tuple[str, str, dt.date]]) -> tuple[int, int]:
    """(referrals heard, repeats) by the SafeLives rule, in plain Python: one referral per
    victim, Marac and day; a repeat when the same victim's previous day at the same Marac
    is at most 365 days before."""
    days: dict[tuple[str, str], set[dt.date]] = {}
    for area, victim, day in rows:
        days.setdefault((area, victim), set()).add(day)
    heard = repeats = 0
    for seen in days.values():
        ordered = sorted(seen)
        heard += len(ordered)
        repeats += sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if (b - a).days <= 365)
    return heard, repeats


def count(path, sql: str) -> int:
    return int(fetch(path, sql).row(0)[0])


# ---------------------------------------------------------------- repeats


def test_repeat_counts_equal_hand_computation_with_same_day_pairs_and_leap_years(
        key, store, tmp_path):
    rows = [
        # V1 at A: two agencies on one day (one referral), then 365 days later (a repeat)
        # from another referring service of the same Marac.
        marac_row("V1", AREA_A, "2023-05-02", "police"),
        marac_row("V1", AREA_A, "2023-05-02", "idva", service_id="S01",
                  service_client_ref="C-1"),
        marac_row("V1", AREA_A, "2024-05-01", "housing", service_id="S02",
                  service_client_ref="C-9"),
        # V2 at A: across 29 February 2024, 366 days apart: not a repeat; then the same
        # agency twice on one day (identical rows: still one referral).
        marac_row("V2", AREA_A, "2023-06-01"),
        marac_row("V2", AREA_A, "2024-06-01"),
        marac_row("V2", AREA_A, "2024-06-01"),
        # V3 at A: 29 Feb 2024 to 28 Feb 2025 is 365 days: a repeat.
        marac_row("V3", AREA_A, "2024-02-29", "health"),
        marac_row("V3", AREA_A, "2025-02-28", "probation"),
        # "V1" at Marac B is another victim: not a repeat of V1 at A.
        marac_row("V1", AREA_B, "2023-09-01"),
        marac_row("V4", AREA_B, "2024-01-10"),
    ]
    result = run_marac(write_marac(tmp_path / "marac.csv", rows))
    assert result.imported, result.problems
    heard, repeats = hand_count([(r["marac_area"], r["client_ref"], d(r["meeting_date"]))
                                 for r in rows])
    assert (heard, repeats) == (8, 2)  # by hand: V1 2, V2 2, V3 2, B 2; V1's and V3's second
    assert count(store, "select count(*) from store.marac_referrals") == 10
    assert count(store, "select count(*) from main.marac_referrals") == heard
    assert count(store, "select count(*) from main.marac_referrals where is_repeat") == repeats
    # The same-perpetrator refinement follows the same rules: no same-day pair is a repeat.
    assert count(store, "select count(*) from main.marac_referrals "
                        "where is_repeat_same_perpetrator") == 0
    # The repeat across two referring services is counted once, at Marac A.
    assert count(store, "select count(*) from main.marac_referrals where is_repeat "
                        f"and marac_area = '{AREA_A}' and service_id = 'S02'") == 1


def test_same_perpetrator_repeats_need_an_earlier_day_at_the_same_marac(key, store, tmp_path):
    rows = [
        marac_row("V1", AREA_A, "2024-04-10", perpetrator_ref="P1"),
        marac_row("V1", AREA_A, "2024-04-10", "idva", perpetrator_ref="P1"),
        marac_row("V1", AREA_A, "2024-08-10", perpetrator_ref="P1"),  # same perp: repeat
        marac_row("V2", AREA_A, "2024-04-10", perpetrator_ref="P5"),
        marac_row("V2", AREA_A, "2024-06-10", perpetrator_ref="P6"),  # repeat, new perp
    ]
    assert run_marac(write_marac(tmp_path / "m.csv", rows)).imported
    assert count(store, "select count(*) from main.marac_referrals") == 4
    assert count(store, "select count(*) from main.marac_referrals where is_repeat") == 2
    assert count(store, "select count(*) from main.marac_referrals "
                        "where is_repeat_same_perpetrator") == 1


# ---------------------------------------------------------------- the look-back flag


def lookback_world(tmp_path, first_day: dt.date):
    """Service 1 (area A) refers 60 victims in FY 2024-25, none of them repeats: 0% of 60
    lies far below the expected 28% to 40%. The store's data for area A begins on
    `first_day` (one earlier referral for someone else)."""
    refs = [referral("EARLY", first_day)]
    refs += [referral(f"V{i}", d("2024-06-10")) for i in range(60)]
    return build(tmp_path / "insights.duckdb", [case()], refs)


def repeat_findings(path, fy: int):
    conn = db.Store(path)
    try:
        report = evaluation.Report()
        entry = catalog.get(settings.get().queries_dir,
                            "findings/marac_repeat_rate_outside_range")
        evaluation.evaluate_rule(conn, entry, S1, periods.financial_year(fy),
                                 settings.get(), report, results.Audience(("S1",), ("S1",)))
        assert not report.errors, report.errors
        return report.findings
    finally:
        conn.close()


def chart(path, qid: str, fy: int, scope: Scope = S1) -> results.ChartResult:
    conn = db.Store(path)
    try:
        spec = catalog.get(settings.get().queries_dir, qid).spec
        return results.run(conn, spec, scope, periods.financial_year(fy), settings.get(),
                           results.Audience(("S1",), ("S1",)))
    finally:
        conn.close()


def test_lookback_at_the_store_start_flags_the_rate_and_no_finding_fires(tmp_path):
    # Data from 1 Aug 2023: less than 12 months before 1 April 2024.
    path = lookback_world(tmp_path, d("2023-08-01"))
    assert repeat_findings(path, 2024) == []
    res = chart(path, "marac/repeat_rate_same_perpetrator", 2024)
    assert res.error is None
    assert res.lookback is not None and res.lookback.incomplete
    assert "Look-back incomplete" in res.lookback_note and "August 2023" in res.lookback_note
    from service_insights.presentation import captions, charts
    assert "Look-back incomplete" in captions.caption(res)
    assert "Look-back incomplete" in charts.footnote(res)
    text = chart_files.to_csv(res, "OFFICIAL").decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert ["Look-back", res.lookback_note] in lines
    header_at = lines.index([]) + 1
    assert lines[header_at][-1] == "Look-back"
    assert lines[header_at + 1][-1] == "look-back incomplete"


def test_full_lookback_lets_the_same_rate_fire(tmp_path):
    # Data from April 2023: a full 12 months before the period. 0 of 60: the Wilson upper
    # bound is 100 * (3.84/60) / (1 + 3.84/60) ~ 6.0% < 28%, so the rule fires "below".
    upper = 100 * (3.841459 / 60) / (1 + 3.841459 / 60)
    assert upper < 28
    path = lookback_world(tmp_path, d("2023-04-01"))
    got = repeat_findings(path, 2024)
    assert len(got) == 1 and "0% of the Marac referrals" in got[0].message
    res = chart(path, "marac/repeat_rate_same_perpetrator", 2024)
    assert not res.lookback.incomplete and res.lookback_note == ""
    text = chart_files.to_csv(res, "OFFICIAL").decode("utf-8-sig")
    assert "Look-back incomplete" not in text


def test_trend_flags_only_the_quarters_without_a_full_lookback(tmp_path):
    # Area A's data begins in October 2022; quarters before October 2023 are flagged.
    refs = [referral("EARLY", d("2022-10-05"))]
    refs += [referral(f"Q{q}-{i}", day) for q, day in enumerate(
        [d("2023-05-01"), d("2023-08-01"), d("2023-11-01"), d("2024-02-01")]) for i in range(12)]
    path = build(tmp_path / "insights.duckdb", [case()], refs)
    res = chart(path, "marac/repeat_rate_by_quarter", 2023)
    assert set(res.lookback.incomplete_quarters) == {"2022-23 Q3", "2023-24 Q1", "2023-24 Q2"}
    header, rows = chart_files.data_table(res)
    flags = {r[0]: r[-1] for r in rows}
    assert flags["2023-24 Q2"] == "look-back incomplete"
    assert flags["2023-24 Q3"] == "complete" and flags["2023-24 Q4"] == "complete"


# ---------------------------------------------------------------- complex needs


NEEDS = ("mental_health_need", "substance_use_need", "housing_need")


@pytest.mark.parametrize("field", NEEDS)
def test_needs_columns_validate_and_name_file_row_field(key, store, tmp_path, field, capsys):
    from service_insights import cli

    rows = [GOOD[0] | {f: "yes" for f in NEEDS},
            GOOD[1] | {field: "sometimes"}, GOOD[2]]
    before = sha(store)
    bad = write_csv(tmp_path / "needs.csv", rows)
    result = run_cases(bad)
    assert not result.imported
    problems = [(p["row"], p["field"]) for p in result.problems.rows(named=True)]
    assert problems == [(3, field)]
    assert sha(store) == before
    assert cli.main(["import", str(bad), "--service", "S01"]) == 1
    err = capsys.readouterr().err
    assert "needs.csv" in err and "row 3" in err and field in err and "Traceback" not in err
    assert sha(store) == before


def test_needs_columns_import_as_yes_no_blank(key, store, tmp_path):
    rows = [GOOD[0] | {"mental_health_need": "Y", "substance_use_need": "no",
                       "housing_need": ""},
            GOOD[1] | {"mental_health_need": "", "substance_use_need": "",
                       "housing_need": ""}]
    assert run_cases(write_csv(tmp_path / "ok.csv", rows)).imported
    got = fetch(store, "select mental_health_need, substance_use_need, housing_need, "
                       "has_complex_needs from main.cases order by referral_date").rows()
    assert got == [(True, False, None, True), (None, None, None, None)]


def needs_rows(n, achieved, complex_):
    """n closed cases at S1 in FY 2024-25, `achieved` of them with risk reduced."""
    return [case(referral_date=d("2024-05-01"), exit_date=d("2024-09-01"),
                 mental_health_need=complex_, substance_use_need=False, housing_need=False,
                 risk_reduced=i < achieved, abuse_ceased=True, feels_safer=True,
                 quality_of_life_improved=True) for i in range(n)]


def needs_findings(path):
    conn = db.Store(path)
    try:
        report = evaluation.Report()
        entry = catalog.get(settings.get().queries_dir, "findings/complex_needs_worse_outcomes")
        evaluation.evaluate_rule(conn, entry, S1, periods.financial_year(2024),
                                 settings.get(), report, results.Audience(("S1",), ("S1",)))
        assert not report.errors, report.errors
        return report.findings
    finally:
        conn.close()


def wilson(k, n):
    z2 = 3.841459
    p = k / n
    mid, half = p + z2 / (2 * n), 1.959964 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return 100 * (mid - half) / (1 + z2 / n), 100 * (mid + half) / (1 + z2 / n)


def test_needs_finding_fires_when_complex_needs_clients_fare_worse(tmp_path):
    # 12 of 40 with complex needs had risk reduced (30%), 34 of 40 others (85%).
    assert wilson(12, 40)[1] < wilson(34, 40)[0] and 85 - 30 >= 15
    path = build(tmp_path / "a.duckdb", needs_rows(40, 12, True) + needs_rows(40, 34, False))
    got = needs_findings(path)
    assert len(got) == 1
    assert got[0].title == "Clients with complex needs have their risk reduced less often"
    assert "risk was reduced at exit for 30% of clients with complex needs" in got[0].message
    assert "against 85% of its other clients (12 of 40 against 34 of 40)" in got[0].message


def test_needs_finding_on_engagement_is_headed_for_engagement(tmp_path):
    # Referred in 2024-25 and still open: 12 of 40 with complex needs taken on (30%),
    # 34 of 40 others (85%); the rest have no intake date.
    def open_rows(n, engaged, complex_):
        return [case(referral_date=d("2024-05-01"),
                     intake_date=d("2024-05-03") if i < engaged else None,
                     mental_health_need=complex_, substance_use_need=False,
                     housing_need=False) for i in range(n)]

    path = build(tmp_path / "e.duckdb", open_rows(40, 12, True) + open_rows(40, 34, False))
    got = needs_findings(path)
    assert [f.title for f in got] == ["Clients with complex needs engage less"]
    assert "an intake was recorded (the client engaged) for 30% of clients" in got[0].message
    assert "(12 of 40 against 34 of 40)" in got[0].message


def test_needs_finding_is_silent_when_the_gap_is_small(tmp_path):
    # 28 of 40 (70%) against 32 of 40 (80%): the intervals overlap.
    assert wilson(28, 40)[1] > wilson(32, 40)[0]
    path = build(tmp_path / "b.duckdb", needs_rows(40, 28, True) + needs_rows(40, 32, False))
    assert needs_findings(path) == []


def test_needs_charts_count_like_plain_python(tmp_path):
    cases = needs_rows(20, 5, True) + needs_rows(30, 20, False) + needs_rows(10, 5, None)
    path = build(tmp_path / "c.duckdb", cases)
    res = chart(path, "needs/cases_by_complex_need", 2024)
    assert res.error is None
    got = {r["need"]: (r["need_cases"], r["recorded_cases"])
           for r in res.data.frame.iter_rows(named=True)}
    recorded = [c for c in cases if c["mental_health_need"] is not None]
    assert got["Mental health"] == (sum(c["mental_health_need"] for c in recorded),
                                    len(recorded)) == (20, 50)
    # The ten with mental health blank have the other two needs recorded as no: their
    # "any complex need" is recorded (no), so its base is all 60.
    flags = [None if all(c[f] is None for f in NEEDS) else any(c[f] for f in NEEDS)
             for c in cases]
    assert got["Any complex need"] == (sum(f is True for f in flags),
                                       sum(f is not None for f in flags)) == (20, 60)
    res = chart(path, "needs/outcomes_by_complex_needs", 2024)
    rows = {(r["measure"], r["clients"]): (r["achieved_cases"], r["recorded_cases"])
            for r in res.data.frame.iter_rows(named=True)}
    assert rows[("Risk reduced", "With complex needs")] == (5, 20)
    assert rows[("Risk reduced", "No complex needs")] == (20 + 5, 30 + 10)
    assert rows[("Engaged", "With complex needs")] == (20, 20)


# ---------------------------------------------------------------- missed re-referrals


def missed_world(tmp_path, copies: int = 5):
    """`copies` times (so no count is under 5 and suppressed) six clients of S1, each
    with a first case in June 2023 heard at Marac on 1 July 2023 (a referral from S1),
    and a second case:
    K1 - 1 May 2024, DASH 16, not referred: MISSED;
    K2 - 1 May 2024, DASH 16, referred on the case: referred back;
    K3 - 5 July 2024 (370 days after the meeting), DASH 16: not a return within 12 months;
    K4 - 1 May 2024, DASH 10: not high risk;
    K5 - 1 May 2024, DASH 20, not marked, but a Marac referral for the client from S1
         heard on 1 June 2024: referred back;
    K6 - second case at S2 (another service), DASH 16: not a return to the service.
    """
    cases, refs = [], []
    second = {"K1": (d("2024-05-01"), 16, False, "S1"),
              "K2": (d("2024-05-01"), 16, True, "S1"),
              "K3": (d("2024-07-05"), 16, False, "S1"), "K4": (d("2024-05-01"), 10, False, "S1"),
              "K5": (d("2024-05-01"), 20, False, "S1"), "K6": (d("2024-05-01"), 16, False, "S2")}
    for j in range(copies):
        for k, (day, dash, referred, svc) in second.items():
            cases.append(case(client_key=f"{k}-{j}", referral_date=d("2023-06-01"),
                              dash_score=18, marac_referred=True))
            refs.append(referral(f"{k}-{j}", d("2023-07-01")))
            cases.append(case(client_key=f"{k}-{j}", referral_date=day, dash_score=dash,
                              marac_referred=referred, service_id=svc))
        refs.append(referral(f"K5-{j}", d("2024-06-01")))
    return build(tmp_path / "insights.duckdb", cases, refs), second


def test_missed_rereferrals_on_hand_made_rows(tmp_path):
    path, second = missed_world(tmp_path)
    meeting = d("2023-07-01")
    later_heard = {"K5": d("2024-06-01")}
    # By hand, from `second`: returns to S1 within 365 days of the meeting at DASH 14+.
    returns = [k for k, (day, dash, _, svc) in second.items()
               if svc == "S1" and 0 < (day - meeting).days <= 365 and dash >= 14]
    missed = [k for k in returns if not second[k][2] and k not in later_heard]
    assert (returns, missed) == (["K1", "K2", "K5"], ["K1"])
    assert count(path, "select count(*) from main.cases where is_return_after_marac "
                       "and is_high_risk") == 5 * len(returns)
    assert count(path, "select count(*) from main.cases where is_missed_rereferral "
                       "and is_high_risk") == 5 * len(missed)
    assert set(fetch(path, "select distinct split_part(client_key, '-', 1) as k from "
                           "main.cases where is_missed_rereferral")["k"]) == {"K1"}
    res = chart(path, "marac/missed_rereferrals", 2024)
    assert res.error is None
    row = res.data.frame.row(0, named=True)
    assert (row["missed_returns"], row["high_risk_returns"]) == (5, 15)
    assert row["pct_missed"] == pytest.approx(33.3)


def test_missed_rereferral_finding_fires_above_the_threshold(tmp_path):
    # 30 clients return at high risk within 12 months; 15 are not referred back (50%):
    # the Wilson lower bound for 15 of 30 is about 33% > 20%.
    assert wilson(15, 30)[0] > 20
    cases, refs = [], []
    for i in range(30):
        k = f"R{i}"
        cases.append(case(client_key=k, referral_date=d("2023-06-01"), dash_score=18,
                          marac_referred=True))
        refs.append(referral(k, d("2023-07-01")))
        cases.append(case(client_key=k, referral_date=d("2024-05-01"), dash_score=16,
                          marac_referred=i >= 15))
    path = build(tmp_path / "insights.duckdb", cases, refs)
    conn = db.Store(path)
    try:
        report = evaluation.Report()
        entry = catalog.get(settings.get().queries_dir, "findings/missed_marac_rereferrals")
        evaluation.evaluate_rule(conn, entry, S1, periods.financial_year(2024),
                                 settings.get(), report, results.Audience(("S1",), ("S1",)))
    finally:
        conn.close()
    assert not report.errors and len(report.findings) == 1
    assert "50% of the clients who came back to Service 1" in report.findings[0].message
    assert "(15 of 30)" in report.findings[0].message


def test_perturbed_viewers_run_every_new_query(tmp_path):
    """The new charts and rules run through the cell-key pass for a viewer who sees
    perturbed counts (no count is left unkeyed, so none is withheld for that reason)."""
    path, _ = missed_world(tmp_path)
    conn = db.Store(path)
    try:
        for qid in ("marac/missed_rereferrals", "needs/cases_by_complex_need",
                    "needs/outcomes_by_complex_needs", "findings/complex_needs_worse_outcomes",
                    "findings/missed_marac_rereferrals",
                    "findings/marac_repeat_rate_outside_range"):
            spec = catalog.get(settings.get().queries_dir, qid).spec
            res = results.run(conn, spec, ALL_SERVICES, periods.financial_year(2024),
                              settings.get())
            assert res.error is None, (qid, res.error)
            assert res.perturbed
    finally:
        conn.close()


def test_lookback_with_no_referrals_flags_nothing(tmp_path):
    path = build(tmp_path / "insights.duckdb", [case()])
    res = chart(path, "marac/repeat_rate_by_quarter", 2024)
    assert res.error is None and not res.lookback.incomplete and res.lookback_note == ""
