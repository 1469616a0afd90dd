"""Finding rules: each fires on rows built to trigger it and stays silent on rows built
not to; none fires on a base too small to show; on the sample, the services generated
to need a finding get it and those generated not to do not."""

from __future__ import annotations

import datetime as dt

import pytest

from service_insights import settings
from service_insights.catalogue import catalog, periods, results
from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.findings import evaluation, stats
from service_insights.store import db
from tests.handmade import build, case, referral

FY = periods.financial_year(2024)
S1 = Scope(("S1",), ("E0000000A",), True, "Service 1")
AREA_A = Scope(("S1", "S2", "S3"), ("E0000000A",), False, "Area A")


def run(tmp_path, cases, referrals=(), scope=S1, rule=None):
    path = build(tmp_path / "insights.duckdb", cases, list(referrals))
    store = db.Store(path)
    try:
        # Seen by the manager of the services chosen, who holds their records: exact
        # counts, so the rules' thresholds can be tested on numbers chosen by hand.
        own = scope.services or ()
        report = evaluation.evaluate(store, scope, FY, settings.get(),
                                     results.Audience(visible=own or None, own=own))
    finally:
        store.close()
    assert not report.errors, report.errors
    if rule:
        return [f for f in report.findings if f.rule == f"findings/{rule}"], report
    return report.findings, report


def families(n_clients, n_children, n_known, n_offered, service="S1"):
    rows = []
    for i in range(n_clients):
        kids = i < n_children
        known = i < n_known
        rows.append(case(
            service_id=service, children_in_household=2 if kids else 0,
            social_care=("child_protection" if known else "none") if kids else None,
            whole_family_support=(i < n_offered) if kids else None))
    return rows


# ---------------------------------------------------------------- whole-family support


def test_whole_family_fires_when_families_are_known_but_not_offered(tmp_path):
    got, _ = run(tmp_path, families(100, 80, 70, 5), rule="whole_family_support")
    assert len(got) == 1
    f = got[0]
    assert f.subject == "Service 1"
    assert "80% of clients had children" in f.message
    assert "87.5% of those families" in f.message  # 70 of 80
    assert "only 7.1%" in f.message  # 5 of 70
    assert "Safe (Exeter)" in f.evidence
    assert f.base == 80 and f.level == "moderate"
    ci = stats.wilson(70, 80)
    assert f"{ci.low:.1f}% to {ci.high:.1f}%" in f.confidence


def test_whole_family_silent_when_families_are_offered_support(tmp_path):
    got, _ = run(tmp_path, families(100, 80, 70, 50), rule="whole_family_support")
    assert got == []


def test_whole_family_silent_when_the_interval_is_not_clear(tmp_path):
    # 55 of 100 have children: the point is above half but the interval is not.
    got, _ = run(tmp_path, families(100, 55, 50, 2), rule="whole_family_support")
    assert got == []


def test_no_finding_on_a_suppressed_count(tmp_path):
    # 3 male clients of 400 is significantly below 6.4%, but 3 is shown as "<5", so the
    # finding would give the count away: it is withheld.
    got, report = run(tmp_path, clients(male=3), rule="under_represented_groups")
    assert got == []
    assert report.withheld == 1


def test_no_finding_on_a_base_too_small_to_show(tmp_path):
    # 8 clients, all with children known to social care, none offered support: the SQL
    # returns the row (the intervals clear the thresholds) but the base is under 10.
    got, report = run(tmp_path, families(8, 8, 8, 0), rule="whole_family_support")
    assert got == []
    assert report.withheld >= 1


# ---------------------------------------------------------------- Marac repeats


def marac(n, repeats, partner=0, service="S1", area="E0000000A"):
    # The store's data for the area begins in April 2023 (one referral before the period
    # for someone else), a full 12 months before FY 2024-25: the look-back is complete.
    rows = [referral(f"R{service}early", dt.date(2023, 4, 3), service_id=service,
                     marac_area=area)]
    for i in range(n):
        key = f"R{service}{i}"
        if i < repeats:  # an earlier referral 5 months before makes this one a repeat
            rows.append(referral(key, dt.date(2024, 1, 10), service_id=service,
                                 marac_area=area))
        rows.append(referral(key, dt.date(2024, 6, 10), service_id=service, marac_area=area,
                             referring_agency="health" if i < partner else "police"))
    return rows


