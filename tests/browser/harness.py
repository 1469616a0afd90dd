"""Driving the real dashboard in Chromium: a Streamlit server, and a page that knows when
Streamlit has finished a run, picks sidebar filters, reads figures and saves screenshots.

Waiting for Streamlit's `data-test-script-state="notRunning"` alone races: right after a
click the state is still "notRunning" from the run before, so figures would be read from
the old run; and a fast run can go from running to not running within one React commit,
so counting "running" states misses runs. An init script therefore counts the runs the
server reports finished (its scriptFinished message); `App.rerun()` waits for that count
to go up and the page to settle. No sleeps.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import Browser, Locator, Page, Playwright, expect
from playwright.sync_api import Error as PlaywrightError

from service_insights.store import synth

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "browser"
CHROMIUM = Path(os.environ.get("SI_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
FY_LABEL = "Financial year (April to March)"

_WATCH_RUNS = """
(() => {
  // Count finished script runs from Streamlit's own messages: a ForwardMsg whose field 6
  // (scriptFinished) is set, except 2 (FINISHED_EARLY_FOR_RERUN: another run follows).
  window.__siRuns = 0;
  window.__siStates = [];
  window.__siQuietSince = performance.now();
  const finished = bytes => {
    let i = 0;
    const varint = () => {
      let value = 0, scale = 1, b;
      do { b = bytes[i++]; value += (b & 127) * scale; scale *= 128; } while (b & 128);
      return value;
    };
    while (i < bytes.length) {
      const tag = varint(), field = tag >> 3, wire = tag & 7;
      if (wire === 0) { const v = varint(); if (field === 6) return v !== 2; }
      // Read the length before adding it: `i += varint()` would add it to the old i.
      else if (wire === 2) { const length = varint(); i += length; }
      else return false;
    }
    return false;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', ev => {
        if (ev.data instanceof ArrayBuffer && finished(new Uint8Array(ev.data))) {
          window.__siRuns++;
        }
      });
    }
  };
  new MutationObserver(records => {
    for (const r of records) {
      if (r.attributeName === 'data-test-script-state') {
        window.__siStates.push([Math.round(performance.now()),
                                r.target.getAttribute('data-test-script-state')]);
      }
    }
    window.__siQuietSince = performance.now();
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
})();
"""
# Finished: a run later than `n` has ended, the page shows it as not running, Streamlit has
# drawn what it sent (its last elements reach the page after the run ends, so the page
# must also have been still for a moment), and nothing is stale or a loading skeleton.
_IDLE_AFTER = """([n, quietMs]) => window.__siRuns > n
    && document.querySelector('[data-testid=stApp]')
           ?.getAttribute('data-test-script-state') === 'notRunning'
    && performance.now() - window.__siQuietSince >= quietMs
    && !document.querySelector('[data-stale=true], [data-testid=stSkeleton]')"""
QUIET_MS = 150
_SETTLED = """quietMs => document.querySelector('[data-testid=stApp]')
           ?.getAttribute('data-test-script-state') === 'notRunning'
    && performance.now() - window.__siQuietSince >= quietMs
    && !document.querySelector('[data-stale=true], [data-testid=stSkeleton]')"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_command(port: int) -> list[str]:
    """How the tests start the dashboard: the way `service-insights run` does (serve.py,
    the dashboard with its sign-in routes), on this machine only."""
    return [sys.executable, "-m", "service_insights.cli", "run", "--port", str(port),
            "--address", "127.0.0.1", "--headless"]


class Background:
    """A server process in its own process group: started, polled until its health URL
    answers, and stopped as a whole (SIGTERM, then SIGKILL). The dashboard and the test
    OIDC provider are both run this way."""

    name = "the server"

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def _spawn(self, command: list[str], health_url: str, timeout_s: float, *,
               cwd: Path | None = None, env: Mapping[str, str] | None = None):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            try:
                with urllib.request.urlopen(health_url, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout_s:g} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the process's pid
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def __exit__(self, *exc) -> None:
        self.stop()


