"""Downloads in Chromium: nothing on screen offers a download of its own (issue 12, item 5),
and a signed-in service manager's files name their service (issue 13, item 5).

Streamlit's interactive table has a toolbar whose "Download as CSV" writes the figures
with no stamp, no formula neutralising and no audit entry; Plotly's mode bar has
"Download plot as a png", an image with no stamp. The first test shows, on a bare
Streamlit app, that the checks here do find such a button when it is there.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from service_insights import settings
from service_insights.access import accounts
from tests.browser import harness

PASSWORD = "a password that is long enough"
S01 = "Ashcombe Idva Service (S01)"
TABLE_QUERY = """/*---
title: Cases by referral source (table)
description: Cases referred in the period by who referred them.
page: overview
order: 99
chart: table
counts: [cases]
labels:
  referral_source: Referral source
  cases: Cases
benchmark: false
params: [period_start, period_end]
---*/
select referral_source, count(*) as cases
from cases
where referral_date between $period_start and $period_end
group by all
order by 1
"""


@pytest.fixture
def signed_in_server(tmp_path, start_server, sample_db):
    """The sample with users (so sign-in is needed) and one chart of type table."""
    users = tmp_path / "users.yaml"
    accounts.save_user(accounts.User("root", "admin"), PASSWORD, users)
    accounts.save_user(accounts.User("sam", "service_manager", ("S01",)), PASSWORD, users)
    queries = tmp_path / "queries"
    shutil.copytree(settings.ROOT / "queries", queries)
    (queries / "overview" / "zz_referral_source_table.sql").write_text(TABLE_QUERY)
    audit_log = tmp_path / "audit.log"

    def start(**env: str) -> tuple[harness.Server, Path]:
        srv = start_server(sample_db, SI_USERS_FILE=str(users), SI_QUERIES_DIR=str(queries),
                           SI_AUDIT_LOG=str(audit_log), **env)
        return srv, audit_log

    return start


def sign_in(app: harness.App, user: str) -> None:
    page = app.page
    page.goto(app.base_url)  # the sign-in form stops its run early: wait for the form
    expect(page.get_by_text("Sign in to Service Insights")).to_be_visible(timeout=60_000)
    page.get_by_role("textbox", name="Username").fill(user)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Filters", timeout=60_000)
    app.page.wait_for_function(harness._SETTLED, arg=harness.QUIET_MS * 2, timeout=60_000)


def table_toolbars(app: harness.App, at_least: int = 1) -> list[list[str]]:
    """Hover every interactive table on the page and list its toolbar's buttons."""
    page = app.page
    frames = page.get_by_test_id("stMain").get_by_test_id("stDataFrame")
    expect(frames.first).to_be_visible(timeout=30_000)
    assert frames.count() >= at_least
    seen = []
    for frame in frames.all():
        frame.scroll_into_view_if_needed()
        frame.hover()
        toolbar = page.get_by_test_id("stElementToolbar").filter(
            has=page.get_by_role("button", name="Fullscreen")).locator("visible=true")
        expect(toolbar.first).to_be_visible()  # the hover worked: the toolbar is up
        seen.append([b.get_attribute("aria-label") or "" for b in
                     toolbar.first.get_by_test_id("stBaseButton-elementToolbar").all()])
    return seen


def no_download_anywhere(app: harness.App) -> None:
    page = app.page
    assert page.get_by_role("button", name="Download as CSV").count() == 0
    assert page.locator('.modebar-btn[data-title="Download plot as a png"]').count() == 0


def test_the_check_finds_streamlits_download_when_it_is_there(tmp_path, browser):
    """A bare Streamlit app with default settings: the toolbar offers "Download as CSV"."""
    (tmp_path / "bare.py").write_text(
        "import polars as pl\nimport streamlit as st\n"
        "st.dataframe(pl.DataFrame({'area': ['A', 'B'], 'cases': [12, 30]}))\n")
    port = harness.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "bare.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env={k: v for k, v in os.environ.items()
                                     if not k.startswith("STREAMLIT_")})
    ctx = browser.new_context(viewport=harness.VIEWPORT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        app = harness.App(ctx.new_page(), url)
        app.page.goto(url)
        assert ["Download as CSV" in labels for labels in table_toolbars(app)] == [True]
    finally:
        ctx.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def test_no_table_or_figure_offers_a_download_of_its_own(signed_in_server, new_app):
    srv, _ = signed_in_server()
    app = new_app(srv)
    sign_in(app, "root")
    for title, tables in (("Query health", 1), ("Audit log", 1), ("Overview", 1)):
        app.goto_page(title)
        assert app.errors() == []
        for labels in table_toolbars(app, at_least=tables):
            assert "Download as CSV" not in labels, f"{title}: {labels}"
            assert "Search" in labels  # the rest of the toolbar is still there
        no_download_anywhere(app)
    # Overview: the figures' mode bars are there, without Plotly's image download.
    plot = app.plots().first
    plot.hover()
    expect(plot.locator(".modebar-btn").first).to_be_attached()
    assert plot.locator('.modebar-btn[data-title="Download plot as a png"]').count() == 0
    expect(app.page.get_by_text("Cases by referral source (table)")).to_be_visible()


def test_with_the_option_turned_off_tables_still_have_no_download(signed_in_server,
                                                                   new_app):
    """An operator's STREAMLIT_CLIENT_DISABLE_DATA_EXPORT=false (it wins over the
    dashboard's config file) gets static tables, then the option back: never a download."""
    srv, _ = signed_in_server(STREAMLIT_CLIENT_DISABLE_DATA_EXPORT="false")
    app = new_app(srv)
    sign_in(app, "root")
    app.goto_page("Query health")
    main = app.page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stTable").or_(main.get_by_test_id("stDataFrame"))
           .first).to_be_visible()
    for frame in main.get_by_test_id("stDataFrame").all():
        frame.hover()
    no_download_anywhere(app)
    app.goto_page("Audit log")
    for labels in table_toolbars(app):
        assert "Download as CSV" not in labels
    no_download_anywhere(app)


def close_menu(app: harness.App) -> None:
    """The Download menu stays open after a download; close it before the next."""
    app.page.keyboard.press("Escape")
    expect(app.page.get_by_test_id("stPopoverBody")).to_have_count(0)


def test_a_service_managers_files_name_the_service(signed_in_server, new_app, tmp_path):
    srv, audit_log = signed_in_server()
    app = new_app(srv)
    sign_in(app, "sam")
    app.goto_page("Equality and access")
    csv_file = app.chart_download("Gender of clients", "csv", tmp_path)
    assert "ashcombe-idva-service-s01" in csv_file.name
    stamp = dict(line.split(",", 1) for line in
                 csv_file.read_text(encoding="utf-8-sig").split("\r\n\r\n")[0].splitlines()
                 if "," in line)
    assert stamp["Scope"] == S01
    close_menu(app)
    svg = app.chart_download("Gender of clients", "svg", tmp_path).read_text()
    assert S01 in svg and "Your service" not in svg
    close_menu(app)
    pdf = app.chart_download("Gender of clients", "pdf", tmp_path)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert f"{S01} · financial year" in text and "Your service" not in text
    exports = [json.loads(line) for line in audit_log.read_text().splitlines()
               if json.loads(line)["action"] == "export"]
    assert [(e["who"], e["format"], e["scope"]) for e in exports] == [
        ("sam", "csv", S01), ("sam", "svg", S01), ("sam", "pdf", S01)]
