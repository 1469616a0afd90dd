"""Marac files, area-wide case files and the linkage key: real files, real DuckDB stores.

Every expected figure is worked out by hand (or by plain Python over the rows the test
wrote), and pseudonyms with hmac.digest directly, never read back from the importer.
"""

from __future__ import annotations

import pytest

from tests.test_import import (  # noqa: F401  (fixtures)
    KEY,
    fetch,
    key,
    open_case,
    row,
    run,
    store,
    write_csv,
)


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


def count(path, sql: str) -> int:
    return int(fetch(path, sql).row(0)[0])


def test_cases_reimport_without_marac_columns_keeps_their_referrals(key, store, tmp_path):
    """The issue's example: 17 of 40 cases carry a Marac referral; re-importing the cases
    from an export without the Marac columns must not delete those 17."""
    run(write_csv(tmp_path / "with.csv", forty_cases(True)))
    assert count(store, "select count(*) from store.marac_referrals") == 17
    again = run(write_csv(tmp_path / "without.csv", forty_cases(False)))
    assert again.imported and again.rows_replaced == 40
    assert count(store, "select count(*) from store.marac_referrals") == 17
