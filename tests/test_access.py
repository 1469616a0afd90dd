"""Who sees what: sign-in, throttling, scope narrowed in the data layer, the workbench,
and the audit log."""

from __future__ import annotations

import duckdb
import pytest

from service_insights import settings
from service_insights.access import accounts, audit, grants
from service_insights.catalogue import periods, workbench
from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.store import db
from tests.conftest import app_test

FY = periods.financial_year(2024)
CATALOGUE_SQL = "select service_id, area_code from main.services"


@pytest.fixture
def catalogue(sample_db):
    store = db.Store(sample_db)
    frame = store.query(CATALOGUE_SQL).frame
    store.close()
    return frame


def manager(catalogue, service="S03"):
    return grants.resolve("sam", "service_manager", [service], [], catalogue)


# ---------------------------------------------------------------- scope


def test_a_service_manager_is_narrowed_to_their_services(catalogue):
    v = manager(catalogue)
    area = catalogue.filter(catalogue["service_id"] == "S03")["area_code"][0]
    mine = grants.clamp(ALL_SERVICES, v)
    assert mine.services == ("S03",) and mine.areas == (area,) and mine.by_service
    other = grants.clamp(Scope(("S05",), ("E06000003",), True, "S05"), v)
    assert other.services == ()
    both = grants.clamp(Scope(("S03", "S05"), None, True, "two"), v)
    assert both.services == ("S03",)
    # An area choice still gives a service manager only their own referrals.
    area_scope = Scope(("S03", "S04"), (area,), False, "area")
    assert grants.clamp(area_scope, v).by_service is True


def test_a_commissioner_sees_every_service_in_their_areas(catalogue):
    v = grants.resolve("cat", "commissioner", [], ["E06000001"], catalogue)
    expected = sorted(catalogue.filter(catalogue["area_code"] == "E06000001")["service_id"])
    assert list(v.services) == expected
    assert grants.clamp(ALL_SERVICES, v).areas == ("E06000001",)
    outside = catalogue.filter(catalogue["area_code"] != "E06000001").row(0)
    assert grants.clamp(Scope((outside[0],), (outside[1],), True, "x"), v).services == ()


def test_analysts_see_everything(catalogue):
    v = grants.resolve("ana", "analyst", [], [], catalogue)
    assert grants.clamp(ALL_SERVICES, v) is ALL_SERVICES
    assert v.can("workbench") and not v.can("import")


# ---------------------------------------------------------------- passwords


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    path = tmp_path / "users.yaml"
    monkeypatch.setenv("SI_USERS_FILE", str(path))
    accounts.save_user(accounts.User("sam", "service_manager", ("S03",)), "correct horse battery")
    accounts.save_user(accounts.User("ana", "analyst"), "another long secret")
    return path


def test_passwords_are_stored_hashed_and_checked(users_file):
    text = users_file.read_text()
    assert "correct horse battery" not in text and "$argon2id$" in text
    users = accounts.load_users()
    throttle = accounts.Throttle()
    assert accounts.authenticate("SAM", "correct horse battery", users, throttle).user.role == \
        "service_manager"
    wrong = accounts.authenticate("sam", "wrong", users, throttle)
    unknown = accounts.authenticate("nobody", "wrong", users, throttle)
    assert wrong.user is None and unknown.user is None
    assert wrong.message == unknown.message  # no hint which usernames exist


def test_failed_sign_ins_are_throttled(users_file):
    now = [1000.0]
    throttle = accounts.Throttle(max_failures=5, window_s=900, clock=lambda: now[0])
    users = accounts.load_users()
    for _ in range(5):
        assert accounts.authenticate("sam", "guess", users, throttle).user is None
    blocked = accounts.authenticate("sam", "correct horse battery", users, throttle)
    assert blocked.user is None and blocked.wait_s > 0 and "Too many" in blocked.message
    assert accounts.authenticate("ana", "another long secret", users, throttle).user  # others fine
    now[0] += 901
    assert accounts.authenticate("sam", "correct horse battery", users, throttle).user


def test_short_passwords_are_refused(tmp_path):
    with pytest.raises(ValueError, match="12 characters"):
        accounts.save_user(accounts.User("x", "analyst"), "short", tmp_path / "u.yaml")


# ---------------------------------------------------------------- the app


