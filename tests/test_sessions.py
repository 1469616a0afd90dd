"""Sessions that survive a refresh, and users that can be disabled, removed or given a new
password: what is stored for a token, when a session ends, the /signin and /signout routes
attacked as a browser from another site would, and the `users` command line.

Digests are computed here with hashlib, not with the code under test; expiry runs on a
fake clock; grant refusals are checked against the ids read from the store with DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import stat
import time

import duckdb
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from service_insights import cli
from service_insights.access import accounts, audit, sessions
from service_insights.store import db
from service_insights.ui import session_routes
from tests.conftest import app_test

PASSWORD = "correct horse battery"
IDLE, MAX = 30 * 60, 12 * 3600


class Clock:
    """Starts at the real time (revocation by accounts.py runs on the real clock)."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    path = tmp_path / "users.yaml"
    monkeypatch.setenv("SI_USERS_FILE", str(path))
    accounts.save_user(accounts.User("sam", "service_manager", ("S03",)), PASSWORD)
    accounts.save_user(accounts.User("ana", "analyst"), "another long secret")
    return path


def store_at(clock: Clock) -> sessions.SessionStore:
    return sessions.SessionStore(clock=clock, idle_s=IDLE, max_s=MAX)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- what is stored


def test_the_stored_value_is_the_sha256_of_the_token_never_the_token(users_file):
    store = store_at(Clock())
    token = store.create("sam")
    assert len(token) >= 43, "32 random bytes, url-safe base64"
    text = store.path.read_text()
    assert token not in text
    stored = json.loads(text)
    assert list(stored) == [hashlib.sha256(token.encode()).hexdigest()]
    assert stored[hashlib.sha256(token.encode()).hexdigest()]["user"] == "sam"
    assert mode(store.path) == 0o600
    assert store.path.parent == users_file.parent, "beside the users file, not in the repo"
    # The digest itself is not a token: presenting what was read from the file fails.
    assert store.lookup(hashlib.sha256(token.encode()).hexdigest()) is None
    assert store.lookup(token).username == "sam"


def test_tokens_are_unpredictable(users_file):
    store = store_at(Clock())
    tokens = {store.create("sam") for _ in range(50)}
    assert len(tokens) == 50


# ---------------------------------------------------------------- expiry


def test_a_session_ends_after_the_idle_timeout(users_file):
    clock = Clock()
    store = store_at(clock)
    token = store.create("sam")
    for _ in range(5):  # active every 20 minutes: 100 minutes, well past one idle period
        clock.now += 20 * 60
        assert store.lookup(token) is not None
    clock.now += IDLE + 1
    assert store.lookup(token) is None
    clock.now -= IDLE + 1  # and it stays ended (it was removed, not just hidden)
    assert store.lookup(token) is None


def test_a_session_ends_at_its_absolute_lifetime_however_active(users_file):
    clock = Clock()
    store = store_at(clock)
    start = clock.now
    token = store.create("sam")
    while clock.now + 10 * 60 < start + MAX:
        clock.now += 10 * 60
        assert store.lookup(token) is not None
    clock.now = start + MAX + 1
    assert store.lookup(token) is None


def test_the_limits_come_from_settings(users_file, monkeypatch):
    monkeypatch.setenv("SI_SESSION_IDLE_MINUTES", "5")
    monkeypatch.setenv("SI_SESSION_MAX_HOURS", "2")
    store = sessions.SessionStore()
    assert (store.idle_s, store.max_s) == (300, 7200)


# ---------------------------------------------------------------- revocation


def test_password_change_disable_and_remove_end_that_users_sessions(users_file):
    clock = Clock()
    store = store_at(clock)
    sam1, sam2, ana = store.create("sam"), store.create("sam"), store.create("ana")
    assert accounts.set_password("sam", "a brand new password") == 2
    assert store.lookup(sam1) is None and store.lookup(sam2) is None
    assert store.lookup(ana) is not None, "other users are not signed out"
    sam3 = store.create("sam")
    assert accounts.set_disabled("sam", True) == 1
    assert store.lookup(sam3) is None
    assert accounts.load_users()["sam"].disabled is True
    assert accounts.authenticate("sam", "a brand new password", throttle=accounts.Throttle()
                                 ).user is None
    accounts.set_disabled("sam", False)
    assert accounts.authenticate("sam", "a brand new password", throttle=accounts.Throttle()
                                 ).user.username == "sam"
    assert store.lookup(sam3) is None, "enabling does not bring an ended session back"
    ana2 = store.create("ana")
    assert accounts.remove_user("ana") == 2
    assert store.lookup(ana) is None and store.lookup(ana2) is None
    assert "ana" not in accounts.load_users()


