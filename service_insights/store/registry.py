"""Registering services and areas, and starting a store for real records.

Real and synthetic cases are never mixed: a benchmark of real services against
fictional ones would be meaningless. Registering a service when the store holds the
synthetic sample (or there is no store) therefore starts a fresh store from
data/schema.sql for real records; the sample can be rebuilt elsewhere at any time with
`service-insights sample --out FILE`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from service_insights import settings
from service_insights.store import db

SERVICE_TYPES = ("idva", "outreach", "cyp", "refuge", "perpetrator")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")


class RegistrationError(Exception):
    """The service or area cannot be registered; the message says why."""


@dataclass(frozen=True)
class Area:
    area_code: str
    name: str
    region: str
    adult_female_population: int


@dataclass(frozen=True)
class Service:
    service_id: str
    name: str
    service_type: str
    area_code: str
    idva_fte: float | None = None
    """Full-time-equivalent Idvas working for the service (schema 7); None when not given."""
    admin_fte: float | None = None
    """Full-time-equivalent Marac administrators the service funds; None when not given."""


def _frame(services: list[Service]) -> pl.DataFrame:
    """Services as rows for store.services, with the FTE columns typed even when blank."""
    return pl.DataFrame([s.__dict__ for s in services], schema={
        "service_id": pl.String, "name": pl.String, "service_type": pl.String,
        "area_code": pl.String, "idva_fte": pl.Float64, "admin_fte": pl.Float64})


def data_kind(path: Path) -> str | None:
    """`real`, `synthetic`, or None when there is no store yet."""
    if not Path(path).exists():
        return None
    return db.read_meta(path).get("data_kind")


def _check(service: Service, area: Area | None) -> None:
    if not _ID.match(service.service_id):
        raise RegistrationError(f"Service id {service.service_id!r}: use up to 20 letters, "
                                "digits, '-' or '_', such as S01.")
    if not service.name.strip():
        raise RegistrationError("The service needs a name.")
    if service.service_type not in SERVICE_TYPES:
        raise RegistrationError(f"Service type {service.service_type!r} is not one of "
                                f"{', '.join(SERVICE_TYPES)}.")
    if not _ID.match(service.area_code):
        raise RegistrationError(f"Area code {service.area_code!r}: use the local authority "
                                "code, such as E06000001.")
    if area is not None:
        if not area.name.strip() or not area.region.strip():
            raise RegistrationError("A new area needs a name and a region.")
        if area.adult_female_population <= 0:
            raise RegistrationError("The area's adult female population must be more than 0.")
    for name in ("idva_fte", "admin_fte"):
        value = getattr(service, name)
        if value is not None and not (0 <= value <= 9999):
            raise RegistrationError(f"{name} {value!r}: give the full-time equivalents as a "
                                    "number from 0 (such as 2.5), or leave it blank.")


def register_service(service: Service, area: Area | None = None,
                     path: Path | None = None) -> str:
    """Add or update a service (and its area); returns a sentence for the user."""
    path = Path(path or settings.get().db_path)
    _check(service, area)
    kind = data_kind(path)
    if kind != "real":
        if area is None:
            raise RegistrationError(
                "This starts a new store for real records, so the service's area is needed "
                "too: give its name, region and adult female population.")
        start_real_store(path, [area], [service])
        was = "held the synthetic sample" if kind == "synthetic" else "did not exist"
        return (f"Registered {service.service_id} ({service.name}). The store {was}, so a "
                f"new store for real records was started at {path}; the synthetic sample is "
                "not mixed with real records (rebuild it elsewhere with "
                "`service-insights sample --out FILE`).")

    def change(w: db.Writer) -> None:
        known = w.fetch("select count(*) as n from store.areas where area_code = $a",
                        {"a": service.area_code})["n"][0]
        if area is not None:
            w.execute("delete from store.areas where area_code = $a", {"a": area.area_code})
            w.append("store.areas", pl.DataFrame([area.__dict__]))
        elif not known:
            raise RegistrationError(
                f"Area {service.area_code} is not registered: give its name, region and "
                "adult female population.")
        w.execute("delete from store.services where service_id = $s",
                  {"s": service.service_id})
        w.append("store.services", _frame([service]))

    db.rewrite_store(path, change)
    return f"Registered {service.service_id} ({service.name}) in {service.area_code}."


def start_real_store(path: Path, areas: list[Area], services: list[Service]) -> Path:
    """A fresh, empty store for real records with these reference rows."""

    def load(w: db.Writer) -> None:
        w.append("store.areas", pl.DataFrame([a.__dict__ for a in areas]))
        w.append("store.services", _frame(services))
        w.execute("insert into store.meta values ('data_kind', 'real'), ('data_as_of', $d)",
                  {"d": dt.date.today().isoformat()})

    return db.build_store(path, settings.get().schema_path.read_text(), load)


def services(path: Path | None = None) -> pl.DataFrame:
    """The registered services (empty when there is no store)."""
    path = Path(path or settings.get().db_path)
    if not path.exists():
        return pl.DataFrame(schema={"service_id": pl.String, "name": pl.String})
    s = db.Store(path)
    try:
        return s.query("select service_id, name, service_type, area_code, "
                       "idva_fte::double as idva_fte, admin_fte::double as admin_fte "
                       "from main.services "
                       "order by service_id").frame
    finally:
        s.close()


def area_codes(path: Path | None = None) -> list[str]:
    """The registered area codes (empty when there is no store)."""
    path = Path(path or settings.get().db_path)
    if not path.exists():
        return []
    s = db.Store(path)
    try:
        return s.query("select area_code from main.areas order by area_code").frame[
            "area_code"].to_list()
    finally:
        s.close()
