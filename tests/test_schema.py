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


def _as_schema_7(path):
    """Put a store back into schema 7's shape: the keyed relations as views computing the
    derived columns on every read (as schema 7 did), its version 7."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        # Schema 7's keyed views were today's *_derived views under the keyed names.
        views = {name: sql for name, sql in con.execute(
            "select view_name, sql from duckdb_views() where schema_name = 'store'"
        ).fetchall()}
        con.execute("drop view main.marac_referrals; drop view main.cases")
        con.execute("drop table store.marac_referrals_keyed; drop table store.cases_keyed")
        con.execute("drop view store.marac_referrals_derived; drop view store.cases_derived")
        for name in ("cases", "marac_referrals"):
            con.execute(views[f"{name}_derived"].replace(f"store.{name}_derived",
                                                         f"store.{name}_keyed"))
        con.execute("create view main.cases as select * exclude (record_key, linkage_key) "
                    "from store.cases_keyed")
        con.execute("create view main.marac_referrals as select * exclude (record_key, "
                    "perpetrator_key, linkage_key, same_day_duplicate) "
                    "from store.marac_referrals_keyed")
        con.execute("update store.meta set value = '7' where key = 'schema_version'")
        con.execute("checkpoint")
    finally:
        con.close()


def test_a_schema_7_store_upgrades_in_place_keeping_every_record(tmp_path, capsys,
                                                                  monkeypatch):
    # An administrator's real store, built before the keyed relations became tables: the
    # dashboard refuses it (schema 7), `service-insights upgrade` brings it to 8, and every
    # figure is the same number read straight from the imported rows.
    from service_insights import cli

    cases = [case(case_id=f"c{i}", dash_score=10 + i, referral_date=dt.date(2024, 5, 1 + i))
             for i in range(8)]
    refs = [referral("A", dt.date(2024, 6, 1), referral_id="a1"),
            referral("A", dt.date(2024, 9, 1), referral_id="a2")]
    path = handmade.build(tmp_path / "real.duckdb", cases, refs)
    _as_schema_7(path)
    with pytest.raises(db.StoreOutdated) as refused:
        db.Store(path)
    assert refused.value.version == "7"

    monkeypatch.setenv("SI_DB_PATH", str(path))
    assert cli.main(["upgrade"]) == 0
    assert "from schema version 7 to 8" in capsys.readouterr().out
    s = db.Store(path)
    try:
        # By hand: DASH 10..17, so 14, 15, 16, 17 are high risk; a2 is 92 days after a1.
        frame = s.query("select count(*) as n, count(*) filter (where is_high_risk) as h "
                        "from main.cases").frame
        assert (frame["n"][0], frame["h"][0]) == (8, 4)
        reps = s.query("select referral_id from main.marac_referrals where is_repeat").frame
        assert reps["referral_id"].to_list() == ["a2"]
    finally:
        s.close()
    assert cli.main(["upgrade"]) == 0  # twice: nothing to do
    assert "already at schema version 8" in capsys.readouterr().out
