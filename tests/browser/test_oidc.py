"""Sign-in through an organisation's identity provider (st.login), end to end.

A real OpenID Connect provider (oidc-provider-mock, run by tests/browser/oidc_provider.py)
and the dashboard run as two servers on 127.0.0.1; Chromium clicks "Sign in with your
organisation", types the subject on the provider's own authorization page and comes back
with an ID token that Streamlit checks (signature, issuer, audience, nonce). The e-mail
address in it is the only link to the users file, which the CLI wrote as an operator
would. Expected services and counts come from the synthetic generator's service list and
from SQL run here on the store file, not from the dashboard's code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import expect

from service_insights.store import synth
from tests.browser import harness
from tests.browser.oidc_provider import Provider, write_secrets

AREA = "E06000001"  # Ashcombe
SERVICE = "S03"  # Brindlehurst Family Idva
BUTTON = "Sign in with your organisation"
SIGN_IN_HEADING = "Sign in to Service Insights"
IDENTITY_COOKIES = {"_streamlit_user", "_streamlit_user_tokens"}
NAMES = {s.service_id: s.name for s in synth.SERVICES}


class Site:
    def __init__(self, provider: Provider, server: harness.Server, store: Path):
        self.provider = provider
        self.server = server
        self.store = store

    def audit(self) -> list[dict]:
        path = Path(self.server.env["SI_AUDIT_LOG"])
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _add_user(env: dict, *args: str) -> None:
    """As an operator would: `service-insights users add ...`."""
    done = subprocess.run([sys.executable, "-m", "service_insights.cli", "users", "add", *args],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def site(sample_db, browser, tmp_path_factory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("oidc")
    provider = Provider(tmp / "provider.log")
    server = harness.Server(sample_db, tmp / "streamlit.log",
                            {"SI_USERS_FILE": str(tmp / "users.yaml")})
    env = {**os.environ, "SI_USERS_FILE": server.env["SI_USERS_FILE"],
           "SI_AUDIT_LOG": server.env["SI_AUDIT_LOG"], "SI_DB_PATH": str(sample_db)}
    _add_user(env, "dan", "--role", "commissioner", "--areas", AREA,
              "--email", "dan@example.org", "--no-password")
    _add_user(env, "sam", "--role", "service_manager", "--services", SERVICE,
              "--email", "sam.manager@example.org", "--no-password")
    try:
        provider.start()
        provider.set_user("dan", email="dan@example.org", email_verified=True, name="Dan")
        # The provider sends the address in another case than the users file holds it.
        provider.set_user("sam", email="Sam.Manager@Example.org", email_verified=True)
        provider.set_user("eve", email="eve@example.org", email_verified=True)
        # Attack: an account at the provider that claims dan's address unverified, as a
        # provider that lets people type their own e-mail would send it.
        provider.set_user("mallory", email="dan@example.org", email_verified=False)
        secrets_file = write_secrets(tmp / "secrets" / "secrets.toml", provider, server.url)
        server.env["STREAMLIT_SECRETS_FILES"] = str(secrets_file)
        server.start()
        yield Site(provider, server, sample_db)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        server.stop()
        provider.stop()


def sign_in(app: harness.App, site: Site, subject: str) -> None:
    """Open the dashboard signed out, go through the provider's page, come back."""
    page = app.page
    app.open()
    expect(page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()
    page.get_by_role("button", name=BUTTON).click()
    page.wait_for_url(f"{site.provider.url}/oauth2/authorize?**")
    page.get_by_placeholder("sub").fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(re.escape(site.server.url) + r"/(\?.*)?$"))
    app.wait_idle()


def sign_out_through_provider(app: harness.App, site: Site, button) -> None:
    """Click a sign-out button; the provider asks to end its session; back to the app."""
    page = app.page
    button.click()
    page.wait_for_url(f"{site.provider.url}/oauth2/end_session?**")
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(re.compile(re.escape(site.server.url) + r"/(\?.*)?$"))
    app.wait_idle()


