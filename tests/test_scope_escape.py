"""No query file can escape the scope: a file may read only `cases`, `marac_referrals`,
`services`, `areas`, its own CTEs and VALUES lists.

The attack from issue 12: a query file naming `main.cases` passed `service-insights check`
and showed a service manager every service's rows, because `main.cases` is the unscoped
view behind the scoped `cases` CTE."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from service_insights import cli, settings
from service_insights.access import accounts, grants
from service_insights.catalogue import catalog
from service_insights.store import db
from tests.conftest import app_test, query_health_row

HEADER = ("/*---\ntitle: Cases by service\ndescription: Cases per service.\npage: equality\n"
          "order: 999\nchart: table\ncounts: [cases]\n---*/\n")
"""Header lines 1-8; the SQL starts on line 9."""
ESCAPE_SQL = "select service_id, count(*) as cases\nfrom main.cases\ngroup by service_id\n"


def _queries(tmp_path, name: str, sql: str):
    queries = tmp_path / "queries"
    shutil.copytree(settings.ROOT / "queries", queries)
    (queries / "equality" / f"{name}.sql").write_text(HEADER + sql)
    return queries


@pytest.mark.parametrize("sql, named, line", [
    (ESCAPE_SQL, "main.cases", 10),
    ("select service_id, count(*) as cases\nfrom store.cases\ngroup by service_id\n",
     "store.cases", 10),
    ("select 'x' as service_id, count(*) as cases from read_csv('x')\n", "read_csv()", 9),
    ("select 'x' as service_id, count(*) as cases\nfrom 'file.parquet'\n", "file.parquet", 10),
    ("select 'x' as service_id, count(*) as cases\nfrom range(10)\n", "range()", 10),
    ("select 'x' as service_id, count(*) as cases\nfrom glob('*')\n", "glob()", 10),
    ("with mine as (select * from cases)\nselect service_id, count(*) as cases\n"
     "from mine, (select 1 from memory.main.cases) x\ngroup by service_id\n",
     "memory.main.cases", 11),
    ("select service_id, count(*) as cases from cases\nwhere client_key in "
     "(select client_key from main.marac_referrals)\ngroup by service_id\n",
     "main.marac_referrals", 10),
])
def test_a_query_file_that_escapes_the_scope_is_refused(tmp_path, sql, named, line):
    entry_text = HEADER + sql
    with pytest.raises(catalog.QueryFileError) as info:
        catalog.parse(entry_text, "queries/equality/zz_escape.sql")
    error = info.value.error
    assert error.path == "queries/equality/zz_escape.sql"
    assert error.line == line
    assert named in error.message
    assert "\n" not in str(error) and "Traceback" not in str(error)


def test_check_refuses_main_cases_with_file_and_line(tmp_path, monkeypatch, capsys):
    queries = _queries(tmp_path, "zz_escape", ESCAPE_SQL)
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))
    assert cli.main(["check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("queries/equality/zz_escape.sql, line 10: main.cases names a "
                             "table outside the scope")


def test_a_cte_named_like_a_table_is_fine(tmp_path, monkeypatch, capsys):
    sql = ("with referrals as (select * from cases),\n"
           "     lookup(service_id, label) as (values ('S01', 'One'))\n"
           "select r.service_id, count(*) as cases\nfrom referrals r\n"
           "left join lookup l using (service_id)\ngroup by r.service_id\n")
    queries = _queries(tmp_path, "zz_fine", sql)
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))
    assert cli.main(["check"]) == 0
    n = _shipped_files() + 1  # the shipped files and zz_fine
    assert f"{n} of {n} query files parse" in capsys.readouterr().out


def test_every_shipped_query_file_loads(capsys):
    entries = catalog.discover(settings.ROOT / "queries")
    assert len(entries) == _shipped_files()
    assert [str(e.error) for e in entries if e.error] == []


def _shipped_files() -> int:
    """Counted by a second, simple method (the .sql files on disk), not hard-coded, so a
    helper adding a chart does not have to edit this test."""
    return len(list((settings.ROOT / "queries").rglob("*.sql")))


def _service_ids(path):
    con = duckdb.connect(str(path), read_only=True, config=db.read_only_config())
    try:
        return {r[0] for r in con.execute("select service_id from store.services").fetchall()}
    finally:
        con.close()


def test_a_service_manager_does_not_get_every_service_from_main_cases(
        app_env, tmp_path, monkeypatch):
    """The issue's attack on the page: the file is refused where its chart would be, with
    its file and line, and no other service's id appears anywhere on the page."""
    queries = _queries(tmp_path, "zz_escape", ESCAPE_SQL)
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))
    users = tmp_path / "users.yaml"
    monkeypatch.setenv("SI_USERS_FILE", str(users))
    accounts.save_user(accounts.User("sam", "service_manager", ("S03",)),
                       "correct horse battery")
    store = db.Store(app_env)
    catalogue_frame = store.query("select service_id, area_code from main.services").frame
    store.close()
    at = app_test()
    at.session_state["viewer"] = grants.resolve("sam", "service_manager", ["S03"], [],
                                                catalogue_frame)
    at.session_state["fy"] = "2024-25"
    at.run()
    at.switch_page("app_pages/equality.py").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("queries/equality/zz_escape.sql" in e and "line 10" in e and "main.cases" in e
               for e in errors), errors
    shown = set()
    for frame in at.dataframe:
        value = frame.value
        for col in value.columns:
            shown |= {str(v) for v in value[col].tolist()}
    others = _service_ids(app_env) - {"S03"}
    assert not (shown & others), "no other service's id on the page"


def test_query_health_lists_the_refused_file(app_env, tmp_path, monkeypatch):
    queries = _queries(tmp_path, "zz_escape", ESCAPE_SQL)
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))
    at = app_test()
    at.run()
    row = query_health_row(at, "equality/zz_escape")
    assert row["status"] == "does not parse"
    assert "line 10" in row["problem"] and "main.cases" in row["problem"]