@pytest.mark.parametrize(("repeats", "direction"), [(5, "below"), (60, "above")])
def test_repeat_rate_outside_range_fires(tmp_path, repeats, direction):
    got, _ = run(tmp_path, [case()], marac(100, repeats), rule="marac_repeat_rate_outside_range")
    assert len(got) == 1
    assert f"{repeats}% of the Marac referrals" in got[0].message
    assert f"{direction} the expected range of 28% to 40%" in got[0].message


def test_repeat_rate_in_range_is_silent(tmp_path):
    got, _ = run(tmp_path, [case()], marac(100, 33), rule="marac_repeat_rate_outside_range")
    assert got == []


def test_repeat_range_is_configurable(tmp_path, monkeypatch):
    ref = tmp_path / "reference.yaml"
    text = (settings.ROOT / "data" / "reference.yaml").read_text()
    text = text.replace("marac_repeat_low:\n  value: 28", "marac_repeat_low:\n  value: 45")
    text = text.replace("marac_repeat_high:\n  value: 40", "marac_repeat_high:\n  value: 60")
    ref.write_text(text)
    monkeypatch.setenv("SI_REFERENCE_FILE", str(ref))
    # 33 of 100 (interval 24.6% to 42.6%) is within 28 to 40 but below 45 to 60.
    got, _ = run(tmp_path, [case()], marac(100, 33), rule="marac_repeat_rate_outside_range")
    assert len(got) == 1
    assert "below the expected range of 45% to 60%" in got[0].message



def test_a_broken_reference_or_measures_file_is_one_sentence_naming_it(tmp_path, monkeypatch):
    from service_insights.catalogue import measures, reference
    bad = tmp_path / "broken.yaml"
    bad.write_text("marac_repeat_low:\n  value: [28\n")  # an unclosed list
    for module, env, error in ((reference, "SI_REFERENCE_FILE", reference.ReferenceError),
                               (measures, "SI_MEASURES_FILE", measures.MeasureError)):
        monkeypatch.setenv(env, str(bad))
        with pytest.raises(error) as info:
            module.load() if module is measures else module.figures()
        assert str(bad) in str(info.value) and "not valid YAML" in str(info.value)
        assert "\n" not in str(info.value)

# ---------------------------------------------------------------- Marac volume


def test_marac_volume_below_expected_fires_for_the_area(tmp_path):
    # Area A has 10,000 adult females: 10 referrals in a year is 10 per 10,000.
    got, _ = run(tmp_path, [case()], marac(10, 0), scope=AREA_A,
                 rule="marac_volume_below_expected")
    assert [f.subject for f in got] == ["Area A"]
    assert "heard 10 cases a year per 10,000" in got[0].message


def test_marac_volume_at_expected_is_silent(tmp_path):
    got, _ = run(tmp_path, [case()], marac(60, 0), scope=AREA_A,
                 rule="marac_volume_below_expected")
    assert got == []


def test_marac_volume_is_not_judged_for_single_services(tmp_path):
    got, report = run(tmp_path, [case()], marac(10, 0), scope=S1,
                      rule="marac_volume_below_expected")
    assert got == []
    assert any("whole Marac areas" in n for n in report.not_judged)


# ---------------------------------------------------------------- partner agencies


def test_low_partner_agency_share_fires(tmp_path):
    got, _ = run(tmp_path, [case()], marac(100, 33, partner=10),
                 rule="low_partner_agency_referrals")
    assert len(got) == 1 and "Only 10%" in got[0].message and "36.1%" in got[0].message


def test_partner_agency_share_near_national_is_silent(tmp_path):
    got, _ = run(tmp_path, [case()], marac(100, 33, partner=30),
                 rule="low_partner_agency_referrals")
    assert got == []


# ---------------------------------------------------------------- under-represented


def clients(n=400, male=28, lgbt=8, disabled=44, minoritised=60):
    return [case(gender="male" if i < male else "female",
                 lgbt="yes" if i < lgbt else "no",
                 disability="yes" if i < disabled else "no",
                 ethnicity="black" if i < minoritised else "white") for i in range(n)]


def test_under_represented_group_fires_for_that_group_only(tmp_path):
    got, _ = run(tmp_path, clients(male=8), rule="under_represented_groups")
    assert len(got) == 1
    assert "2% of Service 1's clients were male (8 of 400" in got[0].message
    assert "6.4%" in got[0].message


def test_groups_near_national_shares_are_silent(tmp_path):
    got, _ = run(tmp_path, clients(), rule="under_represented_groups")
    assert got == []


