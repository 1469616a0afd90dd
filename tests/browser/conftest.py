"""Browser fixtures: one dashboard server on the session sample, one Chromium, a fresh tab
per test (server and browser live as long as this folder's tests). Every test here is
marked `browser` (deselect with `-m "not browser"`).

A test gets `app` (a harness.App on the home page's URL, not yet opened) and can start
its own server with `start_server(db_path, **env)` for a different store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.browser import harness

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# Package scope, not session: Playwright's sync API allows one instance per thread, so the
# browser is closed before any other test in the run starts its own.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=30_000)
    for old in harness.OUTPUT.glob("failed-*.png"):  # failures are of this run only
        old.unlink()
    with sync_playwright() as pw:
        try:
            browser = harness.launch_browser(pw)
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def server(sample_db, browser) -> Iterator[harness.Server]:
    """The dashboard on the session's sample store (tests/conftest.py: sample_db)."""
    srv = harness.Server(sample_db, harness.OUTPUT / "streamlit.log")
    try:
        srv.start()
        harness.warm_up(browser, srv)
        yield srv
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:  # whatever failed, never leave a server running
        srv.stop()


@pytest.fixture
def start_server(tmp_path) -> Iterator:
    """Start another dashboard (another store or settings); stopped after the test."""
    started: list[harness.Server] = []

    def start(db_path: Path, **env: str) -> harness.Server:
        srv = harness.Server(db_path, tmp_path / f"streamlit-{len(started)}.log", env)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def new_app(browser, request) -> Iterator:
    """Open a fresh tab on any server; on failure the tab is saved as a screenshot."""
    contexts = []

    def make(srv: harness.Server) -> harness.App:
        ctx = browser.new_context(viewport=harness.VIEWPORT)
        ctx.set_default_timeout(30_000)
        contexts.append(ctx)
        return harness.App(ctx.new_page(), srv.url)

    yield make
    failed = getattr(request.node, "report_call", None)
    for i, ctx in enumerate(contexts):
        if failed is not None and failed.failed and ctx.pages:
            harness.OUTPUT.mkdir(parents=True, exist_ok=True)
            ctx.pages[0].screenshot(
                path=harness.OUTPUT / f"failed-{request.node.name}-{i}.png", full_page=True)
        ctx.close()


@pytest.fixture
def app(server, new_app) -> harness.App:
    """A fresh tab on the session's dashboard (call .open() to load it)."""
    return new_app(server)


@pytest.fixture(scope="module")
def tour(browser, server) -> Iterator[harness.App]:
    """One tab shared by a module's tests, for walking page to page without paying for a
    new session each time; each test still gets there by the sidebar."""
    ctx = browser.new_context(viewport=harness.VIEWPORT)
    ctx.set_default_timeout(30_000)
    yield harness.App(ctx.new_page(), server.url)
    ctx.close()