def test_editing_a_user_keeps_them_disabled(users_file):
    accounts.set_disabled("sam", True)
    accounts.save_user(accounts.User("sam", "service_manager", ("S03", "S04")), None)
    assert accounts.load_users()["sam"].disabled is True
    assert accounts.load_users()["sam"].services == ("S03", "S04")


def test_the_users_file_is_private_and_written_whole(users_file):
    assert mode(users_file) == 0o600
    accounts.set_disabled("sam", True)
    assert mode(users_file) == 0o600
    assert [p.name for p in users_file.parent.iterdir() if p.name.endswith(".tmp")] == []


# ---------------------------------------------------------------- the routes


@pytest.fixture
def client(users_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SI_AUDIT_LOG", str(tmp_path / "audit.log"))
    app = Starlette(routes=session_routes.routes(""))
    with TestClient(app, base_url="http://insights.test", follow_redirects=False) as c:
        yield c


SAME_SITE = {"origin": "http://insights.test"}


def signin(client, username="sam", password=PASSWORD, nxt="/overview?fy=2022-23",
           headers=SAME_SITE):
    return client.post("/signin", data={"username": username, "password": password,
                                        "next": nxt}, headers=headers)


def test_signin_sets_an_httponly_strict_cookie_and_goes_back(client):
    r = signin(client)
    assert r.status_code == 303
    assert r.headers["location"] == "/overview?fy=2022-23", "back to the page and filters"
    cookie = r.headers["set-cookie"]
    token = cookie.split(";")[0].split("=", 1)[1]
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attrs
    assert "secure" not in attrs, "plain HTTP here; Secure is for HTTPS"
    assert f"max-age={MAX}" in attrs
    stored = json.loads(sessions.sessions_path().read_text())
    assert list(stored) == [hashlib.sha256(token.encode()).hexdigest()]
    event = audit.read()[-1]
    assert (event["action"], event["who"], event["ok"]) == ("sign_in", "sam", True)


def test_the_cookie_is_secure_behind_https(client):
    https = TestClient(client.app, base_url="https://insights.test", follow_redirects=False)
    r = signin(https, headers={"origin": "https://insights.test"})
    assert "secure" in {a.strip().lower() for a in r.headers["set-cookie"].split(";")}


def test_a_wrong_password_sets_nothing_and_says_so(client):
    r = signin(client, password="not it at all")
    assert r.status_code == 303 and "set-cookie" not in r.headers
    assert r.headers["location"] == "/overview?fy=2022-23&signin_error=wrong"
    assert not sessions.sessions_path().exists() or json.loads(
        sessions.sessions_path().read_text()) == {}
    assert audit.read()[-1]["ok"] is False
    assert "not it at all" not in audit.path().read_text()


def test_a_disabled_user_cannot_sign_in(client):
    accounts.set_disabled("sam", True)
    r = signin(client)
    assert "set-cookie" not in r.headers
    assert r.headers["location"].endswith("signin_error=disabled")


@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example"},
    {"referer": "http://evil.example/page"},
    {"origin": "null"},
    {},
], ids=["other-origin", "other-referer", "null-origin", "no-origin-or-referer"])
def test_a_signin_posted_from_another_site_is_refused(client, headers):
    """Login CSRF: another site's page posts the attacker's credentials."""
    r = signin(client, headers=headers)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert r.text == "Sign-in refused: the form was not sent from this site."


def test_a_proxy_that_drops_the_port_from_host_is_still_same_site(client):
    """nginx's `proxy_set_header Host $host` passes the name without the port."""
    r = signin(client, headers={"origin": "https://insights.test:8443"})
    assert r.status_code == 303 and sessions.COOKIE in r.headers["set-cookie"]


def test_another_port_is_refused_when_the_host_names_one(client):
    r = client.post("/signin", data={"username": "sam", "password": PASSWORD},
                    headers={"origin": "http://insights.test:8080",
                             "host": "insights.test:8501"})
    assert r.status_code == 403 and "set-cookie" not in r.headers


@pytest.mark.parametrize("nxt", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                 "javascript:alert(1)"])
def test_signin_never_redirects_off_site(client, nxt):
    assert signin(client, nxt=nxt).headers["location"] == "/"


def test_signout_revokes_the_session_and_clears_the_cookie(client):
    token = signin(client).cookies[sessions.COOKIE]
    store = sessions.SessionStore()
    assert store.lookup(token) is not None
    client.cookies.set(sessions.COOKIE, token)
    r = client.post("/signout", headers=SAME_SITE)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(f"{sessions.COOKIE}=") and "max-age=0" in cookie
    assert store.lookup(token) is None
    assert hashlib.sha256(token.encode()).hexdigest() not in sessions.sessions_path().read_text()
    assert audit.read()[-1]["action"] == "sign_out"