# ---------------------------------------------------------------- long abuse


def test_long_abuse_fires(tmp_path):
    rows = [case(abuse_months=48 if i < 70 else 12) for i in range(100)]
    got, _ = run(tmp_path, rows, rule="long_abuse_before_help")
    assert len(got) == 1 and got[0].message.startswith("70% of Service 1's clients")
    assert "median 48 months" in got[0].message


def test_long_abuse_silent_when_not_clearly_most(tmp_path):
    rows = [case(abuse_months=48 if i < 55 else 12) for i in range(100)]
    got, _ = run(tmp_path, rows, rule="long_abuse_before_help")
    assert got == []


# ---------------------------------------------------------------- the whole set


def test_at_least_six_rules_and_all_parse():
    rules = evaluation.rules(settings.get().queries_dir)
    assert len(rules) >= 6
    assert all(r.error is None for r in rules), [r.error for r in rules]


def test_a_broken_rule_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    import shutil

    queries = tmp_path / "queries"
    shutil.copytree(settings.ROOT / "queries", queries)
    path = queries / "findings" / "long_abuse_before_help.sql"
    path.write_text(path.read_text().replace("median(c.abuse_months)", "median(c.no_such)"))
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))
    rows = families(100, 80, 70, 5)
    store = db.Store(build(tmp_path / "s.duckdb", rows))
    report = evaluation.evaluate(store, S1, FY, settings.get(),
                                 results.Audience(visible=("S1",), own=("S1",)))
    store.close()
    assert [e.path for e in report.errors] == ["queries/findings/long_abuse_before_help.sql"]
    assert report.errors[0].line > 1
    assert any(f.rule == "findings/whole_family_support" for f in report.findings)


def test_sql_interval_macros_match_published_values(sample_db):
    store = db.Store(sample_db)
    frame = store.query("select wilson_lower(81, 263) as lo, wilson_upper(81, 263) as hi, "
                        "wilson_lower(0, 20) as lo0, wilson_upper(0, 20) as hi0, "
                        "wilson_lower(1, 0) as none, wilson_upper(279, 279) as all_, "
                        "wilson_lower(0, 279) as none_").frame
    store.close()
    # At n of n and 0 of n the ends are exactly 100 and 0 (tests/test_stats.py).
    assert frame["all_"][0] == 100.0 and frame["none_"][0] == 0.0
    # Newcombe (1998), Table I, Wilson score method.
    assert frame["lo"][0] == pytest.approx(25.53, abs=0.01)
    assert frame["hi"][0] == pytest.approx(36.62, abs=0.01)
    assert frame["lo0"][0] == pytest.approx(0.0, abs=0.001)
    assert frame["hi0"][0] == pytest.approx(16.11, abs=0.01)
    assert frame["none"][0] is None


def test_whole_family_finding_on_the_sample(sample_db):
    """S03 was generated to need whole-family support; S05 the opposite."""
    store = db.Store(sample_db)
    names = dict(store.query("select service_id, name from main.services").frame.iter_rows())
    report = evaluation.evaluate(store, ALL_SERVICES, FY, settings.get())
    store.close()
    fired = {f.subject for f in report.findings if f.rule == "findings/whole_family_support"}
    assert names["S03"] in fired
    assert names["S05"] not in fired


def test_finding_header_is_strict():
    text = (settings.ROOT / "queries" / "findings" / "long_abuse_before_help.sql").read_text()
    broken = text.replace("  confidence: pct_long\n", "")
    with pytest.raises(catalog.QueryFileError, match="needs exactly the keys"):
        catalog.parse(broken, "queries/findings/x.sql")
    wrong = text.replace("confidence: pct_long", "confidence: clients")
    with pytest.raises(catalog.QueryFileError, match="must be a column declared under 'rates'"):
        catalog.parse(wrong, "queries/findings/x.sql")
    # `compare` is optional, and must name a rate like `confidence` does.
    bad = text.replace("  confidence: pct_long\n", "  confidence: pct_long\n  compare: clients\n")
    with pytest.raises(catalog.QueryFileError, match="finding.compare 'clients' must be"):
        catalog.parse(bad, "queries/findings/x.sql")
    good = text.replace("  confidence: pct_long\n", "  confidence: pct_long\n  compare: pct_long\n")
    assert catalog.parse(good, "queries/findings/x.sql").finding["compare"] == "pct_long"
