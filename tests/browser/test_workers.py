"""Two dashboard processes behind Debian's nginx (`service-insights run --workers 2
--nginx-conf PATH`, nginx started here as a non-daemon process with its own prefix):
a browser session stays on one process for everything it does (page, WebSocket, a
download), and an import made through one process is seen through the other.

Which process served what is read from the processes' own run log (SI_RUN_LOG: one line
per script run with its pid and session), not from anything the proxy says. Sessions are
placed on both processes by design, not by chance: before the browsers start, the test
asks nginx which worker each of a few route-cookie values goes to (its access log names
the upstream), and gives a browser context the value that reaches the worker it wants.
"""

from __future__ import annotations

import csv
import io
import os
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import expect

from service_insights import serving
from service_insights.access import accounts
from service_insights.ingest import fixture
from service_insights.store import registry
from service_insights.ui import run_timing
from tests.browser import harness

NGINX = Path(serving.NGINX)
pytestmark = pytest.mark.skipif(not NGINX.exists(),
                                reason="needs Debian's nginx: apt-get install -y nginx")
ADMIN_PASSWORD = "an administrator's password"


class Workers(harness.Background):
    """`service-insights run --workers 2 --nginx-conf PATH`: the workers only."""

    name = "the workers"

    def __init__(self, work: Path, env: dict[str, str]):
        super().__init__(work / "workers.log")
        self.conf = work / "nginx.conf"
        self.env = env

    def start(self) -> Workers:
        cmd = [*harness.run_command(self.port)[:-3], "--workers", "2",
               "--nginx-conf", str(self.conf)]
        # Healthy when the second worker answers (they are started one after another).
        return self._spawn(cmd, f"http://127.0.0.1:{self.port + 2}/_stcore/health", 120,
                           cwd=harness.ROOT, env=self.env)


class Nginx(harness.Background):
    name = "nginx"

    def start(self, conf: Path, port: int) -> Nginx:
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        prefix = conf.parent / (conf.stem + ".d")
        return self._spawn([str(NGINX), "-p", str(prefix), "-c", str(conf),
                            "-g", "daemon off;"], f"{self.url}/_stcore/health", 30)


