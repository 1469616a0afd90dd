"""The Import page in a real browser: upload an export, see it imported, and see the
dashboard pick up the new store (the sidebar's years come from the imported cases)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from service_insights import settings
from service_insights.access import accounts
from service_insights.catalogue import periods
from service_insights.ingest import fixture
from service_insights.store import registry
from tests.browser.harness import LAUNCH_ARGS, run_command

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    store = tmp_path / "insights.duckdb"
    registry.start_real_store(
        store, [registry.Area("E06000001", "Ashcombe", "North East", 50_000)],
        [registry.Service("S01", "Ashcombe Idva", "idva", "E06000001")])
    # Real records need sign-in: an administrator (importing is theirs).
    users = tmp_path / "users.yaml"
    accounts.save_user(accounts.User("admin", "admin"), ADMIN_PASSWORD, users)
    port = _free_port()
    env = {**os.environ, "SI_DB_PATH": str(store), "SI_USERS_FILE": str(users),
           "SI_AUDIT_LOG": str(tmp_path / "audit.log"),
           "SI_PSEUDONYM_KEY": "browser-test-key-0123456789abcdef"}
    env.pop("SI_PSEUDONYM_KEY_FILE", None)
    proc = subprocess.Popen(run_command(port), cwd=settings.ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    try:
        yield url, store
    finally:
        proc.terminate()
        proc.wait(timeout=20)


ADMIN_PASSWORD = "an administrator's password"


def sign_in(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text("Sign in to Service Insights")).to_be_visible(timeout=60_000)
    page.get_by_role("textbox", name="Username").fill("admin")
    page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_upload_imports_and_the_dashboard_shows_the_new_data(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, store = server
    export = fixture.write_export(tmp_path / "our export.csv", 2_000, seed=11)
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chrome"), executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            sign_in(page)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar).to_contain_text("Filters", timeout=60_000)
            year = page.get_by_label("Financial year (April to March)")
            this_year = periods.fy_label(periods.fy_start_year(dt.date.today()))
            expect(year).to_have_value(this_year)  # no cases yet: only this year
            page.get_by_role("link", name="Import", exact=True).click()
            expect(page.get_by_role("heading", name="Import your records")).to_be_visible(
                timeout=60_000)
            page.locator("input[type=file]").set_input_files(str(export))
            page.get_by_role("button", name="Check and import").click()
            expect(page.get_by_text("2,000 cases imported for S01")).to_be_visible(
                timeout=120_000)
            expect(page.get_by_text("Dropped as identifying (never stored): Client Name, "
                                    "Date of Birth")).to_be_visible()
            # The sample's last year: the sidebar now reads the swapped-in store.
            expect(year).to_have_value("2024-25", timeout=30_000)
        finally:
            browser.close()
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("select count(*) from store.cases").fetchone()[0] == 2_000
        assert con.execute("select file_name from store.import_log").fetchone()[0] == (
            "our export.csv")
    finally:
        con.close()
    assert not list(tmp_path.glob("*.writing-*")), "no half-written copy left behind"


def test_upload_with_a_problem_lists_it_and_writes_nothing(server, tmp_path):
    import hashlib

    import polars as pl
    from playwright.sync_api import expect, sync_playwright

    url, store = server
    frame = fixture.export_frame(400, seed=5)
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("30"))
                               .otherwise(pl.col("DASH score").cast(pl.String))
                               .alias("DASH score"))
    bad = tmp_path / "bad.csv"
    frame.write_csv(bad)
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chrome"), executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            sign_in(page)
            expect(page.get_by_test_id("stSidebar")).to_contain_text("Filters", timeout=60_000)
            page.get_by_role("link", name="Import", exact=True).click()
            page.locator("input[type=file]").set_input_files(str(bad))
            page.get_by_role("button", name="Check and import").click()
            expect(page.get_by_text("Nothing was imported: 1 problem in bad.csv "
                                    "(400 records read)")).to_be_visible(timeout=60_000)
            expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        finally:
            browser.close()
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
