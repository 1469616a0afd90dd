"""Marac files, area-wide case files and the linkage key: real files, real DuckDB stores.

Every expected figure is worked out by hand (or by plain Python over the rows the test
wrote, never by the product's code), and pseudonyms with hmac.digest directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from service_insights import settings
from service_insights.catalogue import catalog, periods, results
from service_insights.catalogue.scope import Scope
from service_insights.ingest import importer
from service_insights.store import db, registry
from tests.test_import import (
    KEY,
    TODAY,
    every_text_value,
    fetch,
    open_case,
    pseudonym,
    row,
    sha,
    write_csv,
)

AREA_A, AREA_B = "E06000001", "E06000002"
MARAC_HEADER = ["client_ref", "marac_area", "meeting_date", "referring_agency",
                "children_in_household", "dash_score", "perpetrator_ref", "service_id",
                "service_client_ref"]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.delenv("SI_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("SI_LINKAGE_KEY", raising=False)
    monkeypatch.setenv("SI_PSEUDONYM_KEY", KEY)
    return KEY


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """Two areas: S01 (Idva) and S02 (outreach) in A, S03 (Idva) in B."""
    path = tmp_path / "insights.duckdb"
    registry.start_real_store(
        path,
        [registry.Area(AREA_A, "Ashcombe", "North East", 50_000),
         registry.Area(AREA_B, "Brindlehurst", "North East", 60_000)],
        [registry.Service("S01", "Ashcombe Idva", "idva", AREA_A),
         registry.Service("S02", "Ashcombe Outreach", "outreach", AREA_A),
         registry.Service("S03", "Brindlehurst Idva", "idva", AREA_B)])
    monkeypatch.setenv("SI_DB_PATH", str(path))
    return path


def run(path: Path, service: str | None = "S01", **kw) -> importer.ImportResult:
    return importer.import_file(path, service, today=TODAY, user="analyst1", **kw)


def run_marac(path: Path, **kw) -> importer.MaracImportResult:
    return importer.import_marac_file(path, today=TODAY, user="coordinator", **kw)


def referral(client: str, area: str, day: str, agency: str = "police", children: int = 1,
             **over) -> dict[str, str]:
    r = {"client_ref": client, "marac_area": area, "meeting_date": day,
         "referring_agency": agency, "children_in_household": str(children)}
    r.update(over)
    return r


def write_marac(path: Path, rows: list[dict]) -> Path:
    return write_csv(path, rows, MARAC_HEADER)


def count(path: Path, sql: str) -> int:
    return int(fetch(path, sql).row(0)[0])


def hand_repeats(rows: list[tuple[str, str, dt.date]]) -> int:
    """Referrals within 365 days of the same victim's (area, client) previous referral,
    by a plain loop over the rows as written (no two of one victim share a day)."""
    last: dict[tuple[str, str], dt.date] = {}
    repeats = 0
    for area, client, day in sorted(rows, key=lambda r: r[2]):
        prev = last.get((area, client))
        if prev is not None and (day - prev).days <= 365:
            repeats += 1
        last[(area, client)] = day
    return repeats


# ---------------------------------------------------------------- cases re-import


def forty_cases(with_marac: bool) -> list[dict]:
    """40 cases at S01; 17 of them (the even-numbered cases 0 to 32) carry a Marac meeting
    when `with_marac`."""
    referred = set(range(0, 34, 2))
    assert len(referred) == 17
    rows = []
    for i in range(40):
        r = open_case(case_ref=f"CASE-{i}", client_ref=f"CLIENT-{i}",
                      referral_date="2024-05-01", intake_date="2024-05-02")
        if i in referred:
            r |= {"marac_referred": "yes", "marac_meeting_date": "2024-06-13",
                  "marac_referring_agency": "idva"}
        rows.append(r)
    if not with_marac:
        for r in rows:
            del r["marac_meeting_date"], r["marac_referring_agency"]
    return rows


def test_cases_reimport_without_marac_columns_keeps_their_referrals(key, store, tmp_path):
    """The issue's example: 17 of 40 cases carry a Marac referral; re-importing the cases
    from an export without the Marac columns must not delete those 17."""
    run(write_csv(tmp_path / "with.csv", forty_cases(True)))
    assert count(store, "select count(*) from store.marac_referrals") == 17
    again = run(write_csv(tmp_path / "without.csv", forty_cases(False)))
    assert again.imported and again.rows_replaced == 40
    assert count(store, "select count(*) from store.marac_referrals") == 17
    assert again.marac_kept == 17 and any("17 Marac referrals" in n for n in again.notes())


def test_cases_reimport_never_deletes_marac_file_referrals(key, store, tmp_path):
    """The same 17 referrals sent by the Marac coordinator (linked to S01's cases by
    service_client_ref) survive every cases re-import, with or without Marac columns, and
    the case rows' copies of them are replaced, not added twice."""
    run(write_csv(tmp_path / "cases.csv", forty_cases(True)))
    marac = [referral(f"M-{i}", AREA_A, "2024-06-13", "idva", 0, service_id="S01",
                      service_client_ref=f"CLIENT-{i}") for i in range(0, 34, 2)]
    got = run_marac(write_marac(tmp_path / "marac.csv", marac))
    assert got.imported and (got.rows_added, got.case_rows_replaced) == (17, 17)
    assert fetch(store, "select source, count(*) as n from store.marac_referrals "
                        "group by 1").rows() == [("marac_file", 17)]
    for name, rows in (("without.csv", forty_cases(False)), ("with.csv", forty_cases(True))):
        again = run(write_csv(tmp_path / name, rows))
        assert again.imported
        assert fetch(store, "select source, count(*) as n from store.marac_referrals "
                            "group by 1").rows() == [("marac_file", 17)], name
    assert again.marac_from_file == 17, "the case rows' copies were not added again"
    # The Marac file's referrals link to S01's cases through the client's pseudonym.
    linked = count(store, "select count(*) from store.marac_referrals m join store.cases c "
                          "on c.client_key = m.service_client_key and c.service_id = 'S01'")
    assert linked == 17


