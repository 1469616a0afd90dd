"""Faults, as a user meets them: a damaged store, a store replaced under open sessions, a
read-only data folder, two builds at once, a first-start build killed half-way.

Every fault is real: the store is a real DuckDB file with real damage written into it
(a block of the cases table overwritten, located with DuckDB's own storage_info), folders
are made read-only by the operating system (chmod, or a read-only bind mount when the
tests run as root, which chmod does not stop), and the other process is a real process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from service_insights import settings
from service_insights.access import accounts, grants
from service_insights.store import db, registry, synth
from tests.conftest import app_test

BLOCK_SIZE = 262_144
HEADER_BYTES = 3 * 4096
"""DuckDB's file layout: a main header and two database headers, then fixed-size blocks
(block id n starts at HEADER_BYTES + n * BLOCK_SIZE, its checksum first)."""
ADMIN = grants.Viewer("root", "admin", None, None)


def sample(path: Path, cases: int = 3000, seed: int = 7) -> Path:
    synth.write_sample(path, cases, seed)
    return path


def damage_cases_block(path: Path) -> int:
    """Overwrite part of a block that holds the referral dates of the table charts read
    (store.cases_keyed, written from store.cases at every build and import); returns the
    block id. The header and the small tables (meta, services) stay readable, so the
    store opens and only the charts' queries meet the damage."""
    con = duckdb.connect(str(path), read_only=True, config=db.read_only_config())
    try:
        block = con.execute(
            "select block_id from pragma_storage_info('store.cases_keyed') "
            "where column_name = 'referral_date' and block_id >= 0 limit 1").fetchone()[0]
        size = con.execute("select block_size from pragma_database_size()").fetchone()[0]
    finally:
        con.close()
    assert size == BLOCK_SIZE
    with open(path, "r+b") as fh:
        fh.seek(HEADER_BYTES + block * BLOCK_SIZE + 4096)
        fh.write(b"\xa5" * 8192)
    return block


def cases_in(path: Path, fy_start: int) -> int:
    """Cases referred in a financial year, read straight from the file (independent of
    the dashboard's query layer)."""
    con = duckdb.connect(str(path), read_only=True, config=db.read_only_config())
    try:
        return con.execute(
            "select count(*) from store.cases where referral_date between $a and $b",
            {"a": dt.date(fy_start, 4, 1), "b": dt.date(fy_start + 1, 3, 31)}).fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def store_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data" / "insights.duckdb"
    monkeypatch.setenv("SI_DB_PATH", str(path))
    monkeypatch.setenv("SI_SAMPLE_CASES", "2000")
    return path


@pytest.fixture
def admin_users(tmp_path, monkeypatch) -> Path:
    users = tmp_path / "users.yaml"
    monkeypatch.setenv("SI_USERS_FILE", str(users))
    accounts.save_user(accounts.User("root", "admin"), "a long admin password")
    accounts.save_user(accounts.User("ana", "analyst"), "a long analyst password")
    return users


def as_viewer(viewer: grants.Viewer | None):
    at = app_test()
    if viewer is not None:
        at.session_state["viewer"] = viewer
    return at


def texts(at) -> str:
    return "\n".join([e.value for e in at.error] + [m.value for m in at.markdown]
                     + [w.value for w in at.warning])


def rebuild_buttons(at) -> list:
    return [b for b in at.button if "rebuild" in b.label.lower()]


# ---------------------------------------------------------------- a damaged block


def test_a_damaged_block_is_a_damaged_store_not_a_query_error(store_path):
    sample(store_path)
    damage_cases_block(store_path)
    at = as_viewer(None)  # the demo: nobody signed in
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert "damaged" in errors[0] and str(store_path) in errors[0]
    assert ".sql" not in texts(at) and "line " not in errors[0], "no query file is blamed"
    assert not rebuild_buttons(at), "the demo viewer is not an administrator"
    assert "service-insights sample" in texts(at)


