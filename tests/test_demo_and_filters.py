"""The demo is read-only (never an administrator), and the filters come back from the
address after a refresh, but only as far as the viewer may see."""

from __future__ import annotations

import pytest

from service_insights.access import grants
from service_insights.store import db
from tests.conftest import app_test

ADMIN_PAGES = ("users.py", "import_data.py", "audit_log.py")


@pytest.mark.parametrize("role", ["service_manager", "commissioner", "analyst"])
def test_the_demo_never_offers_users_import_or_audit(app_env, role):
    at = app_test()
    at.session_state["demo_role"] = role
    at.run()
    assert not at.exception
    viewer = at.session_state["viewer"]
    assert viewer.demo and viewer.role == role
    assert not any(viewer.can(a) for a in ("users", "import", "save_query"))
    for page in ADMIN_PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"app_pages/{page}")


def test_the_demo_offers_no_administrator_view(app_env):
    at = app_test()
    at.run()
    box = at.selectbox(key="demo_role")
    first, area = _first_service(app_env)
    assert box.options == [f"Service manager ({first})", f"Commissioner ({area})",
                           "Analyst (every service)"]
    assert box.value == "analyst", "every service, as the sample is meant to be explored"


def test_an_address_cannot_make_the_demo_an_administrator(app_env):
    at = app_test()
    at.query_params["as"] = "admin"
    at.run()
    assert at.session_state["viewer"].role == "analyst"
    assert not at.session_state["viewer"].can("users")


def test_a_demo_service_manager_sees_only_one_service(app_env):
    at = app_test()
    at.query_params["as"] = "service_manager"
    at.run()
    viewer = at.session_state["viewer"]
    assert len(viewer.services) == 1
    assert at.multiselect(key="services").options == [
        _names(app_env)[viewer.services[0]]]


def test_filters_come_back_from_the_address(app_env):
    at = app_test()
    at.query_params.update({"period": "quarter", "fy": "2022-23", "q": "3",
                            "service": ["S03", "S05"]})
    at.session_state["demo_role"] = "analyst"
    at.run()
    assert not at.exception
    assert at.radio(key="period_kind").value == "Quarter"
    assert at.selectbox(key="q_fy").value == "2022-23"
    assert at.selectbox(key="q").value == 3
    assert at.multiselect(key="services").value == ["S03", "S05"]
    sel = at.session_state["selection"]
    assert sel.scope.services == ("S03", "S05")
    assert (sel.period.start.isoformat(), sel.period.end.isoformat()) == (
        "2022-10-01", "2022-12-31")


def test_the_address_is_kept_up_to_date(app_env):
    at = app_test()
    at.session_state["demo_role"] = "analyst"
    at.run()
    at.selectbox(key="fy").select("2021-22").run()
    at.multiselect(key="services").select("S07").run()
    assert dict(at.query_params) == {"as": "analyst", "period": "year", "fy": "2021-22",
                                     "service": "S07"}


def test_the_address_never_widens_what_a_viewer_sees(app_env):
    """A service manager for S03 opens a link naming S05 and an area that is not theirs."""
    frame = db.Store(app_env).query("select service_id, area_code from main.services").frame
    other_area = frame.filter(frame["service_id"] == "S05")["area_code"][0]
    at = app_test()
    at.session_state["viewer"] = grants.resolve("sam", "service_manager", ["S03"], [], frame)
    at.query_params.update({"service": ["S05", "S03"], "area": other_area, "fy": "1999-00"})
    at.run()
    assert not at.exception
    assert at.multiselect(key="services").value == ["S03"]
    assert at.multiselect(key="areas").value == []
    assert at.session_state["selection"].scope.services == ("S03",)
    assert at.selectbox(key="fy").value != "1999-00"


def _names(db_path):
    s = db.Store(db_path)
    try:
        return dict(s.query("select service_id, name from main.services").frame.iter_rows())
    finally:
        s.close()


def _first_service(db_path):
    s = db.Store(db_path)
    try:
        return s.query("select s.name, a.name as area from main.services s join main.areas a "
                       "using (area_code) order by s.service_id limit 1").frame.row(0)
    finally:
        s.close()