# ---------------------------------------------------------------- the Marac file


def test_independent_marac_file_imports_and_counts_equal_hand_computation(
        key, store, tmp_path):
    d = dt.date.fromisoformat
    rows = [
        # V1 at Marac A: referred by S01's Idva, then 365 days later by S02 (a repeat
        # across two referring services of one Marac), then 366 days after that (not).
        referral("V1", AREA_A, "2023-04-03", "idva", 2, service_id="S01",
                 service_client_ref="C-1", perpetrator_ref="P1", dash_score="18"),
        referral("V1", AREA_A, "2024-04-02", "housing", 2, service_id="S02",
                 service_client_ref="C-9", perpetrator_ref="P1"),
        referral("V1", AREA_A, "2025-04-03", "police", 2, perpetrator_ref="P2"),
        # V2 at A, twice in 2024, different perpetrators: a repeat, not the same perpetrator.
        referral("V2", AREA_A, "2024-05-01", perpetrator_ref="P7"),
        referral("V2", AREA_A, "2024-09-01", perpetrator_ref="P8"),
        # "V1" at Marac B is another victim (references are the Marac's own).
        referral("V1", AREA_B, "2024-04-20", "health", 0),
        # V3 at B: one referral only.
        referral("V3", AREA_B, "2024-10-10", "probation", 3),
    ]
    result = run_marac(write_marac(tmp_path / "marac.csv", rows))
    assert result.problems.height == 0, result.problems
    assert result.imported and (result.rows_read, result.rows_added) == (7, 7)

    stored = fetch(store, "select * from store.marac_referrals order by meeting_date")
    assert stored.height == 7 and set(stored["source"]) == {"marac_file"}
    first = stored.row(0, named=True)
    assert first["client_key"] == pseudonym(KEY, f"marac_client|{AREA_A}", "V1")
    assert first["service_client_key"] == pseudonym(KEY, "client|S01", "C-1")
    assert first["perpetrator_key"] == pseudonym(KEY, f"perpetrator|{AREA_A}", "P1")
    assert (first["dash_score"], first["children_in_household"]) == (18, 2)
    assert first["referral_id"] == hashlib.md5(
        f"{first['client_key']}\x1f2023-04-03\x1fidva\x1f0".encode()).hexdigest()
    assert all(0 <= k <= 255 for k in stored["record_key"])
    v1_b = stored.filter(stored["marac_area"] == AREA_B).row(0, named=True)
    assert v1_b["client_key"] == pseudonym(KEY, f"marac_client|{AREA_B}", "V1")

    by_hand = hand_repeats([(r["marac_area"], r["client_ref"], d(r["meeting_date"]))
                            for r in rows])
    assert by_hand == 2  # V1's second (365 days), V2's second
    assert count(store, "select count(*) from main.marac_referrals where is_repeat") == by_hand
    assert count(store, "select count(*) from main.marac_referrals "
                        "where is_repeat_same_perpetrator") == 1, "only V1's second"
    assert count(store, "select count(*) from main.marac_referrals where has_perpetrator") == 5
    area = result.by_area.rows_by_key("marac_area", named=True)
    assert (area[AREA_A][0]["referrals"], area[AREA_A][0]["victims"]) == (5, 2)
    assert (area[AREA_B][0]["referrals"], area[AREA_B][0]["victims"]) == (2, 2)
    assert area[AREA_A][0]["linked_to_a_case"] == 2
    log = fetch(store, "select kind, service_id, rows_in_file, rows_added from "
                       "store.import_log").rows()
    assert log == [("marac", None, 7, 7)]