def test_an_administrator_rebuilds_a_damaged_synthetic_sample(store_path, admin_users):
    sample(store_path)
    damage_cases_block(store_path)
    at = as_viewer(ADMIN)
    at.run()
    assert not at.exception
    [button] = rebuild_buttons(at)
    button.click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    kept = list(store_path.parent.glob("insights.duckdb.corrupt-*"))
    assert len(kept) == 1, "the broken file is kept, renamed"
    assert db.read_meta(store_path)["data_kind"] == "synthetic"
    assert len(at.metric) == 5, "the headline figures are back"


def test_an_analyst_is_not_offered_the_rebuild(store_path, admin_users):
    sample(store_path)
    damage_cases_block(store_path)
    at = as_viewer(grants.Viewer("ana", "analyst", None, None))
    at.run()
    assert not at.exception
    assert "damaged" in at.error[0].value
    assert not rebuild_buttons(at)


def real_store(path: Path) -> Path:
    registry.start_real_store(
        path, [registry.Area("E06000001", "Ashcombe", "North East", 41000)],
        [registry.Service("S01", "Ashcombe Idva", "idva", "E06000001")])
    return path


def test_a_real_store_is_never_swapped_for_the_sample(store_path, admin_users):
    """A real store whose header is destroyed: even an administrator gets the backup
    instructions, never the rebuild (which would replace real records with fiction)."""
    real_store(store_path)
    before = store_path.read_bytes()
    with open(store_path, "r+b") as fh:
        fh.write(b"\0" * 8192)  # the headers zeroed: DuckDB cannot open it at all
    at = as_viewer(ADMIN)
    at.run()
    assert not at.exception
    assert at.error and "cannot be read" in at.error[0].value
    assert not rebuild_buttons(at)
    assert "backup" in texts(at)
    assert store_path.read_bytes()[8192:] == before[8192:], "the file is left alone"


def test_an_unknown_store_is_treated_as_real(store_path, admin_users):
    """Without the note of what the store held, a broken file might hold real records."""
    sample(store_path)
    db.kind_path(store_path).unlink()
    with open(store_path, "r+b") as fh:
        fh.write(b"\0" * 8192)
    at = as_viewer(ADMIN)
    at.run()
    assert not at.exception
    assert not rebuild_buttons(at) and "backup" in texts(at)


def test_a_truncated_synthetic_sample_is_rebuilt_by_an_administrator(store_path,
                                                                      admin_users):
    sample(store_path)
    with open(store_path, "r+b") as fh:
        fh.truncate(20_000)
    at = as_viewer(ADMIN)
    at.run()
    assert not at.exception
    [button] = rebuild_buttons(at)
    button.click().run()
    assert not at.exception and not at.error
    assert len(at.metric) == 5


def test_a_damaged_block_on_the_command_line_is_one_sentence(store_path, tmp_path):
    sample(store_path)
    damage_cases_block(store_path)
    out = tmp_path / "pack.pdf"
    done = cli("export", "--service", "S01", "--year", "2024-25", "--out", str(out))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "damaged" in done.stderr
    assert not out.exists()


# ---------------------------------------------------------------- sessions already open


def test_an_open_session_picks_up_a_store_rebuilt_by_another_process(store_path):
    sample(store_path, cases=3000)
    at = as_viewer(None)
    at.run()
    assert not at.exception
    first = at.metric[0].value
    # Another process builds a sample twice the size in its place.
    done = cli("sample", "--cases", "6000", "--seed", "8")
    assert done.returncode == 0, done.stderr
    at.run()  # the session's next interaction
    assert not at.exception and not at.error
    expected = cases_in(store_path, 2024)
    shown = int(at.metric[0].value.replace(",", ""))
    assert shown != int(first.replace(",", ""))
    assert abs(shown - expected) <= 3, "the new build's count (perturbed by at most 3)"


def test_an_open_session_recovers_when_another_session_rebuilds(store_path, admin_users):
    sample(store_path)
    damage_cases_block(store_path)
    viewer_at = as_viewer(grants.Viewer("ana", "analyst", None, None))
    viewer_at.run()
    assert viewer_at.error and "damaged" in viewer_at.error[0].value
    admin_at = as_viewer(ADMIN)
    admin_at.run()
    rebuild_buttons(admin_at)[0].click().run()
    assert not admin_at.exception and not admin_at.error
    viewer_at.run()
    assert not viewer_at.exception and not viewer_at.error
    assert len(viewer_at.metric) == 5