def _serve(tmp_path: Path, db_path: Path, users: Path) -> tuple[Workers, Nginx, Path]:
    run_log = tmp_path / "runs.jsonl"
    env = {**os.environ, "SI_DB_PATH": str(db_path), "SI_USERS_FILE": str(users),
           "SI_AUDIT_LOG": str(tmp_path / "audit.log"), "SI_RUN_LOG": str(run_log),
           "SI_PSEUDONYM_KEY": "browser-test-key-0123456789abcdef"}
    env.pop("SI_PSEUDONYM_KEY_FILE", None)
    workers = Workers(tmp_path, env)
    # The proxy listens on the base port; the workers on base+1 and base+2.
    while True:
        base = harness.free_port()
        if all(_port_free(base + i) for i in (1, 2)):
            break
    workers.port = base
    workers.start()
    nginx = Nginx(tmp_path / "nginx.log")
    try:
        nginx.start(workers.conf, base)
    except RuntimeError:
        workers.stop()
        raise
    return workers, nginx, run_log


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _routes(workers: Workers, nginx: Nginx) -> list[str]:
    """One route-cookie value per worker, each sent by nginx to a different process.

    Asks nginx (a health request carrying the cookie) and reads the upstream it chose
    from its access log. A request passed on to a second upstream means a worker refused
    the connection: that fails here, with nginx's own error log, rather than later as
    "every session on one process"."""
    prefix = workers.conf.parent / (workers.conf.stem + ".d")
    found: dict[str, str] = {}
    access = prefix / "access.log"
    for i in range(200):
        value = f"probe-{i}"
        request = urllib.request.Request(
            f"{nginx.url}/_stcore/health?{value}",
            headers={"Cookie": f"{serving.ROUTE_COOKIE}={value}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
        # nginx logs a request after answering it: wait for this request's own line.
        deadline = time.monotonic() + 10
        while not (line := next((x for x in access.read_text().splitlines()
                                 if f"?{value} " in x), "")):
            assert time.monotonic() < deadline, "nginx logged no line for the request"
            time.sleep(0.02)
        upstream = line.rsplit("upstream=", 1)[1].strip()
        if "," in upstream:
            raise AssertionError(
                f"nginx passed a request on from a worker that refused it ({upstream}):\n"
                + (prefix / "error.log").read_text()[-2000:] + workers.log())
        found.setdefault(upstream, value)
        if len(found) == 2:
            return list(found.values())
    raise AssertionError(f"200 route values all went to {sorted(found)}")


def _routed_context(browser, nginx: Nginx, route: str | None, **options):
    """A new browser context, carrying `route` as its route cookie (None: nginx sets
    one on the first response, as for any new visitor)."""
    ctx = browser.new_context(viewport=harness.VIEWPORT, **options)
    if route is not None:
        ctx.add_cookies([{"name": serving.ROUTE_COOKIE, "value": route, "url": nginx.url}])
    return ctx


def _sessions(run_log: Path) -> dict[str, set[int]]:
    """Each session's script runs, by the pid of the process that ran them."""
    out: dict[str, set[int]] = {}
    for rec in run_timing.read(str(run_log)):
        out.setdefault(rec["session"], set()).add(rec["pid"])
    return out


def test_a_session_stays_on_one_worker_for_pages_filters_and_downloads(
        browser, sample_db, tmp_path):
    workers, nginx, run_log = _serve(tmp_path, sample_db, tmp_path / "no-users.yaml")
    try:
        # A new visitor (nginx sets the cookie), then one session placed on each worker.
        for i, route in enumerate([None, *_routes(workers, nginx)]):
            ctx = _routed_context(browser, nginx, route, accept_downloads=True)
            try:
                app = harness.App(ctx.new_page(), nginx.url).open()
                app.choose_year("2023-24")
                app.goto_page("Equality and access")
                assert app.errors() == []
                # The download is served from the process's memory: the wrong process
                # would answer 404.
                got = app.chart_download("Gender of clients", "csv", tmp_path / f"dl-{i}")
                rows = list(csv.reader(io.StringIO(got.read_text(encoding="utf-8-sig"))))
                assert len(rows) > 1  # a table, not an error page from the other worker
                cookies = {c["name"]: c["value"] for c in ctx.cookies()}
                assert cookies.get(serving.ROUTE_COOKIE), cookies
                if route is not None:
                    assert cookies[serving.ROUTE_COOKIE] == route  # nginx kept it
            finally:
                ctx.close()
        sessions = _sessions(run_log)
        assert len(sessions) >= 3, sessions
        # Every request of a session reached one process; the two placed sessions, two.
        assert all(len(pids) == 1 for pids in sessions.values()), sessions
        assert len(set().union(*sessions.values())) == 2, sessions
        assert workers.proc.poll() is None
    finally:
        nginx.stop()
        workers.stop()


def _signed_in(browser, nginx: Nginx, route: str):
    ctx = _routed_context(browser, nginx, route)
    page = ctx.new_page()
    page.goto(nginx.url)
    expect(page.get_by_text("Sign in to Service Insights")).to_be_visible(timeout=60_000)
    page.get_by_role("textbox", name="Username").fill("admin")
    page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Filters", timeout=60_000)
    return ctx, page


def _wait_for_pids(run_log: Path, n: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sessions = _sessions(run_log)
        if len(set().union(*sessions.values())) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"sessions ran on fewer than {n} processes: {sessions}")


def test_an_import_through_one_worker_is_seen_through_the_other(browser, tmp_path):
    store = tmp_path / "insights.duckdb"
    registry.start_real_store(
        store, [registry.Area("E06000001", "Ashcombe", "North East", 50_000)],
        [registry.Service("S01", "Ashcombe Idva", "idva", "E06000001")])
    users = tmp_path / "users.yaml"
    accounts.save_user(accounts.User("admin", "admin"), ADMIN_PASSWORD, users)
    export = fixture.write_export(tmp_path / "our export.csv", 1_500, seed=11)
    workers, nginx, run_log = _serve(tmp_path, store, users)
    opened = []
    try:
        route_a, route_b = _routes(workers, nginx)
        ctx_a, page_a = _signed_in(browser, nginx, route_a)
        opened.append(ctx_a)
        _wait_for_pids(run_log, 1)
        # A second person, on the other process. (A's own last run may be logged after
        # this point, so B's process is told by a second pid appearing, not by the
        # newest session.)
        ctx_b, page_b = _signed_in(browser, nginx, route_b)
        opened.append(ctx_b)
        _wait_for_pids(run_log, 2)
        year_b = page_b.get_by_label("Financial year (April to March)")
        expect(year_b).not_to_have_value("2024-25")  # an empty store: only this year

        page_a.get_by_role("link", name="Import", exact=True).click()
        expect(page_a.get_by_role("heading", name="Import your records")).to_be_visible(
            timeout=60_000)
        page_a.locator("input[type=file]").set_input_files(str(export))
        try:
            page_a.get_by_role("button", name="Check and import").click()
        except Exception:
            page_a.screenshot(path=harness.OUTPUT / "failed-workers-import.png", full_page=True)
            raise
        expect(page_a.get_by_text("1,500 cases imported for S01")).to_be_visible(
            timeout=120_000)

        # B clicks on its own process: its next run reads the store A's process replaced.
        page_b.get_by_role("link", name="Overview", exact=True).click()
        expect(year_b).to_have_value("2024-25", timeout=30_000)
        sessions = _sessions(run_log)
        assert all(len(p) == 1 for p in sessions.values()), sessions
        assert len(set().union(*sessions.values())) == 2
    finally:
        for ctx in opened:
            ctx.close()
        nginx.stop()
        workers.stop()
    con = duckdb.connect(str(store), read_only=True)
    try:  # independently of the dashboard: the store holds what was imported
        assert con.execute("select count(*) from store.cases").fetchone()[0] == 1_500
    finally:
        con.close()