def twelve_hundred(seed: int = 14) -> list[dict]:
    """1,200 referrals for 3 services' clients at two Maracs, every victim referred 2 to 5
    times (never twice on one day), in plain Python."""
    rng = random.Random(seed)
    rows, victim = [], 0
    while len(rows) < 1200:
        victim += 1
        svc = rng.choice(["S01", "S02", "S03"])
        area = AREA_B if svc == "S03" else AREA_A
        days = sorted(rng.sample(range(0, 1500), rng.randint(2, 5)))
        for day in days[: 1200 - len(rows)]:
            linked = rng.random() < 0.6
            rows.append(referral(
                f"MV{victim:04d}", area, (dt.date(2021, 4, 1) + dt.timedelta(day)).isoformat(),
                rng.choice(["police", "idva", "health", "housing"]), rng.randint(0, 4),
                service_id=svc if linked else "",
                service_client_ref=f"CL{victim}" if linked else "",
                perpetrator_ref=f"PP{victim}-{rng.randint(1, 2)}"))
    return rows


def test_twelve_hundred_referrals_for_three_services_all_load(key, store, tmp_path):
    """The issue's data set shape: clients with several referrals; one Marac referral per
    case row loaded 903 of 1,200. The Marac file loads every one."""
    rows = twelve_hundred()
    assert len(rows) == 1200 and len({r["client_ref"] for r in rows}) < 600
    result = run_marac(write_marac(tmp_path / "twelve.csv", rows))
    assert result.imported and result.rows_added == 1200
    assert count(store, "select count(*) from store.marac_referrals") == 1200
    d = dt.date.fromisoformat
    by_hand = hand_repeats([(r["marac_area"], r["client_ref"], d(r["meeting_date"]))
                            for r in rows])
    assert count(store, "select count(*) from main.marac_referrals where is_repeat") == by_hand
    per_service = {s: sum(1 for r in rows if r["service_id"] == s) for s in ("S01", "S02", "S03")}
    got = dict(fetch(store, "select service_id, count(*) from store.marac_referrals "
                            "where service_id is not null group by 1").rows())
    assert got == per_service


def test_unregistered_marac_area_is_refused_with_the_registered_list(key, store, tmp_path):
    before = sha(store)
    rows = [referral("V1", AREA_A, "2024-05-01"), referral("V2", "E09000033", "2024-05-02")]
    result = run_marac(write_marac(tmp_path / "m.csv", rows))
    assert not result.imported
    assert result.problems.rows() == [
        (3, "marac_area", "E09000033",
         f"not a registered Marac area; registered areas are {AREA_A}, {AREA_B}")]
    assert sha(store) == before