def test_a_stale_rebuild_click_keeps_the_store_another_session_rebuilt(store_path,
                                                                       admin_users):
    """Two administrators see the broken store; one rebuilds; the other's click must not
    move the new, good store aside."""
    sample(store_path)
    damage_cases_block(store_path)
    broken = db.signature(store_path)
    synth.write_sample(store_path, 2000, 9, replace_broken=broken)  # the first admin
    good = db.signature(store_path)
    synth.write_sample(store_path, 2000, 9, replace_broken=broken)  # the second, late
    assert db.signature(store_path) == good
    assert len(list(store_path.parent.glob("insights.duckdb.corrupt-*"))) == 1


# ---------------------------------------------------------------- two builds at once


HOLD_BUILD = """
import sys, time
from pathlib import Path
from service_insights import settings
from service_insights.store import db
def load(w):
    print("building", flush=True)
    time.sleep(600)
db.build_store(Path(sys.argv[1]), settings.get().schema_path.read_text(), load)
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service_insights.cli", *args],
                          cwd=settings.ROOT, env=dict(os.environ), capture_output=True,
                          text=True, timeout=300)


def test_a_second_sample_build_is_refused_while_one_runs(store_path):
    store_path.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_BUILD, str(store_path)],
                              cwd=settings.ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "building"
        done = cli("sample", "--cases", "2000")
        assert done.returncode == 1
        assert "Built" not in done.stdout
        assert "already being built" in done.stderr and "Traceback" not in done.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(60)
        holder.stdout.close()
    assert not store_path.exists()


def test_two_sample_builds_started_together_never_both_say_built(store_path):
    store_path.parent.mkdir(parents=True)
    cmd = [sys.executable, "-m", "service_insights.cli", "sample", "--cases", "150000"]
    procs = [subprocess.Popen(cmd, cwd=settings.ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    built = [o for o, _ in outs if o.startswith("Built")]
    refused = [e for _, e in outs if "already being built" in e]
    assert len(built) == 1 and len(refused) == 1, outs
    assert db.read_meta(store_path)["n_cases"] == "150000"


# ---------------------------------------------------------------- read-only folders


@contextlib.contextmanager
def read_only(folder: Path):
    """Make `folder` read-only for this process: chmod for an ordinary user; for root
    (whom chmod does not stop) a read-only bind mount of it over itself."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"running as root, and a read-only bind mount is not allowed here "
                    f"({mounted.stderr.strip()}), so no folder can be made read-only")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)],
                            capture_output=True, text=True)
        if ro.returncode:
            pytest.skip(f"cannot remount read-only as root: {ro.stderr.strip()}")
        yield folder
    finally:
        # Lazily if a file under it is still open (a store this process holds): the mount
        # is detached at once either way.
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def test_first_start_in_a_read_only_folder_says_so_once(store_path):
    with read_only(store_path.parent):
        at = as_viewer(None)
        at.run()
    assert not at.exception, "no traceback"
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert "cannot be written" in errors[0] and str(store_path.parent) in errors[0]
    assert "Traceback" not in errors[0]
    assert not list(store_path.parent.iterdir()), "nothing half-written"


def test_downloads_say_why_when_the_audit_folder_is_read_only(store_path, tmp_path,
                                                               monkeypatch):
    sample(store_path)
    audit_dir = tmp_path / "audit"
    monkeypatch.setenv("SI_AUDIT_LOG", str(audit_dir / "audit.log"))
    with read_only(audit_dir):
        at = as_viewer(None)
        at.run()
        assert not at.exception
        downloads = [b for b in at.get("download_button")]
        assert downloads and all(b.proto.disabled for b in downloads)
        captions = [c.value for c in at.caption if "Downloads are off" in c.value]
        assert captions and "audit log" in captions[0] and str(audit_dir) in captions[0]
        at.switch_page("app_pages/report_pack.py").run()
        at.button[0].click().run()  # "Build the report pack"
        assert not at.exception, "no OSError traceback"
        assert any("Downloads are off" in e.value for e in at.error)
        assert not at.get("download_button") or all(
            b.proto.label != "Download the report pack (PDF)" for b in at.get("download_button"))