def offered(app: harness.App, testid: str, label: str) -> list[str]:
    """The choices a sidebar select box offers (opened, read, closed again)."""
    combo = app.sidebar_widget(testid, label).get_by_role("combobox")
    combo.scroll_into_view_if_needed()
    combo.click()
    if combo.get_attribute("aria-expanded") != "true":
        combo.press("ArrowDown")
    options = app.page.get_by_role("option")
    expect(options.first).to_be_visible()
    names = [o.inner_text().strip() for o in options.all()]
    app.page.keyboard.press("Escape")
    return [n for n in names if n != "Select all"]  # Streamlit's own multiselect option


def signed_in_as(app: harness.App) -> str:
    return app.page.get_by_test_id("stSidebar").get_by_text("Signed in as").inner_text()


def assert_nothing_shown(app: harness.App) -> None:
    page = app.page
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    expect(app.plots()).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(0)
    expect(page.get_by_text("Filters", exact=True)).to_have_count(0)
    body = page.inner_text("body")
    leaked = [name for name in NAMES.values() if name in body]
    assert leaked == [], f"service names shown to a refused visitor: {leaked}"


def one_sentence(text: str) -> bool:
    text = text.strip()
    return text.endswith(".") and not re.search(r"[.!?]\s", text[:-1]) and "\n" not in text


