"""Issue 16's page defects and addresses, checked in Chromium, with a screenshot of each
fixed page in test-output/browser/ (fixed-*.png): typed addresses and reloads open the
page asked for after sign-in; a page file's own path is not a blank page; KPI cards show
their whole comparison; grouped charts draw the marks their captions describe; every
funnel point outside the limits is named, inside the plot, no two names overlapping; the
findings teaser is a list; no Deploy button or developer menu in the header."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from service_insights.access import accounts
from service_insights.store import synth
from tests.browser.harness import App

SERVICE = next(s for s in synth.SERVICES if s.service_id == "S03")
PASSWORD = "the administrator's password"


def heading(app: App) -> str:
    return app.page.get_by_test_id("stMain").get_by_test_id("stHeading").first.inner_text()


@pytest.fixture
def admin_server(sample_db, start_server, tmp_path):
    users = tmp_path / "users.yaml"
    accounts.save_user(accounts.User("root", "admin"), PASSWORD, users)
    return start_server(sample_db, SI_USERS_FILE=str(users))


def test_typed_addresses_open_their_page_after_sign_in(admin_server, new_app):
    app = new_app(admin_server).open("/users")
    expect(app.page.get_by_text("Sign in to Service Insights")).to_be_visible()
    page = app.page
    page.get_by_role("textbox", name="Username").fill("root")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()
    app.wait_idle()
    assert heading(app) == "Users" and re.search(r"/users(\?|$)", page.url)
    page.reload()
    app.wait_idle()
    assert heading(app) == "Users", "a reload stays on the page"
    for typed, title in (("/audit_log", "Audit log"), ("/overview", "Overview"),
                         ("/app_pages/users.py", "Users"), ("/app_pages/marac.py", "Marac")):
        app.open(typed)
        assert heading(app) == title, typed
        assert "/app_pages/" not in page.url
    app.open("/users")
    app.screenshot("fixed-typed-address-users")


def test_the_header_has_no_deploy_button_or_developer_menu(app):
    app.open()
    expect(app.page.get_by_test_id("stAppDeployButton")).to_have_count(0)
    menu = app.page.get_by_test_id("stMainMenu")
    if menu.count():
        menu.click()
        items = app.page.get_by_test_id("stMainMenuList").inner_text()
        app.page.keyboard.press("Escape")
        assert "Clear cache" not in items and "Rerun" not in items, items
    app.screenshot("fixed-header")


def test_kpi_cards_show_their_whole_comparison_and_the_teaser_is_a_list(app):
    app.open()
    app.choose_service(SERVICE.name)
    captions = app.page.get_by_test_id("stMain").get_by_test_id("stCaptionContainer").filter(
        has_text=re.compile(r"^vs (all services|other .+ services) \("))
    expect(captions).to_have_count(4)
    for caption in captions.all():
        text = caption.inner_text()
        assert re.search(r"\(\d+\.\d%\) · (95% CI \d+\.\d–\d+\.\d%|too few to test)$", text), text
        whole = caption.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && "
                                 "e.scrollHeight <= e.clientHeight + 1")
        assert whole, f"cut off: {text}"
    teaser = app.page.get_by_test_id("stAlertContentInfo").filter(
        has_text="on where to adapt")
    if teaser.count():
        text = teaser.inner_text()
        assert "; " not in text and not re.search(r" and \d+ more\.$", text)
    app.screenshot("fixed-home-kpis")


def test_grouped_charts_draw_the_marks_their_captions_name(app):
    app.open()
    app.choose_service(SERVICE.name)
    app.goto_page("Risk and outcomes")
    block = app.chart_block("Outcomes at exit by risk level")
    caption = block.get_by_test_id("stCaptionContainer").first.inner_text()
    svg = block.locator(".js-plotly-plot").evaluate(
        "p => [...p.querySelectorAll('text')].map(t => t.textContent).join(' ')")
    # Either case: a caption may open with "Significantly lower for ...".
    says = "significantly higher" in caption.lower() or "significantly lower" in caption.lower()
    drawn = "▲ higher" in svg or "▼ lower" in svg
    assert says == drawn, (caption, says, drawn)
    app.screenshot("fixed-risk-grouped")


def test_funnel_names_every_service_outside_the_limits_unclipped(app):
    app.open()
    app.goto_page("Compare services")
    plot = app.plots().first
    plot.scroll_into_view_if_needed()
    boxes = plot.evaluate("""p => {
        const area = p.querySelector('.cartesianlayer .bg, .nsewdrag').getBoundingClientRect();
        return [...p.querySelectorAll('.annotation-text')].map(t => {
            const b = t.getBoundingClientRect();
            return {text: t.textContent, l: b.left, r: b.right, t: b.top, b: b.bottom,
                    al: area.left, ar: area.right, at: area.top, ab: area.bottom};
        });
    }""")
    names = [b for b in boxes if not b["text"].startswith("Source:")]
    caption = app.page.get_by_test_id("stMain").get_by_test_id("stCaptionContainer").first
    listed = re.search(r"Outside the limits \((.*)\)\.", caption.inner_text())
    if listed:
        expected = {n.strip() for part in listed.group(1).split(";")
                    for n in part.split(":", 1)[1].split(",")}
        assert {b["text"] for b in names} == expected
    for i, a in enumerate(names):
        assert a["l"] >= a["al"] - 1 and a["r"] <= a["ar"] + 1, f"clipped: {a['text']}"
        for b in names[i + 1:]:
            overlap = (a["l"] < b["r"] - 1 and b["l"] < a["r"] - 1
                       and a["t"] < b["b"] - 1 and b["t"] < a["b"] - 1)
            assert not overlap, (a["text"], b["text"])
    app.screenshot("fixed-compare-funnel")