def test_a_cli_export_into_a_read_only_folder_is_one_sentence(store_path, tmp_path):
    sample(store_path)
    out_dir = tmp_path / "out"
    with read_only(out_dir):
        done = cli("export", "--service", "S01", "--year", "2024-25", "--query",
                   "home/headline_figures", "--format", "csv", "--out",
                   str(out_dir / "h.csv"))
        assert done.returncode == 1
        assert "could not be written" in done.stderr and "Traceback" not in done.stderr
        assert list(out_dir.iterdir()) == []


def test_a_cli_sample_build_into_a_read_only_folder_is_one_sentence(store_path):
    with read_only(store_path.parent):
        done = cli("sample", "--cases", "2000")
    assert done.returncode == 1
    assert "cannot be written" in done.stderr and "Traceback" not in done.stderr


def test_a_store_in_a_read_only_folder_is_still_shown(store_path):
    """Reading needs no write: the dashboard works on a store it cannot change."""
    sample(store_path)
    with read_only(store_path.parent):
        at = as_viewer(None)
        at.run()
        assert not at.exception and not at.error
        assert len(at.metric) == 5


def test_sign_in_with_a_read_only_audit_folder_is_refused_in_one_sentence(tmp_path,
                                                                         monkeypatch):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from service_insights.ui import session_routes, signin

    users = tmp_path / "users.yaml"
    monkeypatch.setenv("SI_USERS_FILE", str(users))
    accounts.save_user(accounts.User("root", "admin"), "a long admin password")
    audit_dir = tmp_path / "audit"
    monkeypatch.setenv("SI_AUDIT_LOG", str(audit_dir / "audit.log"))
    app = Starlette(routes=session_routes.routes(""))
    with read_only(audit_dir), TestClient(app, base_url="http://insights.test",
                                          follow_redirects=False) as client:
        r = client.post("/signin", data={"username": "root", "password": "a long admin password",
                                         "next": "/users"},
                        headers={"origin": "http://insights.test"})
    assert r.status_code == 303, "a redirect with the reason, not a server error"
    assert r.headers["location"] == "/users?signin_error=unwritable"
    assert "set-cookie" not in r.headers, "not signed in: the sign-in could not be audited"
    assert "audit log" in signin._ERRORS["unwritable"]


def test_a_query_on_a_build_closed_under_it_asks_for_a_rerun(store_path):
    """A session mid-page when another opens the new build: its old handle is closed,
    and its next query says so (the router runs the page again on the new build) rather
    than showing a query error."""
    sample(store_path)
    old = db.Store(store_path)
    sample(store_path, cases=2500, seed=9)  # another process's rebuild
    new = db.Store(store_path)  # closes the older build's handle in this process
    with pytest.raises(db.StoreReplaced):
        old.query("select count(*) as n from main.cases")
    assert new.query("select count(*) as n from store.cases").frame["n"][0] == 2500


def test_a_real_store_from_the_previous_version_is_offered_the_upgrade(store_path):
    # A store of imported records built by schema 7: never rebuilt as the sample (that
    # would throw the records away), and the administrator is told the command that
    # keeps them.
    from tests.test_schema import _as_schema_7

    sample(store_path)
    _as_schema_7(store_path)
    con = duckdb.connect(str(store_path))
    try:
        con.execute("update store.meta set value = 'real' where key = 'data_kind'")
        con.execute("checkpoint")
    finally:
        con.close()
    before = store_path.read_bytes()
    at = as_viewer(None)
    at.run()
    assert not at.exception
    assert "service-insights upgrade" in texts(at)
    assert store_path.read_bytes() == before  # nothing rebuilt, nothing lost