def test_sign_in_is_required_when_users_exist(app_env, users_file):
    """The page offers a plain form posted to the server's /signin route (only a route can
    set an HttpOnly cookie); what the route does is in tests/test_sessions.py."""
    at = app_test()
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in to Service Insights"]
    assert not at.metric, "no figures before sign-in"
    form = next(h.proto.body for h in at.get("html") if "<form" in h.proto.body)
    assert 'method="post" action="/signin"' in form
    assert 'name="username"' in form and 'type="password"' in form


def test_demo_mode_only_on_synthetic_data(app_env):
    at = app_test()
    at.run()
    assert any("Demo mode" in i.value for i in at.info)


def test_real_data_without_users_needs_sign_in(tmp_path, monkeypatch):
    from tests.handmade import build, case

    path = build(tmp_path / "real.duckdb", [case()], data_kind="real")
    monkeypatch.setenv("SI_DB_PATH", str(path))
    at = app_test()
    at.run()
    assert not at.exception
    assert any("Sign-in is required" in e.value for e in at.error)
    assert not at.metric


def independent_cases(db_path, service, start, end):
    con = duckdb.connect(str(db_path), read_only=True, config=db.read_only_config())
    try:
        return con.execute("select count(*) from store.cases where service_id = $s and "
                           "referral_date between $a and $b",
                           {"s": service, "a": start, "b": end}).fetchone()[0]
    finally:
        con.close()


