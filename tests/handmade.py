"""Build small stores from hand-made rows, for "given these rows, expect these" tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from service_insights import settings
from service_insights.store import db

AREAS = [
    {"area_code": "E0000000A", "name": "Area A", "region": "North",
     "adult_female_population": 10_000},
    {"area_code": "E0000000B", "name": "Area B", "region": "South",
     "adult_female_population": 20_000},
]
SERVICES = [
    {"service_id": f"S{i}", "name": f"Service {i}", "service_type": "idva",
     "area_code": "E0000000A" if i <= 3 else "E0000000B"}
    for i in range(1, 7)
]

_counter = iter(range(1, 10**9))


def case(**over) -> dict:
    n = next(_counter)
    row = {
        "case_id": f"C{n}", "client_key": f"K{n}", "service_id": "S1",
        "referral_date": dt.date(2024, 6, 1), "intake_date": dt.date(2024, 6, 2),
        "exit_date": None, "referral_source": "police", "age_band": "31-40",
        "gender": "female", "ethnicity": "white", "disability": "no", "lgbt": "no",
        "dash_score": 10, "risk_level": "medium", "abuse_physical": True,
        "abuse_sexual": False, "abuse_coercive_control": True, "abuse_stalking": False,
        "abuse_economic": False, "perpetrator": "ex_partner", "abuse_months": 12,
        "children_in_household": 0, "youngest_child_age_band": None, "social_care": None,
        "marac_referred": False, "whole_family_support": None, "abuse_ceased": None,
        "risk_reduced": None, "feels_safer": None, "quality_of_life_improved": None,
        "record_key": (n * 151) % 256,
    }
    row.update(over)
    if row["intake_date"] is not None and row["intake_date"] < row["referral_date"]:
        row["intake_date"] = row["referral_date"]
    return row


def referral(client_key: str, meeting_date: dt.date, **over) -> dict:
    n = next(_counter)
    row = {"referral_id": f"M{n}", "client_key": client_key, "marac_area": "E0000000A",
           "service_id": "S1", "meeting_date": meeting_date, "referring_agency": "police",
           "children_in_household": 0, "record_key": (n * 151) % 256}
    row.update(over)
    return row


_CASE_SCHEMA = {
    "referral_date": pl.Date, "intake_date": pl.Date, "exit_date": pl.Date,
    "dash_score": pl.Int8, "children_in_household": pl.Int8, "abuse_months": pl.Int32,
    "youngest_child_age_band": pl.String, "social_care": pl.String,
    "whole_family_support": pl.Boolean, "abuse_ceased": pl.Boolean,
    "risk_reduced": pl.Boolean, "feels_safer": pl.Boolean,
    "quality_of_life_improved": pl.Boolean, "record_key": pl.Int16,
}


def build(path: Path, cases: list[dict], referrals: list[dict] = (),
          services: list[dict] = SERVICES, areas: list[dict] = AREAS,
          data_kind: str = "synthetic") -> Path:
    def load(w: db.Writer) -> None:
        w.append("store.areas", pl.DataFrame(areas))
        w.append("store.services", pl.DataFrame(services))
        if cases:
            w.append("store.cases", pl.DataFrame(cases, schema_overrides=_CASE_SCHEMA))
        if referrals:
            w.append("store.marac_referrals", pl.DataFrame(
                list(referrals),
                schema_overrides={"meeting_date": pl.Date, "record_key": pl.Int16}))
        w.execute("insert into store.meta values ('data_kind', $k), ('data_as_of', '2025-03-31')",
                  {"k": data_kind})

    return db.build_store(path, settings.get().schema_path.read_text(), load)
