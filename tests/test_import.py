"""Importing real records: real files on disk (CSV, XLSX, Parquet), real DuckDB stores.

Expected values are worked out by hand from the rows below, and pseudonyms by calling
hmac.digest directly, never read back from the importer's own output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from service_insights import cli, settings
from service_insights.access import grants
from service_insights.ingest import columns, importer
from service_insights.store import db, registry, synth

KEY = "a-test-key-that-is-long-enough-0123456789"
OTHER_KEY = "another-test-key-quite-different-987654321"
TODAY = dt.date(2025, 6, 1)

HEADER = [c.name for c in columns.COLUMNS]

ADMIN = grants.Viewer("admin", "admin", None, None)


def row(**over) -> dict[str, str]:
    base = {
        "case_ref": "CR-1", "client_ref": "CL-1", "service_id": "S01",
        "referral_date": "03/04/2024", "intake_date": "05/04/2024", "exit_date": "21/08/2024",
        "referral_source": "police", "age_band": "31-40", "gender": "female",
        "ethnicity": "white", "disability": "no", "lgbt": "no", "dash_score": "16",
        "risk_level": "high", "abuse_physical": "yes", "abuse_sexual": "no",
        "abuse_coercive_control": "yes", "abuse_stalking": "yes", "abuse_economic": "no",
        "perpetrator": "ex_partner", "abuse_months": "36", "children_in_household": "2",
        "youngest_child_age_band": "0-4", "social_care": "child_in_need",
        "marac_referred": "yes", "marac_meeting_date": "24/04/2024",
        "marac_referring_agency": "police", "whole_family_support": "yes",
        "abuse_ceased": "yes", "risk_reduced": "yes", "feels_safer": "no",
        "quality_of_life_improved": "yes",
    }
    base.update(over)
    return base


def open_case(**over) -> dict[str, str]:
    """An open case with no children and no Marac referral."""
    return row(**{
        "exit_date": "", "children_in_household": "0", "youngest_child_age_band": "",
        "social_care": "", "marac_referred": "no", "marac_meeting_date": "",
        "marac_referring_agency": "", "whole_family_support": "", "abuse_ceased": "",
        "risk_reduced": "", "feels_safer": "", "quality_of_life_improved": "", **over})


GOOD = [
    row(),
    open_case(case_ref="CR-2", client_ref="CL-2", referral_date="2024-06-10",
              intake_date="2024-06-12", dash_score="9", risk_level="standard",
              gender="male", age_band="21-30"),
    open_case(case_ref="CR-3", client_ref="CL-1", referral_date="01/02/2025",
              intake_date="", dash_score="", risk_level="", referral_source="self"),
]


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or list(rows[0])
    pl.DataFrame([{h: r.get(h, "") for h in header} for r in rows],
                 schema={h: pl.String for h in header}).write_csv(path)
    return path


def write_xlsx(path: Path, rows: list[dict]) -> Path:
    """Dates as real spreadsheet dates and numbers as numbers, as Excel saves them."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(rows[0]))
    for r in rows:
        cells = []
        for k, v in r.items():
            if k.endswith("_date") and v:
                cells.append(dt.datetime.strptime(v, "%d/%m/%Y" if "/" in v else "%Y-%m-%d"))
            elif k in ("dash_score", "children_in_household", "abuse_months") and v:
                cells.append(int(v))
            else:
                cells.append(v or None)
        ws.append(cells)
    wb.save(path)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    """Typed columns: dates as dates, counts as integers, yes/no as booleans."""
    frame = pl.DataFrame(rows).with_columns(pl.all().replace("", None))
    dates = [c for c in frame.columns if c.endswith("_date")]
    frame = frame.with_columns(
        *[pl.coalesce(pl.col(c).str.strptime(pl.Date, "%d/%m/%Y", strict=False),
                      pl.col(c).str.strptime(pl.Date, "%Y-%m-%d", strict=False)) for c in dates],
        *[pl.col(c).cast(pl.Int16) for c in ("dash_score", "children_in_household",
                                              "abuse_months")],
        *[pl.col(c).replace_strict({"yes": True, "no": False}, default=None,
                                   return_dtype=pl.Boolean)
          for c in ("marac_referred", "abuse_physical", "feels_safer")],
    )
    frame.write_parquet(path)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pseudonym(key: str, domain: str, ref: str) -> str:
    return hmac.digest(key.encode(), f"{domain}\x00{ref}".encode(), "sha256").hex()[:32]