def cases_referred_by_year(store: Path, service_id: str) -> dict[str, int]:
    """Cases referred to a service per financial year ("2024-25"), counted by hand here."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute(
            """select case when month(referral_date) >= 4 then year(referral_date)
                           else year(referral_date) - 1 end as fy, count(*)
               from cases where service_id = $service group by fy""",
            {"service": service_id}).fetchall()
    finally:
        con.close()
    return {f"{fy}-{(fy + 1) % 100:02d}": n for fy, n in rows}


# ---------------------------------------------------------------------------- tests


def test_commissioner_signs_in_and_sees_only_their_area(site, new_app):
    app = new_app(site.server)
    sign_in(app, site, "dan")

    assert signed_in_as(app) == "Signed in as dan (Commissioner)."
    in_area = sorted(s.name for s in synth.SERVICES if s.area_code == AREA)
    assert sorted(offered(app, "stMultiSelect", "Service")) == in_area
    area_name = next(a.name for a in synth.AREAS if a.code == AREA)
    assert offered(app, "stMultiSelect", "Area") == [f"{area_name} ({AREA})"]
    pages = set(app.nav_pages().values())
    assert not pages & {"Users", "Import", "Audit log", "SQL workbench"}, pages
    # The scope is named by name and id, never "Your areas".
    expect(app.page.get_by_text(re.compile(
        rf"^Headline figures · {re.escape(f'{area_name} ({AREA})')}"))).to_be_visible()

    # The identity cookie is HttpOnly and SameSite; a refresh keeps the sign-in.
    cookies = {c["name"]: c for c in app.page.context.cookies()}
    assert set(cookies) >= IDENTITY_COOKIES
    assert all(cookies[n]["httpOnly"] and cookies[n]["sameSite"] == "Lax"
               for n in IDENTITY_COOKIES)
    app.page.reload()
    app.wait_idle()
    assert signed_in_as(app) == "Signed in as dan (Commissioner)."

    ins = [e for e in site.audit() if e["action"] == "sign_in" and e["who"] == "dan"]
    assert ins and all(e["ok"] and e["method"] == "oidc" and e["role"] == "commissioner"
                       for e in ins)


def test_service_manager_pages_show_only_their_service(site, new_app):
    app = new_app(site.server)
    sign_in(app, site, "sam")  # the provider sends Sam.Manager@Example.org

    assert signed_in_as(app) == "Signed in as sam (Service manager)."
    assert offered(app, "stMultiSelect", "Service") == [NAMES[SERVICE]]
    year = app.sidebar_widget("stSelectbox", harness.FY_LABEL).get_by_role(
        "combobox").input_value()
    expected = cases_referred_by_year(site.store, SERVICE)[year]
    expect(app.page.get_by_text(re.compile(
        rf"^Headline figures · {re.escape(f'{NAMES[SERVICE]} ({SERVICE})')}"))).to_be_visible()
    shown = app.metrics()["Cases referred"]
    assert int(shown.replace(",", "")) == expected, (shown, expected, year)

    others = [name for sid, name in NAMES.items() if sid != SERVICE]
    for title in ("Home", "Compare services", "Marac"):
        app.goto_page(title)
        body = app.page.inner_text("body")
        assert [n for n in others if n in body] == [], f"{title} names other services"


def test_sign_out_ends_the_session_and_a_refresh_stays_out(site, new_app):
    app = new_app(site.server)
    sign_in(app, site, "dan")
    assert signed_in_as(app) == "Signed in as dan (Commissioner)."

    button = app.page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out")
    sign_out_through_provider(app, site, button)
    expect(app.page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()
    assert not IDENTITY_COOKIES & {c["name"] for c in app.page.context.cookies()}

    app.page.reload()
    app.wait_idle()
    expect(app.page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()
    expect(app.page.get_by_text("Signed in as")).to_have_count(0)
    assert_nothing_shown(app)
    assert any(e["action"] == "sign_out" and e["who"] == "dan" for e in site.audit())


def test_an_address_with_no_user_is_refused_in_one_sentence(site, new_app):
    app = new_app(site.server)
    before = len(site.audit())
    sign_in(app, site, "eve")

    errors = app.errors()
    assert len(errors) == 1, errors
    assert "eve@example.org" in errors[0] and one_sentence(errors[0]), errors[0]
    assert_nothing_shown(app)
    refused = [e for e in site.audit()[before:] if e["action"] == "sign_in"]
    assert refused and all(not e["ok"] and e["method"] == "oidc"
                           and e["who"] == "eve@example.org" for e in refused), refused

    # The way out of the refusal signs out of the provider too.
    sign_out_through_provider(app, site, app.page.get_by_role("button", name="Sign out"))
    expect(app.page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()


def test_an_unverified_address_cannot_take_a_users_place(site, new_app):
    """mallory's provider account claims dan's address but does not vouch for it."""
    app = new_app(site.server)
    before = len(site.audit())
    sign_in(app, site, "mallory")

    errors = app.errors()
    assert len(errors) == 1 and one_sentence(errors[0]), errors
    assert "not verified" in errors[0]
    expect(app.page.get_by_text("Signed in as")).to_have_count(0)
    assert_nothing_shown(app)
    events = [e for e in site.audit()[before:] if e["action"] == "sign_in"]
    assert events and not any(e["ok"] for e in events), events


def test_a_forged_identity_cookie_signs_nobody_in(site, new_app):
    """Streamlit signs its identity cookie with cookie_secret; one made up is ignored."""
    app = new_app(site.server)
    forged = json.dumps({"email": "dan@example.org", "email_verified": True,
                         "is_logged_in": True})
    app.page.context.add_cookies([{"name": "_streamlit_user", "value": forged,
                                   "url": site.server.url}])
    app.open()
    expect(app.page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()
    expect(app.page.get_by_text("Signed in as")).to_have_count(0)
    assert_nothing_shown(app)


def test_an_incomplete_auth_section_is_named_in_a_sentence(sample_db, tmp_path, start_server,
                                                          new_app):
    """An [auth] section without its client secret: no traceback, no dead button."""
    users = tmp_path / "users.yaml"
    _add_user({**os.environ, "SI_USERS_FILE": str(users), "SI_DB_PATH": str(sample_db),
               "SI_AUDIT_LOG": str(tmp_path / "audit.log")},
              "dan", "--role", "commissioner", "--areas", AREA, "--email", "dan@example.org",
              "--no-password")
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('[auth]\nredirect_uri = "http://127.0.0.1:1/oauth2callback"\n'
                            'cookie_secret = "x"\nclient_id = "service-insights"\n'
                            'server_metadata_url = "http://127.0.0.1:1/.well-known/x"\n')
    srv = start_server(sample_db, SI_USERS_FILE=str(users),
                       STREAMLIT_SECRETS_FILES=str(secrets_file))
    app = new_app(srv).open()

    expect(app.page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible()
    errors = app.errors()
    assert len(errors) == 1 and one_sentence(errors[0]) and "client_secret" in errors[0], errors
    expect(app.page.get_by_role("button", name=BUTTON)).to_have_count(0)
    expect(app.page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
