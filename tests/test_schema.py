"""The schema's derived fields on hand-made rows."""

import datetime as dt

import pytest

from service_insights.store import db
from tests import handmade
from tests.handmade import case, referral


@pytest.fixture
def store(tmp_path):
    cases = [
        case(case_id="march31", referral_date=dt.date(2025, 3, 31)),
        case(case_id="april1", referral_date=dt.date(2025, 4, 1)),
        case(case_id="jan", referral_date=dt.date(2025, 1, 15)),
        case(case_id="dash13", dash_score=13),
        case(case_id="dash14", dash_score=14, risk_level="high"),
        case(case_id="nodash", dash_score=None),
        case(case_id="kids_cp", children_in_household=2, social_care="child_protection",
             youngest_child_age_band="0-4"),
        case(case_id="kids_none", children_in_household=1, social_care="none"),
        case(case_id="kids_unknown", children_in_household=3, social_care="unknown"),
    ]
    d0 = dt.date(2023, 1, 10)
    refs = [
        referral("A", d0, referral_id="a1"),
        referral("A", d0 + dt.timedelta(days=364), referral_id="a2"),
        referral("B", d0, referral_id="b1"),
        referral("B", d0 + dt.timedelta(days=366), referral_id="b2"),
        referral("C", d0, referral_id="c1"),
        referral("C", d0 + dt.timedelta(days=365), referral_id="c2"),
        referral("D", d0, referral_id="d1", referring_agency="health"),
        referral("D", d0 + dt.timedelta(days=400), referral_id="d2"),
        referral("D", d0 + dt.timedelta(days=500), referral_id="d3"),
    ]
    path = handmade.build(tmp_path / "h.duckdb", cases, refs)
    s = db.Store(path)
    yield s
    s.close()


def one(store, sql, **params):
    return store.query(sql, params).frame.row(0, named=True)


@pytest.mark.parametrize(("case_id", "fy", "q"), [
    ("march31", "2024-25", 4), ("april1", "2025-26", 1), ("jan", "2024-25", 4),
])
def test_financial_year_and_quarter(store, case_id, fy, q):
    row = one(store, "select financial_year, fy_quarter, quarter_label from cases "
                     "where case_id = $id", id=case_id)
    assert row == {"financial_year": fy, "fy_quarter": q, "quarter_label": f"{fy} Q{q}"}


@pytest.mark.parametrize(("case_id", "expected"), [
    ("dash13", False), ("dash14", True), ("nodash", None)])
def test_high_risk_is_dash_14_or_more(store, case_id, expected):
    assert one(store, "select is_high_risk from cases where case_id = $id",
               id=case_id)["is_high_risk"] is expected


@pytest.mark.parametrize(("case_id", "children", "known"), [
    ("kids_cp", True, True), ("kids_none", True, False), ("kids_unknown", True, None),
    ("dash13", False, None)])
def test_families_known_to_social_care(store, case_id, children, known):
    row = one(store, "select has_children, is_known_to_social_care from cases "
                     "where case_id = $id", id=case_id)
    assert row == {"has_children": children, "is_known_to_social_care": known}


@pytest.mark.parametrize(("referral_id", "repeat"), [
    ("a1", False), ("a2", True),   # 364 days after the last: a repeat
    ("b1", False), ("b2", False),  # 366 days: a new referral
    ("c2", True),                  # exactly 365 days: still within 12 months
    ("d2", False), ("d3", True),   # measured from the previous referral, not the first
])
def test_marac_repeat_within_365_days_of_previous(store, referral_id, repeat):
    row = one(store, "select is_repeat from marac_referrals where referral_id = $id",
              id=referral_id)
    assert row["is_repeat"] is repeat


def test_partner_agency_is_anything_but_police(store):
    row = one(store, "select is_partner_agency from marac_referrals where referral_id = 'd1'")
    assert row["is_partner_agency"] is True


def test_constraints_refuse_impossible_rows(tmp_path):
    with pytest.raises(Exception, match="(?i)constraint"):
        handmade.build(tmp_path / "bad.duckdb", [case(dash_score=25)])
    with pytest.raises(Exception, match="(?i)constraint"):
        handmade.build(tmp_path / "bad2.duckdb", [case(children_in_household=0,
                                                       social_care="none")])
    assert not (tmp_path / "bad.duckdb").exists(), "a failed build must leave no file"