def fetch(path: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def every_text_value(path: Path) -> set[str]:
    """Every text value in every table of the store, to search for what must not be there."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = con.sql("select table_schema, table_name, column_name from "
                       "information_schema.columns where data_type = 'VARCHAR' and "
                       "table_schema = 'store'").fetchall()
        values: set[str] = set()
        for schema, table, column in cols:
            values |= {v for (v,) in con.execute(
                f'select distinct "{column}" from {schema}.{table}').fetchall() if v}
        return values
    finally:
        con.close()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.delenv("SI_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("SI_PSEUDONYM_KEY", KEY)
    return KEY


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "insights.duckdb"
    registry.start_real_store(
        path,
        [registry.Area("E06000001", "Ashcombe", "North East", 50_000)],
        [registry.Service("S01", "Ashcombe Idva", "idva", "E06000001"),
         registry.Service("S02", "Ashcombe Outreach", "outreach", "E06000001")])
    monkeypatch.setenv("SI_DB_PATH", str(path))
    return path


def run(path: Path, service: str = "S01", **kw) -> importer.ImportResult:
    return importer.import_file(path, service, today=TODAY, user="analyst1", **kw)


# ---------------------------------------------------------------- a good file


@pytest.mark.parametrize("writer", [write_csv, write_xlsx, write_parquet],
                         ids=["csv", "xlsx", "parquet"])
def test_good_file_imports_exactly_its_rows(key, store, tmp_path, writer):
    ext = {"write_csv": "csv", "write_xlsx": "xlsx", "write_parquet": "parquet"}[writer.__name__]
    result = run(writer(tmp_path / f"cases.{ext}", GOOD))
    assert result.problems.height == 0, result.problems
    assert result.imported and (result.rows_read, result.rows_added) == (3, 3)

    cases = fetch(store, "select * from store.cases order by referral_date")
    assert cases.height == 3
    first = cases.row(0, named=True)
    assert first["case_id"] == pseudonym(KEY, "case|S01", "CR-1")
    assert first["client_key"] == pseudonym(KEY, "client|S01", "CL-1")
    assert (first["referral_date"], first["intake_date"], first["exit_date"]) == (
        dt.date(2024, 4, 3), dt.date(2024, 4, 5), dt.date(2024, 8, 21))
    assert (first["dash_score"], first["children_in_household"], first["social_care"]) == (
        16, 2, "child_in_need")
    assert (first["marac_referred"], first["abuse_stalking"], first["feels_safer"]) == (
        True, True, False)
    second = cases.row(1, named=True)
    assert (second["gender"], second["exit_date"], second["social_care"]) == ("male", None, None)
    assert second["abuse_ceased"] is None
    third = cases.row(2, named=True)
    assert (third["intake_date"], third["dash_score"], third["client_key"]) == (
        None, None, first["client_key"]), "CL-1's second episode links to the first"

    assert all(0 <= k <= 255 for k in cases["record_key"]), "each case has a record key"
    marac = fetch(store, "select * from store.marac_referrals")
    assert marac.height == 1
    row = marac.row(0, named=True)
    assert 0 <= row.pop("record_key") <= 255
    assert row == {
        "referral_id": first["case_id"], "client_key": first["client_key"],
        "marac_area": "E06000001", "service_id": "S01", "meeting_date": dt.date(2024, 4, 24),
        "referring_agency": "police", "children_in_household": 2, "source": "case",
        "service_client_key": first["client_key"], "dash_score": None,
        "perpetrator_key": None, "linkage_key": None}

    log = fetch(store, "select * from store.import_log").row(0, named=True)
    assert (log["imported_by"], log["file_name"], log["service_id"], log["kind"]) == (
        "analyst1", f"cases.{ext}", "S01", "cases")
    assert (log["rows_in_file"], log["rows_added"], log["rows_replaced"]) == (3, 3, 0)
    assert log["file_sha256"] == sha(tmp_path / f"cases.{ext}")
    meta = dict(fetch(store, "select key, value from store.meta").iter_rows())
    assert meta["data_kind"] == "real" and meta["data_as_of"] == "2025-06-01"


def test_quality_summary_counts_blanks_dates_and_years(key, store, tmp_path):
    q = run(write_csv(tmp_path / "c.csv", GOOD)).quality
    blanks = dict(zip(q.blanks["field"], q.blanks["blank"], strict=True))
    assert (blanks["exit_date"], blanks["intake_date"], blanks["dash_score"]) == (2, 1, 1)
    pct = dict(zip(q.blanks["field"], q.blanks["share_blank_pct"], strict=True))
    assert pct["exit_date"] == pytest.approx(66.7)
    dates = {r["field"]: r for r in q.dates.iter_rows(named=True)}
    assert (dates["referral_date"]["first"], dates["referral_date"]["last"]) == (
        dt.date(2024, 4, 3), dt.date(2025, 2, 1))
    assert dict(q.by_year.iter_rows()) == {"2024-25": 3}
    assert q.open_cases == 2


def test_template_imports_cleanly(key, store):
    template = importer.template_path()
    header = template.read_text().splitlines()[0].split(",")
    assert header == HEADER, "the template has every column of the format, in order"
    result = run(template)
    assert result.imported and result.rows_imported == 2


# ---------------------------------------------------------------- bad values


BAD = [
    # (what, changes to spreadsheet row 3, field reported, words in the message)
    ("bad date", {"referral_date": "31/02/2024"}, "referral_date", "not a date"),
    ("two-digit year", {"intake_date": "12/06/24"}, "intake_date", "not a date"),
    ("referral after intake", {"referral_date": "20/06/2024"}, "intake_date",
     "before the referral date 20/06/2024"),
    ("exit before intake", {"exit_date": "01/06/2024", "abuse_ceased": "yes"}, "exit_date",
     "before the intake date"),
    ("DASH 25", {"dash_score": "25"}, "dash_score", "between 0 and 24"),
    ("DASH not a number", {"dash_score": "high"}, "dash_score", "not a whole number"),
    ("unknown code", {"referral_source": "postman"}, "referral_source",
     "not an allowed value"),
    ("unknown yes/no", {"abuse_physical": "maybe"}, "abuse_physical", "not yes/no"),
    ("duplicate case id", {"case_ref": "CR-1"}, "case_ref", "the same case_ref as row 2"),
    ("children -1", {"children_in_household": "-1"}, "children_in_household",
     "between 0 and 20"),
    ("missing required field", {"gender": ""}, "gender", "required"),
    ("missing case reference", {"case_ref": " "}, "case_ref", "required"),
    ("children but no social care", {"children_in_household": "1"}, "social_care",
     "required when there are children"),
    ("outcome on an open case", {"feels_safer": "yes"}, "feels_safer", "no exit_date"),
    ("Marac date but not referred", {"marac_meeting_date": "20/06/2024",
                                     "marac_referring_agency": "health"},
     "marac_referred", "says no"),
    ("another service's row", {"service_id": "S02"}, "service_id", "imported for S01"),
    ("date in the future", {"intake_date": "01/01/2030"}, "intake_date", "check the year"),
]


@pytest.mark.parametrize(("what", "change", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_each_bad_value_is_reported_and_nothing_written(key, store, tmp_path, what, change,
                                                        field, words):
    run(write_csv(tmp_path / "first.csv", [GOOD[0]]))  # the store already holds a case
    before = sha(store)
    rows = [GOOD[0], GOOD[1] | change, GOOD[2]]
    result = run(write_csv(tmp_path / "bad.csv", rows))
    assert not result.imported
    problems = result.problems.rows(named=True)
    hits = [p for p in problems if (p["row"], p["field"]) == (3, field)]
    assert hits, problems
    assert words in hits[0]["message"]
    assert hits[0]["value"] == rows[1][field].strip(), "the value as written in the file"
    assert all(p["row"] == 3 for p in problems), "the good rows have no problems"
    assert sha(store) == before, "a file with problems writes nothing"
    assert fetch(store, "select count(*) as n from store.cases")["n"][0] == 1


def test_missing_required_column_is_reported_on_the_header_row(key, store, tmp_path):
    before = sha(store)
    header = [h for h in HEADER if h != "referral_source"]
    result = run(write_csv(tmp_path / "c.csv", GOOD, header))
    assert ("row", "field") and [(p["row"], p["field"]) for p in
                                 result.problems.rows(named=True)] == [(1, "referral_source")]
    assert sha(store) == before


def test_every_problem_is_counted_though_the_list_is_long(key, store, tmp_path):
    rows = [open_case(case_ref=f"R{i}", dash_score="30") for i in range(1500)]
    result = run(write_csv(tmp_path / "c.csv", rows))
    assert result.problems.height == 1500
    assert result.problems["row"].to_list() == list(range(2, 1502))


def test_unreadable_file_is_refused_with_its_name(key, store, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_bytes("case_ref,client_ref\nCR-é,CL\n".encode("cp1252"))
    with pytest.raises(importer.FileUnreadable, match=r"cases\.csv.*CSV UTF-8"):
        run(path)
    with pytest.raises(importer.FileUnreadable, match=r"\.csv, \.xlsx or \.parquet"):
        run(tmp_path / "x.docx") if (tmp_path / "x.docx").write_text("x") else None


# ---------------------------------------------------------------- privacy


def test_identifying_columns_are_dropped_and_age_band_derived(key, store, tmp_path):
    rows = []
    # Referral on 03/04/2024. Ages worked out by hand: 17 the day before the 18th
    # birthday, 21 on the day, 33 otherwise.
    for i, dob in enumerate(["04/04/2006", "03/04/2003", "15/06/1990"]):
        r = row(case_ref=f"CR-{i}", client_ref=f"CL-{i}")
        del r["age_band"]
        rows.append({"Client Name": f"Jane Smith{i}", "Postcode": "AB1 2CD",
                     "Date of Birth": dob, "NHS Number": "943 476 5919",
                     "Case notes": "told us about the flat on Elm Street",
                     "Phone": "07700 900123", **r})
    result = run(write_csv(tmp_path / "c.csv", rows))
    assert result.imported, result.problems
    assert result.dropped == ["Client Name", "Postcode", "Date of Birth", "NHS Number",
                              "Case notes", "Phone"]
    assert result.age_bands_from_dob == 3
    bands = fetch(store, "select age_band from store.cases order by age_band")["age_band"]
    assert bands.to_list() == ["16-17", "21-30", "31-40"]
    columns = set(fetch(store, "select * from store.cases limit 0").columns)
    assert not columns & {"client_name", "postcode", "date_of_birth", "nhs_number", "notes"}
    stored = every_text_value(store)
    for raw in ("Jane Smith0", "AB1 2CD", "943 476 5919", "07700 900123", "04/04/2006"):
        assert not any(raw in v for v in stored)
    assert b"Jane Smith" not in store.read_bytes() and b"Elm Street" not in store.read_bytes()


def test_under_16_by_date_of_birth_is_a_problem_and_not_echoed(key, store, tmp_path):
    r = row()
    del r["age_band"]
    result = run(write_csv(tmp_path / "c.csv", [{"DOB": "04/04/2008", **r}]))
    problems = result.problems.rows(named=True)
    assert [(p["row"], p["field"], p["value"]) for p in problems] == [
        (2, "date_of_birth", "(not shown)")]


def test_pseudonyms_link_across_files_differ_by_key_and_hide_references(
        key, store, tmp_path, monkeypatch):
    run(write_csv(tmp_path / "a.csv", [row(case_ref="A-1", client_ref="PERSON-77")]))
    run(write_csv(tmp_path / "b.csv", [open_case(case_ref="B-9", client_ref="PERSON-77")]))
    keys = fetch(store, "select distinct client_key from store.cases")["client_key"]
    assert keys.to_list() == [pseudonym(KEY, "client|S01", "PERSON-77")]

    other = tmp_path / "other" / "insights.duckdb"
    other.parent.mkdir()
    registry.start_real_store(other, [registry.Area("E1", "A", "R", 1)],
                               [registry.Service("S01", "X", "idva", "E1")])
    monkeypatch.setenv("SI_PSEUDONYM_KEY", OTHER_KEY)
    run(tmp_path / "a.csv", db_path=other)
    other_key = fetch(other, "select client_key from store.cases")["client_key"][0]
    assert other_key == pseudonym(OTHER_KEY, "client|S01", "PERSON-77") != keys[0]

    stored = every_text_value(store) | every_text_value(other)
    assert not any(ref in v for v in stored for ref in ("PERSON-77", "A-1", "B-9"))


def test_a_different_key_is_refused_on_a_store_imported_with_another(
        key, store, tmp_path, monkeypatch):
    run(write_csv(tmp_path / "a.csv", GOOD))
    before = sha(store)
    monkeypatch.setenv("SI_PSEUDONYM_KEY", OTHER_KEY)
    with pytest.raises(importer.ImportRefused, match="not the one earlier imports"):
        run(tmp_path / "a.csv")
    assert sha(store) == before


def test_no_key_refuses_and_explains(store, tmp_path, monkeypatch):
    monkeypatch.delenv("SI_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("SI_PSEUDONYM_KEY_FILE", raising=False)
    before = sha(store)
    with pytest.raises(importer.KeyMissing, match="SI_PSEUDONYM_KEY_FILE"):
        run(write_csv(tmp_path / "a.csv", GOOD))
    assert sha(store) == before


def test_key_file_outside_the_project_works_inside_is_refused(store, tmp_path, monkeypatch):
    monkeypatch.delenv("SI_PSEUDONYM_KEY", raising=False)
    outside = tmp_path / "key"
    outside.write_text(KEY + "\n")
    monkeypatch.setenv("SI_PSEUDONYM_KEY_FILE", str(outside))
    run(write_csv(tmp_path / "a.csv", GOOD))
    assert fetch(store, "select case_id from store.cases")["case_id"].to_list()[0] in {
        pseudonym(KEY, "case|S01", f"CR-{i}") for i in (1, 2, 3)}
    monkeypatch.setenv("SI_PSEUDONYM_KEY_FILE", str(settings.ROOT / "data" / "schema.sql"))
    with pytest.raises(importer.KeyMissing, match="inside the project folder"):
        run(tmp_path / "a.csv")


# ---------------------------------------------------------------- all or nothing


def test_reimporting_the_same_file_does_not_duplicate(key, store, tmp_path):
    path = write_csv(tmp_path / "a.csv", GOOD)
    run(path)
    again = run(path)
    assert (again.rows_added, again.rows_replaced) == (0, 3)
    assert fetch(store, "select count(*) as n from store.cases")["n"][0] == 3
    assert fetch(store, "select count(*) as n from store.marac_referrals")["n"][0] == 1
    log = fetch(store, "select rows_added, rows_replaced from store.import_log "
                       "order by imported_at")
    assert log.rows() == [(3, 0), (0, 3)]


def test_a_corrected_case_replaces_the_earlier_one(key, store, tmp_path):
    run(write_csv(tmp_path / "a.csv", GOOD))
    fixed = [GOOD[0] | {"dash_score": "20", "marac_meeting_date": "",
                        "marac_referring_agency": ""}]
    result = run(write_csv(tmp_path / "b.csv", fixed))
    assert (result.rows_added, result.rows_replaced) == (0, 1)
    cid = pseudonym(KEY, "case|S01", "CR-1")
    got = fetch(store, f"select dash_score from store.cases where case_id = '{cid}'")
    assert got["dash_score"].to_list() == [20]
    assert fetch(store, "select count(*) as n from store.marac_referrals")["n"][0] == 0


def test_same_case_reference_at_two_services_are_two_cases(key, store, tmp_path):
    run(write_csv(tmp_path / "a.csv", [GOOD[0]]))
    run(write_csv(tmp_path / "b.csv", [GOOD[0] | {"service_id": ""}]), service="S02")
    assert fetch(store, "select service_id from store.cases order by 1")[
        "service_id"].to_list() == ["S01", "S02"]


@pytest.mark.parametrize("already_imported", [False, True], ids=["empty", "with-cases"])
def test_a_crash_half_way_leaves_the_store_as_it_was(key, store, tmp_path, already_imported):
    if already_imported:
        run(write_csv(tmp_path / "first.csv", GOOD))
    before, count = sha(store), fetch(store, "select count(*) as n from store.cases")["n"][0]
    rows = [open_case(case_ref=f"N{i}", client_ref=f"P{i}") for i in range(10)] + GOOD
    seen = []

    def crash(written: int, total: int) -> None:
        seen.append((written, total))
        if written >= total // 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run(write_csv(tmp_path / "c.csv", rows), batch_rows=6, on_batch=crash)
    assert seen == [(6, 13), (12, 13)] or seen == [(6, 13)]
    assert seen[-1][0] >= 6, "the crash came after rows had been written"
    assert sha(store) == before
    assert fetch(store, "select count(*) as n from store.cases")["n"][0] == count
    # (.kind is the note of what the store holds, written when it was built.)
    assert sorted(p.name for p in store.parent.iterdir()
                  if "duckdb" in p.name and not p.name.endswith(".kind")) == [
        "insights.duckdb", "insights.duckdb.lock"], "no half-written copy left behind"


# ---------------------------------------------------------------- mapping


def test_alternative_names_and_codings_are_mapped(key, store, tmp_path):
    renames = {"case_ref": "Case Ref", "client_ref": "Client ID", "dash_score": "DASH score",
               "children_in_household": "No. of children", "marac_referred": "Referred to Marac",
               "referral_date": "Date of Referral", "abuse_physical": "Physical abuse"}
    codings = [("Y", "N", True), ("Yes", "No", True), ("1", "0", False), ("true", "false", True)]
    rows = []
    for i, (yes, no, marac) in enumerate(codings):
        r = row(case_ref=f"CR-{i}", referral_date=f"0{i + 1}/04/2024", gender="F",
                abuse_physical=yes, abuse_sexual=no, social_care="CIN",
                risk_level="High Risk", referral_source="Self-referral")
        if marac:
            r["marac_referred"] = yes
        else:
            r |= {"marac_referred": no, "marac_meeting_date": "", "marac_referring_agency": ""}
        rows.append({renames.get(k, k): v for k, v in r.items()})
    result = run(write_csv(tmp_path / "c.csv", rows))
    assert result.imported, result.problems
    assert result.renamed["No. of children"] == "children_in_household"
    got = fetch(store, "select referral_date, gender, abuse_physical, abuse_sexual, "
                       "marac_referred, social_care, risk_level, referral_source, dash_score, "
                       "children_in_household from store.cases order by referral_date")
    assert got["referral_date"].to_list() == [dt.date(2024, 4, d) for d in (1, 2, 3, 4)]
    assert got["abuse_physical"].to_list() == [True] * 4
    assert got["abuse_sexual"].to_list() == [False] * 4
    assert got["marac_referred"].to_list() == [True, True, False, True]
    assert set(got["gender"]) == {"female"} and set(got["social_care"]) == {"child_in_need"}
    assert set(got["risk_level"]) == {"high"} and set(got["referral_source"]) == {"self"}
    assert got["dash_score"].to_list() == [16] * 4
    assert got["children_in_household"].to_list() == [2] * 4


def test_two_columns_read_as_one_are_reported(key, store, tmp_path):
    r = row()
    result = run(write_csv(tmp_path / "c.csv", [{**r, "DASH": "3"}]))
    assert [(p["row"], p["field"]) for p in result.problems.rows(named=True)] == [
        (1, "dash_score")]


def test_unknown_columns_are_ignored_and_listed(key, store, tmp_path):
    result = run(write_csv(tmp_path / "c.csv", [{**row(), "Worker team": "North"}]))
    assert result.imported and result.ignored == ["Worker team"]
    assert not any(v == "North" for v in every_text_value(store))


# ---------------------------------------------------------------- stores and services


def test_synthetic_store_is_never_mixed_with_real_records(key, tmp_path, monkeypatch):
    path = tmp_path / "insights.duckdb"
    synth.write_sample(path, 2_000, 3)
    monkeypatch.setenv("SI_DB_PATH", str(path))
    before = sha(path)
    with pytest.raises(importer.ImportRefused, match="synthetic sample"):
        run(write_csv(tmp_path / "a.csv", GOOD))
    assert sha(path) == before

    message = registry.register_service(
        registry.Service("S01", "Real Idva", "idva", "E09000001"),
        registry.Area("E09000001", "City", "London", 4000))
    assert "new store for real records" in message
    meta = dict(fetch(path, "select key, value from store.meta").iter_rows())
    assert meta["data_kind"] == "real"
    assert fetch(path, "select count(*) as n from store.cases")["n"][0] == 0
    assert fetch(path, "select service_id from store.services")["service_id"].to_list() == [
        "S01"]
    assert run(tmp_path / "a.csv").rows_imported == 3


def test_unregistered_service_is_refused(key, store, tmp_path):
    with pytest.raises(importer.ImportRefused, match="S09 is not registered"):
        run(write_csv(tmp_path / "a.csv", GOOD), service="S09")


def test_register_a_second_service_in_an_existing_area(key, store):
    registry.register_service(registry.Service("S03", "Refuge", "refuge", "E06000001"))
    with pytest.raises(registry.RegistrationError, match="E07000099 is not registered"):
        registry.register_service(registry.Service("S04", "X", "idva", "E07000099"))
    assert registry.services(store)["service_id"].to_list() == ["S01", "S02", "S03"]


def test_the_app_sees_the_new_build_after_the_swap(key, store, tmp_path):
    """The dashboard holds the store open; after the swap a new handle must see new data
    (DuckDB would hand back the old build while a handle on it is open)."""
    held = db.Store(store)
    assert held.query("select count(*) as n from cases").frame["n"][0] == 0
    run(write_csv(tmp_path / "a.csv", GOOD))
    fresh = db.Store(store)
    assert fresh.query("select count(*) as n from cases").frame["n"][0] == 3
    fresh.close()


# ---------------------------------------------------------------- command line


def test_cli_import_succeeds_and_fails_with_problems(key, store, tmp_path, capsys):
    good = write_csv(tmp_path / "good.csv", GOOD)
    assert cli.main(["import", str(good), "--service", "S01", "--user", "a"]) == 0
    out = capsys.readouterr().out
    assert "3 cases imported for S01" in out and "2024-25 3" in out

    bad = write_csv(tmp_path / "bad.csv", [GOOD[0], GOOD[1] | {"dash_score": "25"}])
    before = sha(store)
    assert cli.main(["import", str(bad), "--service", "S01"]) == 1
    err = capsys.readouterr().err
    assert "row 3, dash_score: '25': must be between 0 and 24" in err
    assert sha(store) == before


def test_cli_refuses_without_key(store, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SI_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("SI_PSEUDONYM_KEY_FILE", raising=False)
    assert cli.main(["import", str(write_csv(tmp_path / "a.csv", GOOD)), "--service",
                     "S01"]) == 1
    assert "Nothing was imported" in capsys.readouterr().err


def test_cli_services_add_and_list(tmp_path, monkeypatch, capsys):
    path = tmp_path / "insights.duckdb"
    monkeypatch.setenv("SI_DB_PATH", str(path))
    assert cli.main(["services", "add", "--id", "S01", "--name", "Idva", "--type", "idva",
                     "--area", "E06000001", "--area-name", "Ashcombe", "--region", "NE",
                     "--population", "9000"]) == 0
    assert cli.main(["services", "add", "--id", "S02", "--name", "Outreach", "--type",
                     "outreach", "--area", "E06000001"]) == 0
    capsys.readouterr()
    assert cli.main(["services", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "S01\tidva\tE06000001\tIdva", "S02\toutreach\tE06000001\tOutreach"]
    assert os.path.exists(path)


@pytest.mark.parametrize("key_bytes", [b"k" * 16, b"0123456789abcdef" * 5],
                         ids=["short-key", "key-longer-than-a-block"])
def test_pseudonyms_are_hmac_sha256(key_bytes):
    from service_insights.ingest import pseudonym as pseudo

    refs = pl.Series(["CR-1", "CR-2", "CR-1", "Ünïcode ref"])
    got = pseudo.pseudonymise(refs, key_bytes, "case|S01").to_list()
    want = [hmac.digest(key_bytes, b"case|S01\x00" + r.encode(), "sha256").hex()[:32]
            for r in refs]
    assert got == want and got[0] == got[2] != got[1]


# ---------------------------------------------------------------- the Import page


def test_import_page_on_a_real_store_offers_its_services(key, store, tmp_path):
    from tests.conftest import app_test

    run(write_csv(tmp_path / "a.csv", GOOD))
    at = app_test()
    at.session_state["viewer"] = ADMIN  # real records need sign-in; importing is for admins
    at.run()
    at.switch_page("app_pages/import_data.py").run()
    assert not at.exception, at.exception
    assert [s.label for s in at.selectbox if s.label.startswith("Service the")]
    assert next(s for s in at.selectbox if s.label.startswith("Service the")).options == [
        "S01", "S02"]
    assert not at.warning, "the key is set, so no warning"


def test_import_page_without_key_explains_and_offers_no_upload(store, monkeypatch):
    from tests.conftest import app_test

    monkeypatch.delenv("SI_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("SI_PSEUDONYM_KEY_FILE", raising=False)
    at = app_test()
    at.session_state["viewer"] = ADMIN  # real records need sign-in; importing is for admins
    at.run()
    at.switch_page("app_pages/import_data.py").run()
    assert not at.exception
    assert "SI_PSEUDONYM_KEY_FILE" in at.warning[0].value
    assert not [s for s in at.selectbox if s.label.startswith("Service the")]


def test_import_page_on_the_sample_says_it_starts_a_real_store(key, app_env):
    from tests.conftest import app_test

    at = app_test()
    at.session_state["viewer"] = ADMIN  # real records need sign-in; importing is for admins
    at.run()
    at.switch_page("app_pages/import_data.py").run()
    assert not at.exception
    assert "synthetic sample" in at.info[0].value


@pytest.mark.parametrize("writer", [write_xlsx, write_parquet], ids=["xlsx", "parquet"])
def test_spreadsheet_and_parquet_problems_carry_the_spreadsheet_row(key, store, tmp_path,
                                                                    writer):
    rows = [GOOD[0], GOOD[1] | {"dash_score": "25"}, GOOD[2] | {"intake_date": "01/01/2025"}]
    ext = "xlsx" if writer is write_xlsx else "parquet"
    result = run(writer(tmp_path / f"bad.{ext}", rows))
    assert [(p["row"], p["field"], p["value"]) for p in result.problems.rows(named=True)] == [
        (3, "dash_score", "25"), (4, "intake_date", "2025-01-01")]