def test_bad_rows_are_named_by_row_and_field_and_nothing_is_written(key, store, tmp_path):
    run_marac(write_marac(tmp_path / "first.csv", [referral("V0", AREA_A, "2024-01-05")]))
    before = sha(store)
    rows = [
        referral("V1", AREA_A, "2024-05-01"),
        referral("V2", AREA_A, "31/02/2024"),                       # row 3: no such date
        referral("V3", AREA_A, "2024-05-03", "neighbour"),          # row 4: agency
        referral("", AREA_A, "2024-05-04", children=25),            # row 5: two problems
        referral("V5", AREA_A, "2024-05-05", service_id="S01"),     # row 6: no client ref
        referral("V6", AREA_A, "2024-05-06", service_id="S09",      # row 7: not registered
                 service_client_ref="C6"),
        referral("V7", AREA_A, "2024-05-07", dash_score="30"),      # row 8
    ]
    result = run_marac(write_marac(tmp_path / "bad.csv", rows))
    assert not result.imported
    got = [(r, f) for r, f, _, _ in result.problems.rows()]
    assert got == [(3, "meeting_date"), (4, "referring_agency"), (5, "client_ref"),
                   (5, "children_in_household"), (6, "service_client_ref"),
                   (7, "service_id"), (8, "dash_score")]
    assert "registered services are S01, S02, S03" in result.problems.row(5)[3]
    assert sha(store) == before
    assert count(store, "select count(*) from store.marac_referrals") == 1


def test_missing_marac_columns_are_named(key, store, tmp_path):
    path = write_csv(tmp_path / "m.csv", [{"client_ref": "V1", "meeting_date": "2024-05-01"}])
    result = run_marac(path)
    assert sorted(f for _, f, _, _ in result.problems.rows()) == [
        "children_in_household", "marac_area", "referring_agency"]


def test_reimporting_a_marac_file_replaces_its_rows(key, store, tmp_path):
    rows = [referral("V1", AREA_A, "2024-05-01"), referral("V1", AREA_A, "2024-05-01"),
            referral("V2", AREA_A, "2024-06-01", "idva")]
    path = write_marac(tmp_path / "m.csv", rows)
    first = run_marac(path)
    again = run_marac(path)
    assert (first.rows_added, first.rows_replaced) == (3, 0)
    assert (again.rows_added, again.rows_replaced) == (0, 3)
    assert count(store, "select count(*) from store.marac_referrals") == 3
    # A later file with one more meeting adds only that one.
    more = run_marac(write_marac(tmp_path / "m2.csv",
                                 rows + [referral("V2", AREA_A, "2024-07-01")]))
    assert (more.rows_added, more.rows_replaced) == (1, 3)
    assert fetch(store, "select rows_added, rows_replaced from store.import_log "
                        "order by imported_at").rows() == [(3, 0), (0, 3), (1, 3)]


def test_cli_imports_a_marac_file_and_refuses_a_bad_one(key, store, tmp_path, capsys):
    from service_insights import cli

    good = write_marac(tmp_path / "m.csv", [referral("V1", AREA_A, "2024-05-01")])
    assert cli.main(["import", str(good), "--marac"]) == 0
    out = capsys.readouterr().out
    assert "1 Marac referrals imported" in out and f"{AREA_A}: 1 referrals, 1 victims" in out
    bad = write_marac(tmp_path / "b.csv", [referral("V1", "X1", "2024-05-01")])
    assert cli.main(["import", str(bad), "--marac"]) == 1
    err = capsys.readouterr().err
    assert "row 2, marac_area: 'X1': not a registered Marac area" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- area-wide case files


def area_rows() -> list[dict]:
    return [
        row(service_id="S01"),
        open_case(case_ref="CR-2", client_ref="CL-2", service_id="S01"),
        open_case(case_ref="CR-1", client_ref="CL-1", service_id="S02"),  # same ref, S02
        open_case(case_ref="CR-7", client_ref="CL-7", service_id="S03"),
        row(case_ref="CR-8", client_ref="CL-8", service_id="S03"),
    ]