def test_signout_from_another_site_is_refused(client):
    token = signin(client).cookies[sessions.COOKIE]
    client.cookies.set(sessions.COOKIE, token)
    r = client.post("/signout", headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert sessions.SessionStore().lookup(token) is not None


# ---------------------------------------------------------------- the app, mid-session


def test_a_user_disabled_mid_session_is_refused_at_the_next_run(app_env, users_file):
    from service_insights.access import grants

    at = app_test()
    frame = db.Store(app_env).query("select service_id, area_code from main.services").frame
    at.session_state["viewer"] = grants.resolve("sam", "service_manager", ["S03"], [], frame)
    at.run()
    assert not at.exception and at.metric
    accounts.set_disabled("sam", True)
    at.run()
    assert not at.exception
    assert not at.metric
    assert [e.value for e in at.error] == [accounts.DISABLED]


# ---------------------------------------------------------------- the command line


def registered(db_path) -> tuple[list[str], list[str]]:
    con = duckdb.connect(str(db_path), read_only=True, config=db.read_only_config())
    try:
        return ([r[0] for r in con.execute("select service_id from store.services "
                                           "order by 1").fetchall()],
                [r[0] for r in con.execute("select area_code from store.areas "
                                           "order by 1").fetchall()])
    finally:
        con.close()


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_refuses_a_service_that_is_not_registered(app_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SI_USERS_FILE", str(tmp_path / "u.yaml"))
    services, _ = registered(app_env)
    code, out, err = run_cli(capsys, "users", "add", "sam", "--role", "service_manager",
                             "--services", "S77", "--no-password")
    assert code == 1 and out == ""
    assert err == (f"users: S77 is not a registered service; the registered service ids are "
                   f"{', '.join(services)} (--role, --services, --areas).\n")
    assert not (tmp_path / "u.yaml").exists(), "nothing written"


def test_cli_refuses_an_area_that_is_not_registered(app_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SI_USERS_FILE", str(tmp_path / "u.yaml"))
    _, areas = registered(app_env)
    code, _, err = run_cli(capsys, "users", "add", "cat", "--role", "commissioner",
                           "--areas", f"{areas[0]},E09999999", "--no-password")
    assert code == 1 and "E09999999 is not a registered area" in err
    assert ", ".join(areas) in err and "Traceback" not in err
    code, _, _ = run_cli(capsys, "users", "add", "cat", "--role", "commissioner",
                         "--areas", areas[0], "--no-password")
    assert code == 0 and accounts.load_users()["cat"].areas == (areas[0],)


def test_cli_lifecycle(app_env, users_file, capsys, monkeypatch):
    store = sessions.SessionStore()
    token = store.create("sam")
    code, out, _ = run_cli(capsys, "users", "disable", "sam")
    assert code == 0 and out == "Disabled sam; 1 open session(s) ended.\n"
    assert store.lookup(token) is None and accounts.load_users()["sam"].disabled
    code, out, _ = run_cli(capsys, "users", "list")
    assert "sam\tservice_manager\tS03\t\tdisabled" in out.splitlines()
    assert run_cli(capsys, "users", "enable", "sam")[0] == 0
    assert not accounts.load_users()["sam"].disabled

    token = store.create("sam")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the next long password\n"))
    code, out, _ = run_cli(capsys, "users", "passwd", "sam", "--password-stdin")
    assert code == 0 and "1 open session(s) ended" in out
    assert store.lookup(token) is None
    assert accounts.authenticate("sam", "the next long password",
                                 throttle=accounts.Throttle()).user

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    code, _, err = run_cli(capsys, "users", "passwd", "sam", "--password-stdin")
    assert (code, err) == (1, "users: a password needs at least 12 characters.\n")

    code, out, _ = run_cli(capsys, "users", "remove", "sam")
    assert code == 0 and "sam" not in accounts.load_users()
    actions = [(e["action"], e.get("user")) for e in audit.read()]
    assert actions[-4:] == [("user_disabled", "sam"), ("user_enabled", "sam"),
                            ("user_password_changed", "sam"), ("user_removed", "sam")]


@pytest.mark.parametrize("action", ["disable", "enable", "remove", "passwd"])
def test_cli_names_a_missing_user_in_one_sentence(users_file, capsys, action):
    code, out, err = run_cli(capsys, "users", action, "nobody")
    assert code == 1 and out == ""
    assert err == f"users: there is no user called 'nobody' in {users_file}.\n"