def test_a_service_manager_sees_only_their_service_on_every_page(app_env, users_file,
                                                                  catalogue):
    at = app_test()
    at.session_state["viewer"] = manager(catalogue, "S03")
    at.session_state["fy"] = "2024-25"
    at.run()
    assert not at.exception
    cases = next(m for m in at.metric if m.label == "Cases referred").value
    assert cases == f"{independent_cases(app_env, 'S03', FY.start, FY.end):,}"
    # The service filter offers only their own service.
    assert at.multiselect(key="services").options == [
        next(n for s, n in _names(app_env).items() if s == "S03")]
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception
    names = set(_names(app_env).values())
    shown = {str(t) for chart in at.get("plotly_chart")
             for t in _trace_texts(chart)} & names
    assert shown == {_names(app_env)["S03"]}, "the funnels show this service and no other"
    for page in ("findings.py", "marac.py"):
        at.switch_page(f"app_pages/{page}").run()
        assert not at.exception
    # The workbench, import, users and audit pages are not in a service manager's
    # navigation at all, so there is no way to open them.
    for page in ("workbench.py", "import_data.py", "users.py", "audit_log.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"app_pages/{page}")


def _names(db_path):
    con = duckdb.connect(str(db_path), read_only=True, config=db.read_only_config())
    try:
        return dict(con.execute("select service_id, name from store.services").fetchall())
    finally:
        con.close()


def _trace_texts(chart):
    import json

    spec = json.loads(chart.proto.spec)
    for trace in spec.get("data", []):
        yield from trace.get("text") or []


# ---------------------------------------------------------------- the workbench


REFUSED = [
    "insert into cases select * from cases",
    "delete from cases",
    "attach 'other.duckdb' as other",
    "copy (select count(*) from cases) to '/tmp/out.csv'",
    "select count(*) from read_csv('/etc/passwd')",
    "select count(*) from '/etc/passwd'",
    "select count(*) from cases; select count(*) from services",
    "pragma database_list",
    "set enable_external_access = true",
    "select * from cases",
    "select count(*) from store.cases",
    "create table x as select 1",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_workbench_refuses(sample_db, sql):
    store = workbench.open_connection(sample_db)
    analyst = grants.Viewer("ana", "analyst", None, None)
    try:
        with pytest.raises(workbench.Refused):
            workbench.run(store, sql, ALL_SERVICES, FY, analyst, settings.get())
    finally:
        store.close()


def test_the_connection_itself_cannot_read_files(sample_db):
    """Second layer: even SQL the parser let through could not read a local file."""
    store = workbench.open_connection(sample_db)
    try:
        with pytest.raises(db.QueryFailed):
            store.query("select * from read_csv('/etc/passwd')")
        with pytest.raises(db.QueryFailed):
            store.query("set enable_external_access = true")
    finally:
        store.close()


def test_workbench_stops_a_runaway_query(sample_db):
    store = workbench.open_connection(sample_db)
    analyst = grants.Viewer("ana", "analyst", None, None)
    try:
        with pytest.raises(workbench.Refused, match="time limit"):
            workbench.run(store, "select count(*) from cases a, cases b, cases c",
                          ALL_SERVICES, FY, analyst, settings.get(), timeout_s=1.0)
    finally:
        store.close()


def test_workbench_is_scoped_and_protected(sample_db, catalogue):
    store = workbench.open_connection(sample_db)
    sql = ("select service_id, gender, count(*) as n from cases "
           "where referral_date between $period_start and $period_end group by all")
    try:
        out = workbench.run(store, sql, ALL_SERVICES, FY, manager(catalogue, "S03"),
                            settings.get())
        raw = store.query("select service_id, gender, count(*) as n from main.cases "
                          "where referral_date between $a and $b group by all",
                          {"a": FY.start, "b": FY.end}).frame
    finally:
        store.close()
    assert set(out.protected.frame["service_id"]) == {"S03"}
    shown = out.protected.display()
    small = raw.filter((raw["service_id"] == "S03") & (raw["n"] < 5) & (raw["n"] > 0))
    for gender in small["gender"]:
        assert shown.filter(shown["gender"] == gender)["n"][0] == "<5"
    assert not any(v in {"1", "2", "3", "4"} for v in shown["n"])


def test_saving_a_workbench_query_makes_a_chart_file(tmp_path):
    queries = tmp_path / "queries"
    queries.mkdir()
    sql = ("select risk_level, count(*) as cases from cases "
           "where referral_date between $period_start and $period_end group by risk_level")
    path = workbench.save(sql, {"title": "Cases by risk", "description": "Cases by risk.",
                                "page": "risk", "chart": "bar", "x": "risk_level",
                                "y": "cases", "counts": ["cases"]}, queries)
    assert path == queries / "risk" / "cases_by_risk.sql"
    from service_insights.catalogue import catalog

    spec = catalog.parse(path.read_text(), "queries/risk/cases_by_risk.sql")
    assert spec.params == ("period_end", "period_start") or set(spec.params) == {
        "period_start", "period_end"}
    with pytest.raises(workbench.Refused, match="already exists"):
        workbench.save(sql, {"title": "Cases by risk", "description": "x.", "page": "risk",
                             "chart": "bar", "x": "risk_level", "y": "cases",
                             "counts": ["cases"]}, queries)


# ---------------------------------------------------------------- audit


def test_cli_export_is_audited_without_data(sample_db, tmp_path, monkeypatch):
    from service_insights import cli

    monkeypatch.setenv("SI_DB_PATH", str(sample_db))
    out = tmp_path / "x.csv"
    code = cli.main(["export", "--service", "S03", "--year", "2024-25", "--query",
                     "home/headline_figures", "--format", "csv", "--out", str(out)])
    assert code == 0
    event = audit.read()[-1]
    assert event["action"] == "export" and event["format"] == "csv"
    assert event["query"] == "home/headline_figures" and event["via"] == "cli"
    assert set(event) <= {"at", "who", "action", "format", "query", "scope", "period", "via",
                          "os_user", "acting_as", "acting_role"}


def test_audit_refuses_data_details():
    with pytest.raises(ValueError):
        audit.record("x", "export", rows=[1, 2])


def test_an_admin_adds_a_user_on_the_users_page(app_env, tmp_path, monkeypatch):
    users = tmp_path / "admin-users.yaml"
    monkeypatch.setenv("SI_USERS_FILE", str(users))
    at = app_test()
    at.session_state["viewer"] = grants.Viewer("root", "admin", None, None)
    at.run()
    at.switch_page("app_pages/users.py").run()
    assert not at.exception
    at.text_input(key="user_name").input("newbie")
    at.selectbox(key="user_role").select("analyst")
    at.text_input(key="user_password").input("a long enough password")
    at.button(key="FormSubmitter:add-user-Save user").click().run()
    assert not at.exception
    saved = accounts.load_users(users)
    assert saved["newbie"].role == "analyst"
    assert "a long enough password" not in users.read_text()
    assert audit.read()[-1]["action"] == "user_saved"


def test_a_user_who_could_see_nothing_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one service"):
        accounts.save_user(accounts.User("x", "service_manager"), "long enough secret",
                           tmp_path / "u")
    with pytest.raises(ValueError, match="at least one area"):
        accounts.save_user(accounts.User("x", "commissioner"), "long enough secret", tmp_path / "u")
    assert not (tmp_path / "u").exists()
