"""Accounts in a real browser: the demo is read-only whatever address is typed; a
sign-in survives a refresh and a new tab, with its filters; sign-out sticks; a user
disabled from the command line is refused at their next click.

Figures are checked against SQL written independently of the app (tests/test_home_page.py).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from service_insights import cli
from service_insights.access import accounts, audit, sessions
from service_insights.store import synth
from tests.browser.harness import App
from tests.browser.test_dashboard import ADMIN_PAGES, PAGES, independent_headlines

SERVICE = next(s for s in synth.SERVICES if s.service_id == "S03")
ADMIN_HEADINGS = {"Users", "Import your records", "Audit log"}
PASSWORDS = {"ana": "an analyst's long password", "sam": "a service manager's password",
             "root": "the administrator's password"}


def headings(app: App) -> set[str]:
    return {h.inner_text().strip() for h in
            app.page.get_by_test_id("stMain").get_by_test_id("stHeading").all()}


def test_anonymous_demo_cannot_reach_users_import_or_audit(app, server):
    app.open()
    expect(app.page.get_by_test_id("stSidebar")).to_contain_text("Demo mode")
    pages = app.nav_pages()
    assert "home" in pages
    assert not {"users", "import_data", "audit_log"} & set(pages)
    # The role choice offers no administrator.
    combo = app.sidebar_widget("stSelectbox", "View the demo as").get_by_role("combobox")
    combo.click()
    options = [o.inner_text() for o in app.page.get_by_role("option").all()]
    app.page.keyboard.press("Escape")
    assert len(options) == 3 and not any("Administrator" in o for o in options)
    # Typing the address does not open them either: the router runs and draws another page.
    for path in ("/users", "/import_data", "/audit_log", "/users?as=admin"):
        app.open(path)
        assert not ADMIN_HEADINGS & headings(app), path
        assert app.page.url.startswith(app.base_url + "/?"), "sent to the home page"
        expect(app.page.get_by_text("Add or change a user")).to_have_count(0)
        expect(app.page.locator("input[type=file]")).to_have_count(0)
    # The page files' own paths are sent to the page's address, where the router
    # decides: the demo gets the home page (not a blank one), never the admin page.
    for path in ("/app_pages/users.py", "/app_pages/import_data.py", "/app_pages/audit_log.py"):
        app.open(path)
        assert not ADMIN_HEADINGS & headings(app), path
        assert app.page.url.startswith(app.base_url + "/?"), "sent to the home page"
        expect(app.page.get_by_test_id("stApp")).to_have_count(1)
        assert "Add or change a user" not in app.page.content()
    assert not (server.log_path.parent / "no-users.yaml").exists(), "no user was created"


@pytest.fixture
def accounts_server(sample_db, start_server, tmp_path):
    users = tmp_path / "users.yaml"
    accounts.save_user(accounts.User("ana", "analyst"), PASSWORDS["ana"], users)
    accounts.save_user(accounts.User("root", "admin"), PASSWORDS["root"], users)
    accounts.save_user(accounts.User("sam", "service_manager", ("S03",)), PASSWORDS["sam"],
                       users)
    return start_server(sample_db, SI_USERS_FILE=str(users)), users


def sign_in(app: App, username: str) -> None:
    page = app.page
    expect(page.get_by_text("Sign in to Service Insights")).to_be_visible()
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORDS[username])
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()
    app.wait_idle()
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {username}")


def test_sign_in_survives_a_refresh_and_a_new_tab_with_its_filters(
        accounts_server, new_app, sample_db):
    srv, _ = accounts_server
    app = new_app(srv).open()
    assert app.metrics() == {}, "no figures before sign-in"
    sign_in(app, "ana")
    app.choose_service(SERVICE.name)
    app.choose_year("2022-23")
    expected = independent_headlines(sample_db, "2022-23", SERVICE.service_id)
    assert app.metrics() == expected

    app.page.reload()
    app.wait_idle()
    expect(app.page.get_by_test_id("stSidebar")).to_contain_text("Signed in as ana")
    expect(app.sidebar_widget("stSelectbox", "Financial year (April to March)")
           .get_by_role("combobox")).to_have_value("2022-23")
    expect(app.sidebar_widget("stMultiSelect", "Service")).to_contain_text(SERVICE.name)
    assert app.metrics() == expected

    tab = App(app.page.context.new_page(), srv.url).open()
    expect(tab.page.get_by_test_id("stSidebar")).to_contain_text("Signed in as ana")
    assert tab.metrics() != {}

    cookie = next(c for c in app.page.context.cookies() if c["name"] == sessions.COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert app.page.evaluate("document.cookie").find(sessions.COOKIE) == -1, \
        "page scripts cannot read the session cookie"

    with app.page.expect_navigation():
        app.page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    app.wait_idle()
    expect(app.page.get_by_text("Sign in to Service Insights")).to_be_visible()
    app.page.reload()
    app.wait_idle()
    expect(app.page.get_by_text("Sign in to Service Insights")).to_be_visible()
    assert app.metrics() == {}
    assert not [c for c in app.page.context.cookies() if c["name"] == sessions.COOKIE]
    # The other tab's session was the same one: its next click is refused too.
    tab.page.get_by_test_id("stSidebar").get_by_text("Quarter", exact=True).click()
    expect(tab.page.get_by_test_id("stMain")).to_contain_text("Your session has ended")
    expect(tab.page.get_by_test_id("stMetric")).to_have_count(0)


def test_a_user_disabled_from_the_cli_is_refused_at_their_next_click(
        accounts_server, new_app, monkeypatch, capsys):
    srv, users = accounts_server
    app = new_app(srv).open()
    sign_in(app, "sam")
    assert app.metrics()["Cases referred"] != ""

    monkeypatch.setenv("SI_USERS_FILE", str(users))
    assert cli.main(["users", "disable", "sam"]) == 0
    assert "1 open session(s) ended" in capsys.readouterr().out

    app.page.get_by_test_id("stSidebar").get_by_text("Quarter", exact=True).click()
    expect(app.page.get_by_test_id("stMain")).to_contain_text("Your session has ended")
    expect(app.page.get_by_test_id("stMetric")).to_have_count(0)
    # Signing in again is refused too, with one sentence.
    app.page.get_by_role("textbox", name="Username").fill("sam")
    app.page.get_by_role("textbox", name="Password").fill(PASSWORDS["sam"])
    with app.page.expect_navigation():
        app.page.get_by_role("button", name="Sign in", exact=True).click()
    expect(app.page.get_by_test_id("stMain")).to_contain_text(accounts.DISABLED)
    expect(app.page.get_by_test_id("stMetric")).to_have_count(0)


def test_an_administrator_opens_the_admin_pages_and_disables_a_user(
        accounts_server, new_app, monkeypatch):
    """The pages the demo never shows, as a signed-in administrator; the Users page's
    lifecycle form disables a user, which ends their session and is audited."""
    srv, users = accounts_server
    sam = new_app(srv).open()
    sign_in(sam, "sam")
    app = new_app(srv).open()
    sign_in(app, "root")
    pages = app.nav_pages()
    assert sorted(pages) == PAGES
    for page in ADMIN_PAGES:
        app.goto_page(pages[page])
        assert app.errors() == []
        app.screenshot(page)
    app.goto_page(pages["users"])
    form = app.page.get_by_test_id("stForm").filter(has_text="Disable, enable, remove")
    combo = form.get_by_test_id("stSelectbox").get_by_role("combobox")  # no rerun in a form
    combo.click()
    app.page.get_by_role("option", name="sam", exact=True).click()
    expect(combo).to_have_value("sam")
    form.get_by_text("Disable", exact=True).click()
    form.get_by_text("Yes, do this").click()
    form.get_by_role("button", name="Apply").click()
    expect(app.page.get_by_test_id("stMain")).to_contain_text(
        "Disable: sam, done; 1 open session(s) ended.")
    monkeypatch.setenv("SI_USERS_FILE", str(users))
    assert accounts.load_users()["sam"].disabled
    monkeypatch.setenv("SI_AUDIT_LOG", str(srv.env["SI_AUDIT_LOG"]))
    event = audit.read()[-1]
    assert (event["who"], event["action"], event["user"]) == ("root", "user_disabled", "sam")
    sam.page.get_by_test_id("stSidebar").get_by_text("Quarter", exact=True).click()
    expect(sam.page.get_by_test_id("stMain")).to_contain_text("Your session has ended")
