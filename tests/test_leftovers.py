"""What a killed write leaves behind, and spreadsheet formulas (issue 12, item 6).

A killed import leaves a `*.writing-*` copy of the whole store beside it, and a killed
first-start build an `insights.duckdb.building-*` one: each holds every record. The
attacks here kill real processes (SIGKILL, which no code can catch) mid-write, then check
that the next import or dashboard start removes the copy, and that a copy a live process
is still writing is never touched. Formulas: an XLSX written by openpyxl with `=1+1` in a
field is refused by row and field, never stored as blank.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from service_insights import settings
from service_insights.ingest import importer
from service_insights.store import db, registry
from tests.test_import import GOOD, KEY, TODAY, fetch, write_csv, write_xlsx

# A child that starts an import (or a first-start build), says so once its copy of the
# store is being written, and then waits to be killed.
IMPORT_CHILD = """
import sys, time
from service_insights.ingest import importer
def pause(written, total):
    print("writing", flush=True)
    time.sleep(600)
importer.import_file(sys.argv[1], "S01", batch_rows=1, on_batch=pause,
                     user="killed", today=__import__("datetime").date(2025, 6, 1))
"""

BUILD_CHILD = """
import sys, time
from pathlib import Path
from service_insights import settings
from service_insights.store import db
def load(w):
    print("writing", flush=True)
    time.sleep(600)
db.build_store(Path(sys.argv[1]), settings.get().schema_path.read_text(), load)
"""

CLI_CHILD = """
import functools, sys, time
from service_insights import cli
from service_insights.ingest import importer
def pause(written, total):
    print("writing", flush=True)
    time.sleep(600)