def test_area_wide_file_imports_per_service(key, store, tmp_path):
    result = run(write_csv(tmp_path / "area.csv", area_rows()), service=None)
    assert result.problems.height == 0, result.problems
    assert result.imported and result.rows_added == 5
    assert result.by_service.select("service_id", "cases_in_file", "new",
                                    "marac_referrals").rows() == [
        ("S01", 2, 2, 1), ("S02", 1, 1, 0), ("S03", 2, 2, 1)]
    assert fetch(store, "select service_id, count(*) from store.cases group by 1 "
                        "order by 1").rows() == [("S01", 2), ("S02", 1), ("S03", 2)]
    s03 = pseudonym(KEY, "case|S03", "CR-8")
    assert fetch(store, "select marac_area from store.marac_referrals where referral_id = "
                        f"'{s03}'").rows() == [(AREA_B,)], "a case's Marac is its service's"
    assert fetch(store, "select service_id, rows_added from store.import_log "
                        "order by service_id").rows() == [("S01", 2), ("S02", 1), ("S03", 2)]
    again = run(write_csv(tmp_path / "area.csv", area_rows()), service=None)
    assert (again.rows_added, again.rows_replaced) == (0, 5)


@pytest.mark.parametrize("bad, field, message", [
    ({"service_id": "S03", "dash_score": "31"}, "dash_score", "between 0 and 24"),
    ({"service_id": "S09"}, "service_id", "not a registered service you may import for"),
    ({"service_id": ""}, "service_id", "required in an area-wide file"),
])
def test_mixed_service_file_with_one_bad_row_is_refused_whole(key, store, tmp_path, bad,
                                                              field, message):
    before = sha(store)
    rows = area_rows()
    rows[3] = rows[3] | bad
    result = run(write_csv(tmp_path / "area.csv", rows), service=None)
    assert not result.imported
    assert [(r, f) for r, f, _, _ in result.problems.rows()] == [(5, field)]
    assert message in result.problems.row(0)[3]
    assert sha(store) == before


def test_area_wide_rows_are_checked_against_what_the_user_may_import(key, store, tmp_path):
    """A user who may import for S01 and S02 only: the S03 rows are refused, by row."""
    before = sha(store)
    result = run(write_csv(tmp_path / "area.csv", area_rows()), service=None,
                 services=["S01", "S02"])
    assert [(r, f) for r, f, _, _ in result.problems.rows()] == [(5, "service_id"),
                                                                (6, "service_id")]
    assert "S01, S02" in result.problems.row(0)[3]
    assert sha(store) == before


# ---------------------------------------------------------------- the linkage key