class Server(Background):
    """`service-insights run` in its own process group, stopped as a whole."""

    name = "the dashboard"

    def __init__(self, db_path: Path, log_path: Path, env: Mapping[str, str] | None = None):
        super().__init__(log_path)
        self.db_path = Path(db_path)
        # No developer's users file or audit log: synthetic data without users is the
        # demo mode, which needs no sign-in.
        self.env = {**os.environ, "SI_DB_PATH": str(self.db_path),
                    "SI_USERS_FILE": str(self.log_path.parent / "no-users.yaml"),
                    "SI_AUDIT_LOG": str(self.log_path.with_suffix(".audit.log")), **(env or {})}

    def start(self, timeout_s: float = 60) -> Server:
        return self._spawn(run_command(self.port), f"{self.url}/_stcore/health", timeout_s,
                           cwd=ROOT, env=self.env)

    def __enter__(self) -> Server:
        return self.start()


def warm_up(browser: Browser, server: Server) -> None:
    """Spend the server's first session on a throwaway choice.

    Streamlit 1.67 with st.navigation drops the first widget change made in the first
    browser session after the server starts (the widget snaps back to its default; later
    changes and later sessions are fine). test_first_choice_after_start_is_kept records
    it; warming up keeps every other test independent of which runs first.
    """
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        app = App(ctx.new_page(), server.url).open()
        box = app.sidebar_widget("stMultiSelect", "Service")
        first = synth.SERVICES[0].name
        app.choose_option(box, first)
    finally:
        ctx.close()


def launch_browser(pw: Playwright) -> Browser:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"No Chromium at {CHROMIUM}. Install Debian's: apt-get install -y chromium "
            "(or set SI_CHROMIUM). Playwright is never allowed to download its own.")
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)