importer.import_file = functools.partial(importer.import_file, batch_rows=1, on_batch=pause)
sys.exit(cli.main(["import", sys.argv[1], "--service", "S01"]))
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    path = tmp_path / "insights.duckdb"
    registry.start_real_store(
        path, [registry.Area("E06000001", "Ashcombe", "North East", 50_000)],
        [registry.Service("S01", "Ashcombe Idva", "idva", "E06000001")])
    monkeypatch.setenv("SI_DB_PATH", str(path))
    monkeypatch.delenv("SI_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("SI_PSEUDONYM_KEY", KEY)
    return path


def copies(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir()
                  if p.name.startswith(path.name + ".")
                  and not p.name.endswith((".lock", ".kind")))


def start_child(code: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=settings.ROOT, env=dict(os.environ))
    line = proc.stdout.readline()
    if line.strip() != "writing":
        proc.kill()
        raise AssertionError(f"the child never started writing: {proc.stderr.read()}")
    return proc


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> int:
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    proc.stdout.close()
    proc.stderr.close()
    return code


def killed_import(path: Path, tmp_path: Path) -> None:
    """An import killed by SIGKILL while its copy of the store is being written."""
    proc = start_child(IMPORT_CHILD, write_csv(tmp_path / "killed.csv", GOOD))
    assert kill(proc) == -signal.SIGKILL
    left = copies(path)
    assert left and all(".writing-" in n for n in left), (
        f"the attack needs a leftover copy to work on; found {left}")


def test_a_killed_import_leaves_no_copy_after_the_next_import(env, tmp_path):
    killed_import(env, tmp_path)
    result = importer.import_file(write_csv(tmp_path / "next.csv", GOOD), "S01",
                                  today=TODAY, user="next")
    assert result.imported and result.rows_added == 3
    assert copies(env) == []
    assert fetch(env, "select count(*) as n from store.cases")["n"][0] == 3


def test_a_refused_import_still_clears_a_killed_imports_copy(env, tmp_path):
    killed_import(env, tmp_path)
    bad = write_csv(tmp_path / "bad.csv", [GOOD[0] | {"dash_score": "99"}])
    result = importer.import_file(bad, "S01", today=TODAY, user="next")
    assert not result.imported and result.problems.height == 1
    assert copies(env) == []


def test_a_killed_import_leaves_no_copy_after_the_next_dashboard_start(env, tmp_path):
    from tests.conftest import app_test

    killed_import(env, tmp_path)
    at = app_test()
    at.run()  # real records: the sign-in form, after the store was opened and tidied
    assert not at.exception
    assert copies(env) == []


def test_a_copy_a_live_import_is_writing_is_never_removed(env, tmp_path):
    proc = start_child(IMPORT_CHILD, write_csv(tmp_path / "live.csv", GOOD))
    try:
        live = copies(env)
        assert live and all(".writing-" in n for n in live)
        assert db.remove_leftovers(env) == []
        from tests.conftest import app_test

        app_test().run()  # a dashboard start while the import runs
        assert copies(env) == live, "the live import's copy is still there"
    finally:
        kill(proc)
    assert [p.name for p in db.remove_leftovers(env)] == live
    assert copies(env) == []


def test_a_killed_first_start_build_leaves_no_copy_after_the_next_start(tmp_path,
                                                                        monkeypatch):
    from tests.conftest import app_test

    path = tmp_path / "insights.duckdb"
    assert kill(start_child(BUILD_CHILD, path)) == -signal.SIGKILL
    left = copies(path)
    assert not path.exists() and left and all(".building-" in n for n in left)
    monkeypatch.setenv("SI_DB_PATH", str(path))
    monkeypatch.setenv("SI_SAMPLE_CASES", "2000")
    at = app_test()
    at.run()  # no store: the first start builds the sample
    assert not at.exception
    assert path.exists()
    assert copies(path) == []


def test_a_terminated_command_line_import_removes_its_copy(env, tmp_path):
    """SIGTERM is a handled failure: the command unwinds and removes its copy itself."""
    before = env.read_bytes()
    proc = start_child(CLI_CHILD, write_csv(tmp_path / "term.csv", GOOD))
    assert copies(env), "the copy exists while the import writes"
    assert kill(proc, signal.SIGTERM) == 128 + signal.SIGTERM
    assert copies(env) == []
    assert env.read_bytes() == before


# ---------------------------------------------------------------- formulas


def test_an_xlsx_formula_is_refused_by_row_and_field(env, tmp_path):
    path = write_xlsx(tmp_path / "formula.xlsx", GOOD)
    book = openpyxl.load_workbook(path)
    sheet = book.active
    column = [c.value for c in sheet[1]].index("dash_score") + 1
    sheet.cell(row=3, column=column, value="=1+1")  # the second record's DASH score
    book.save(path)
    before = env.read_bytes()
    with pytest.raises(importer.FileUnreadable) as refused:
        importer.import_file(path, "S01", today=TODAY, user="formula")
    message = str(refused.value)
    assert message == (
        "formula.xlsx: row 3, field dash_score holds a formula (=1+1) instead of a value; "
        "nothing was imported, so replace formulas with their values (copy, then Paste "
        "Special > Values) and import the file again.")
    assert env.read_bytes() == before
    assert fetch(env, "select count(*) as n from store.cases")["n"][0] == 0


def test_every_formula_is_counted_and_a_formula_in_a_dropped_column_is_not(env, tmp_path):
    rows = [r | {"Client name": f"name {i}"} for i, r in enumerate(GOOD)]
    path = write_xlsx(tmp_path / "several.xlsx", rows)
    book = openpyxl.load_workbook(path)
    sheet = book.active
    names = [c.value for c in sheet[1]]
    sheet.cell(row=2, column=names.index("Client name") + 1, value='="Ann"&" Smith"')
    sheet.cell(row=3, column=names.index("children_in_household") + 1, value="=SUM(1,1)")
    sheet.cell(row=4, column=names.index("referral_date") + 1, value="=DATE(2025,2,1)")
    book.save(path)
    with pytest.raises(importer.FileUnreadable,
                       match=r"^several\.xlsx: row 3, field children_in_household holds a "
                             r"formula \(=SUM\(1,1\)\) instead of a value \(and 1 more cell "
                             r"with a formula\);"):
        importer.import_file(path, "S01", today=TODAY, user="formula")


def test_the_cli_refuses_a_formula_in_one_sentence(env, tmp_path, capsys):
    from service_insights import cli

    path = write_xlsx(tmp_path / "cli.xlsx", GOOD)
    book = openpyxl.load_workbook(path)
    book.active.cell(row=2, column=1, value="=1+1")  # case_ref of the first record
    book.save(path)
    assert cli.main(["import", str(path), "--service", "S01"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Nothing was imported. cli.xlsx: row 2, field case_ref holds a "
                          "formula (=1+1)")
    assert "\n" not in err and "Traceback" not in err


def test_a_date_typed_as_text_and_a_real_date_still_read_the_same(env, tmp_path):
    """The XLSX reader's one pass gives the values the Polars reader gave."""
    result = importer.import_file(write_xlsx(tmp_path / "ok.xlsx", GOOD), "S01", today=TODAY,
                                  user="ok")
    assert result.imported
    dates = fetch(env, "select referral_date from store.cases order by 1")["referral_date"]
    assert dates.to_list() == [dt.date(2024, 4, 3), dt.date(2024, 6, 10), dt.date(2025, 2, 1)]