def nhs(nine: str) -> str:
    """A valid NHS number from nine digits (modulus 11, by hand)."""
    total = sum(int(c) * w for c, w in zip(nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    assert check != 10
    return nine + str(0 if check == 11 else check)


def link(identifier: str) -> str:
    return pseudonym(KEY, "link", identifier)


NHS_A = nhs("401023213")  # a made-up number with a valid check digit


def with_identifiers(rows: list[dict], ids: list[tuple[str, str, str]]) -> list[dict]:
    return [r | {"NHS Number": n, "Surname": s, "Date of Birth": b}
            for r, (n, s, b) in zip(rows, ids, strict=True)]


def test_linkage_key_is_off_by_default_and_identifiers_never_stored(key, store, tmp_path):
    assert settings.get().linkage_key is False
    rows = with_identifiers([referral("V1", AREA_A, "2024-05-01")],
                            [(NHS_A, "O'Brien", "1990-02-03")])
    result = run_marac(write_marac_any(tmp_path / "m.csv", rows))
    assert result.imported and result.linkage_keys is None
    assert set(result.dropped) == {"NHS Number", "Surname", "Date of Birth"}
    assert fetch(store, "select linkage_key from store.marac_referrals").rows() == [(None,)]
    values = every_text_value(store)
    assert not {NHS_A, "O'Brien", "OBRIEN", "1990-02-03"} & values


def write_marac_any(path: Path, rows: list[dict]) -> Path:
    """Every column any row has (the identifier columns too)."""
    return write_csv(path, rows, list(dict.fromkeys(k for r in rows for k in r)))


def test_linkage_key_links_one_person_across_services_and_maracs(
        key, store, tmp_path, monkeypatch):
    monkeypatch.setenv("SI_LINKAGE_KEY", "1")
    cases = with_identifiers(
        [open_case(case_ref="K1", client_ref="A1", service_id="S01"),
         open_case(case_ref="K2", client_ref="B7", service_id="S03"),
         open_case(case_ref="K3", client_ref="B8", service_id="S03")],
        [(f"{NHS_A[:3]} {NHS_A[3:6]} {NHS_A[6:]}", "", ""),   # spaced NHS number
         ("", "Ó Brién", "03/02/1990"),                       # accents, UK date
         ("", "", "")])                                       # nothing to link on
    result = run(write_csv(tmp_path / "cases.csv", cases), service=None)
    assert result.imported and result.linkage_keys == 2
    marac = with_identifiers(
        [referral("V1", AREA_A, "2024-05-01"), referral("W4", AREA_B, "2024-06-01")],
        [(NHS_A, "", ""), ("", "O'BRIEN", "1990-02-03")])
    got = run_marac(write_marac_any(tmp_path / "m.csv", marac))
    assert got.imported and got.linkage_keys == 2
    keys = dict(fetch(store, "select case_id, linkage_key from store.cases").rows())
    assert keys[pseudonym(KEY, "case|S01", "K1")] == link(f"nhs:{NHS_A}")
    assert keys[pseudonym(KEY, "case|S03", "K2")] == link("sd:OBRIEN|1990-02-03")
    assert keys[pseudonym(KEY, "case|S03", "K3")] is None
    assert sorted(fetch(store, "select linkage_key from store.marac_referrals").to_series()
                  ) == sorted([link(f"nhs:{NHS_A}"), link("sd:OBRIEN|1990-02-03")])
    values = every_text_value(store)
    assert not {NHS_A, "Ó Brién", "O'BRIEN", "OBRIEN", "1990-02-03", "03/02/1990"} & values


def test_invalid_nhs_number_is_a_problem_and_not_echoed(key, store, tmp_path, monkeypatch):
    monkeypatch.setenv("SI_LINKAGE_KEY", "1")
    wrong = NHS_A[:9] + str((int(NHS_A[9]) + 1) % 10)
    rows = with_identifiers([referral("V1", AREA_A, "2024-05-01")], [(wrong, "", "")])
    result = run_marac(write_marac_any(tmp_path / "m.csv", rows))
    assert result.problems.rows() == [
        (2, "nhs_number", "(not shown)", "not a valid NHS number (10 digits with a valid "
         "check digit); leave it blank if it is not known")]


def linkage_world(tmp_path: Path) -> None:
    """Hand-made rows (NHS numbers made up, with valid check digits):
    X heard at A on 2024-06-01 and at B on 2025-03-01 (273 days later): B's is 'another
      Marac'; A's is not (B's came after).
    Y heard at A on 2023-01-10 and at B on 2024-06-01 (508 days): neither.
    Z supported by S03 (closed 2024-05-01) and heard at A on 2024-12-01 (214 days after
      the exit), referred from S01: 'another service'.
    W supported by S01 (open) and heard at A on 2024-09-01 referred from S01 itself: not
      another service (its own case), and no other Marac.
    """
    x, y, z, w = nhs("401023213"), nhs("943476591"), nhs("123456788"), nhs("987654321")
    cases = with_identifiers(
        [row(case_ref="Z1", client_ref="Z", service_id="S03", referral_date="2024-01-10",
             intake_date="2024-01-12", exit_date="2024-05-01", marac_meeting_date="",
             marac_referred="no", marac_referring_agency=""),
         open_case(case_ref="W1", client_ref="W", service_id="S01",
                   referral_date="2024-03-01", intake_date="2024-03-02")],
        [(z, "", ""), (w, "", "")])
    assert run(write_csv(tmp_path / "cases.csv", cases), service=None).imported
    marac = with_identifiers(
        [referral("X-A", AREA_A, "2024-06-01"), referral("X-B", AREA_B, "2025-03-01"),
         referral("Y-A", AREA_A, "2023-01-10"), referral("Y-B", AREA_B, "2024-06-01"),
         referral("Z-A", AREA_A, "2024-12-01", "idva", service_id="S01",
                  service_client_ref="Zs"),
         referral("W-A", AREA_A, "2024-09-01", "idva", service_id="S01",
                  service_client_ref="W"),
         referral("N-A", AREA_A, "2024-10-01")],  # no identifier: no linkage key
        [(x, "", ""), (x, "", ""), (y, "", ""), (y, "", ""), (z, "", ""), (w, "", ""),
         ("", "", "")])
    assert run_marac(write_marac_any(tmp_path / "m.csv", marac)).imported


def test_linkage_flags_on_hand_made_rows(key, store, tmp_path, monkeypatch):
    monkeypatch.setenv("SI_LINKAGE_KEY", "1")
    linkage_world(tmp_path)
    got = fetch(store, "select marac_area, meeting_date, has_linkage_key, "
                       "heard_at_other_marac_12m, supported_by_other_service_12m "
                       "from main.marac_referrals order by meeting_date, marac_area").rows()
    d = dt.date.fromisoformat
    assert got == [
        (AREA_A, d("2023-01-10"), True, False, False),   # Y at A
        (AREA_A, d("2024-06-01"), True, False, False),   # X at A (B came later)
        (AREA_B, d("2024-06-01"), True, False, False),   # Y at B: 508 days after A
        (AREA_A, d("2024-09-01"), True, False, False),   # W: its own service only
        (AREA_A, d("2024-10-01"), False, None, None),    # no identifier
        (AREA_A, d("2024-12-01"), True, False, True),    # Z: S03 within 12 months
        (AREA_B, d("2025-03-01"), True, True, False),    # X at B: A 273 days before
    ]


def test_linkage_chart_runs_through_the_catalogue(key, store, tmp_path, monkeypatch):
    """The chart reads only the flags, in aggregate, through results.run. Read by S01's
    own manager (exact counts): of the linked referrals S01 made (Z's and W's, the rows
    above), one was also supported by another service (Z, at S03), none heard at another
    Marac. Both counts are 1 or 0 of a base of 2, so the screen shows "<5"/0 and withholds
    the rates (base under 10); the keyed counts behind them are exact."""
    monkeypatch.setenv("SI_LINKAGE_KEY", "1")
    linkage_world(tmp_path)
    entry = {e.id: e for e in catalog.discover(settings.get().queries_dir)}[
        "marac/heard_elsewhere"]
    assert entry.spec is not None, entry
    period = periods.Period(dt.date(2023, 1, 1), dt.date(2025, 3, 31), "t")
    s = db.Store(store)
    try:
        own = results.run(s, entry.spec, Scope(("S01",), (AREA_A,), True, "S01"), period,
                          settings.get(), results.Audience(visible=("S01",), own=("S01",)))
        everyone = results.run(s, entry.spec, Scope(None, None, False, "All"), period,
                               settings.get())
    finally:
        s.close()
    assert own.error is None and everyone.error is None
    assert not own.perturbed and everyone.perturbed
    got = own.data.frame.row(0, named=True)
    assert got["other_marac"] == 0, "0 is shown as 0"
    assert own.data.hidden["other_service"] == [True], "1 is shown as <5"
    assert got["pct_other_service"] is None, "a rate on a base of 2 is withheld"
    assert everyone.data.unkeyed == (), "every count is keyed, so perturbed, not withheld"


def test_query_files_cannot_read_the_linkage_or_perpetrator_keys(key, store):
    cols = db.relation_columns(settings.get().schema_path.read_text())
    for hidden in ("linkage_key", "perpetrator_key", "record_key"):
        assert hidden not in cols["marac_referrals"] and hidden not in cols["cases"]


def test_cli_area_wide_import_prints_each_service(key, store, tmp_path):
    path = write_csv(tmp_path / "area.csv", area_rows())
    out = subprocess.run([sys.executable, "-m", "service_insights.cli", "import", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "S02: 1 cases (1 new, 0 replacing)" in out.stdout


def test_same_perpetrator_repeat_rate_beside_the_repeat_rate(key, store, tmp_path):
    """Five copies of three victims, all referred by S01, read by S01's own manager
    (exact counts). Per copy: V1 with P1, P1 100 days later, P2 100 days after that;
    V2 with P7 twice 400 days apart; V3 (no perpetrator) twice 50 days apart.
    Repeats by hand: V1's 2nd and 3rd, V3's 2nd = 3 per copy, 15 of 35 (42.9%).
    Same victim and perpetrator: V1's 2nd = 1 per copy, 5 of the 25 with a perpetrator
    (20.0%)."""
    d0 = dt.date(2024, 4, 10)

    def day(n: int) -> str:
        return (d0 + dt.timedelta(n)).isoformat()

    rows = []
    for c in range(5):
        link = {"service_id": "S01"}
        rows += [
            referral(f"V1-{c}", AREA_A, day(0), perpetrator_ref=f"P1-{c}",
                     service_client_ref=f"A{c}", **link),
            referral(f"V1-{c}", AREA_A, day(100), perpetrator_ref=f"P1-{c}",
                     service_client_ref=f"A{c}", **link),
            referral(f"V1-{c}", AREA_A, day(200), perpetrator_ref=f"P2-{c}",
                     service_client_ref=f"A{c}", **link),
            referral(f"V2-{c}", AREA_A, day(0), perpetrator_ref=f"P7-{c}",
                     service_client_ref=f"B{c}", **link),
            referral(f"V2-{c}", AREA_A, day(400), perpetrator_ref=f"P7-{c}",
                     service_client_ref=f"B{c}", **link),
            referral(f"V3-{c}", AREA_A, day(0), service_client_ref=f"C{c}", **link),
            referral(f"V3-{c}", AREA_A, day(50), service_client_ref=f"C{c}", **link),
        ]
    assert run_marac(write_marac(tmp_path / "m.csv", rows)).imported
    entry = {e.id: e for e in catalog.discover(settings.get().queries_dir)}[
        "marac/repeat_rate_same_perpetrator"]
    s = db.Store(store)
    try:
        res = results.run(s, entry.spec, Scope(("S01",), (AREA_A,), True, "S01"),
                          periods.Period(dt.date(2024, 4, 1), dt.date(2025, 6, 1), "t"),
                          settings.get(), results.Audience(visible=("S01",), own=("S01",)))
    finally:
        s.close()
    assert res.error is None, res.error
    assert not res.perturbed
    got = res.data.frame.row(0, named=True)
    assert (got["repeat_referrals"], got["referrals_heard"]) == (15, 35)
    assert (got["same_perpetrator_repeats"], got["referrals_with_perpetrator"]) == (5, 25)
    assert (got["pct_repeat"], got["pct_repeat_same_perpetrator"]) == (42.9, 20.0)


def test_import_page_offers_cases_area_wide_and_marac_files(key, store):
    from tests.conftest import app_test
    from tests.test_import import ADMIN

    at = app_test()
    at.session_state["viewer"] = ADMIN
    at.run()
    at.switch_page("app_pages/import_data.py").run()
    assert not at.exception, at.exception
    kinds = next(r for r in at.radio if r.label == "What the file holds")
    assert len(kinds.options) == 3
    assert [s for s in at.selectbox if s.label.startswith("Service the")]
    kinds.set_value("area").run()
    assert not [s for s in at.selectbox if s.label.startswith("Service the")]
    assert any("S01, S02, S03" in c.value for c in at.caption)
    next(r for r in at.radio if r.label == "What the file holds").set_value("marac").run()
    assert not at.exception
    assert [b.label for b in at.get("download_button")] == [
        "Download the cases template (CSV)", "Download the Marac template (CSV)"]