class App:
    """One browser tab on the dashboard, with the moves a test needs."""

    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.base_url = base_url
        page.add_init_script(_WATCH_RUNS)

    # ------------------------------------------------------------ waiting for runs

    def states(self) -> list:
        """[(ms since load, script state)] as the browser saw them, for failure messages."""
        return self.page.evaluate("window.__siStates ?? []")

    def runs(self) -> int:
        return self.page.evaluate("window.__siRuns ?? 0")

    def wait_idle(self, after: int | None = None, timeout_ms: float = 30_000) -> None:
        """Until a run later than `after` (default: any run) has finished."""
        n = 0 if after is None else after
        try:
            self.page.wait_for_function(_IDLE_AFTER, arg=[n, QUIET_MS], timeout=timeout_ms,
                                        polling=50)
        except PlaywrightError as exc:
            raise AssertionError(f"Streamlit did not finish a run after run {n}; script "
                                 f"states seen (ms, state): {self.states()}") from exc

    @contextmanager
    def rerun(self, timeout_ms: float = 30_000) -> Iterator[None]:
        """Wrap an action that makes Streamlit rerun; returns once that run is done."""
        before = self.runs()
        yield
        self.wait_idle(after=before, timeout_ms=timeout_ms)

    # ------------------------------------------------------------ moving around

    def open(self, path: str = "/", timeout_ms: float = 60_000) -> App:
        self.page.goto(self.base_url + path)
        self.wait_idle(timeout_ms=timeout_ms)
        return self

    def expand_nav(self) -> None:
        """Show every page link: Streamlit folds a long nav behind "View N more"."""
        button = self.page.get_by_test_id("stSidebarNavViewButton")
        expect(self.page.get_by_test_id("stSidebarNavLink").first).to_be_visible()
        if button.count() and button.inner_text().strip().endswith("more"):
            button.click()
            expect(button).to_have_text("View less")

    def nav_pages(self) -> dict[str, str]:
        """Sidebar nav: page file stem (from the link's URL) to the title shown.

        The default page is served at "/", so its stem is "home".
        """
        self.expand_nav()
        links = self.page.get_by_test_id("stSidebarNavLink")
        out = {}
        for link in links.all():
            stem = urlparse(link.get_attribute("href")).path.strip("/") or "home"
            out[stem] = link.inner_text().strip()
        return out

    def goto_page(self, title: str) -> None:
        self.expand_nav()
        link = self.page.get_by_test_id("stSidebarNavLink").filter(
            has=self.page.get_by_text(title, exact=True))
        path = urlparse(link.get_attribute("href")).path.rstrip("/")
        link.click()
        # A page change is seen by its address; then the run must settle. (The run
        # counter can miss a page's last message, so it is not used here.)
        self.page.wait_for_url(re.compile(re.escape(path) + r"/?(\?.*)?$"))
        self.page.wait_for_function(_SETTLED, arg=QUIET_MS * 2, timeout=30_000, polling=50)
        expect(self.page.get_by_test_id("stHeading").first).to_be_visible()

    # ------------------------------------------------------------ the sidebar filters

    def sidebar_widget(self, testid: str, label: str) -> Locator:
        return self.page.get_by_test_id("stSidebar").get_by_test_id(testid).filter(
            has=self.page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))

    def choose_option(self, widget: Locator, option: str) -> None:
        """Streamlit's select boxes are comboboxes: open the list, click the option.

        The list is a popover outside the widget, so the option is found on the page. It
        closes when the sidebar scrolls, so the widget is scrolled into view first, and
        the keyboard opens it if the click did not.
        """
        combo = widget.get_by_role("combobox")
        with self.rerun():
            combo.scroll_into_view_if_needed()
            combo.click()
            if combo.get_attribute("aria-expanded") != "true":
                combo.press("ArrowDown")
            self.page.get_by_role("option", name=option, exact=True).click()

    def choose_year(self, label: str) -> None:
        box = self.sidebar_widget("stSelectbox", FY_LABEL)
        if box.get_by_role("combobox").input_value() == label:
            return
        self.choose_option(box, label)
        expect(box.get_by_role("combobox")).to_have_value(label)

    def choose_service(self, name: str) -> None:
        """Add a service to the Service multiselect (the list stays open; close it)."""
        box = self.sidebar_widget("stMultiSelect", "Service")
        self.choose_option(box, name)
        self.page.keyboard.press("Escape")
        expect(box.get_by_test_id("stMultiSelectTagsContainer")).to_contain_text(name)

    # ------------------------------------------------------------ files in and out

    def download(self, button: Locator, folder: Path | None = None) -> Path:
        """Click a download button; save the file under the name the app gave it."""
        with self.page.expect_download(timeout=60_000) as info:
            button.click()
        download = info.value
        path = (folder or OUTPUT / "downloads") / download.suggested_filename
        path.parent.mkdir(parents=True, exist_ok=True)
        download.save_as(path)
        return path

    def chart_block(self, title: str) -> Locator:
        """The block holding one chart (title, figure, caption, download menu)."""
        # The title exactly: a chart's plotly title, or a KPI block's bold heading.
        heading = self.page.locator(".gtitle, [data-testid=stMarkdownContainer] strong").filter(
            has_text=re.compile(f"^{re.escape(title)}$"))
        return self.page.get_by_test_id("stMain").get_by_test_id("stVerticalBlock").filter(
            has=heading).filter(has=self.page.get_by_test_id("stPopover")).last

    def chart_download(self, title: str, fmt: str, folder: Path | None = None) -> Path:
        """Open the Download menu under the chart titled `title` and fetch one format."""
        self.chart_block(title).get_by_test_id("stPopover").get_by_role("button").click()
        body = self.page.get_by_test_id("stPopoverBody")
        return self.download(body.get_by_role("button", name=fmt.upper(), exact=True), folder)

    def upload(self, path: Path) -> None:
        """Put a file in the page's file uploader (the app reruns with it)."""
        with self.rerun():
            self.page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(path)

    # ------------------------------------------------------------ reading the page

    def metrics(self) -> dict[str, str]:
        out = {}
        for m in self.page.get_by_test_id("stMetric").all():
            label = m.get_by_test_id("stMetricLabel").inner_text().strip()
            out[label] = m.get_by_test_id("stMetricValue").inner_text().strip()
        return out

    def errors(self) -> list[str]:
        """Exceptions and st.error boxes on the page (warnings and notes are not errors)."""
        boxes = self.page.locator(
            "[data-testid=stException], [data-testid=stAlertContentError]")
        return [b.inner_text() for b in boxes.all()]

    def plots(self) -> Locator:
        return self.page.locator("[data-testid=stMain] .js-plotly-plot")

    def screenshot(self, name: str) -> Path:
        """The whole page, not just the window: Streamlit scrolls inside its main block,
        so the window is made as tall as that block for the shot."""
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        page = self.page
        size = page.viewport_size or VIEWPORT
        height = page.evaluate(
            "document.querySelector('[data-testid=stMain]')?.scrollHeight ?? 0")
        page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
        try:
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                          "requestAnimationFrame(r)))")
            page.screenshot(path=path, full_page=True)
        finally:
            page.set_viewport_size(size)
        return path
