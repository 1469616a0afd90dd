"""A selection (scope and period) from what a user chose: the sidebar's areas and services,
or area codes, service ids and a financial year typed at the command line. Unknown codes
are refused by name rather than exporting nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from service_insights.catalogue import periods
from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.store import db


@dataclass(frozen=True)
class Selection:
    """What every page shows: a scope (already narrowed to the viewer) and a period."""

    scope: Scope
    period: Period


def resolve_scope(services: pl.DataFrame, areas: list[str], chosen: list[str]) -> Scope:
    """Turn the sidebar's choice into a Scope: chosen services win over chosen areas."""
    if chosen:
        rows = services.filter(pl.col("service_id").is_in(chosen))
        names = rows["name"].to_list()
        label = names[0] if len(names) == 1 else f"{len(names)} services"
        return Scope(tuple(sorted(chosen)), tuple(sorted(set(rows["area_code"]))), True, label)
    if areas:
        rows = services.filter(pl.col("area_code").is_in(areas))
        names = sorted(set(rows["area_name"].to_list()))
        label = names[0] if len(names) == 1 else f"{len(names)} areas"
        return Scope(tuple(sorted(rows["service_id"])), tuple(sorted(areas)), False, label)
    return ALL_SERVICES


def services_table(store: db.Store) -> pl.DataFrame:
    return store.query("select service_id, name, area_code, area_name from main.services "
                       "order by service_id").frame


def scope_for(store: db.Store, areas: Sequence[str] = (),
              services: Sequence[str] = ()) -> Scope:
    """Chosen services win over chosen areas (as in the sidebar); none means all services."""
    table = services_table(store)
    known_services = set(table["service_id"].to_list())
    known_areas = set(table["area_code"].to_list())
    unknown = [s for s in services if s not in known_services]
    if unknown:
        raise ValueError(f"unknown service id {', '.join(unknown)}; the store has "
                         f"{', '.join(sorted(known_services))}")
    unknown = [a for a in areas if a not in known_areas]
    if unknown:
        raise ValueError(f"unknown area code {', '.join(unknown)}; the store has "
                         f"{', '.join(sorted(known_areas))}")
    if services:
        rows = table.filter(pl.col("service_id").is_in(list(services)))
        names = rows["name"].to_list()
        label = names[0] if len(names) == 1 else f"{len(names)} services"
        return Scope(tuple(sorted(set(services))), tuple(sorted(set(rows["area_code"]))),
                     True, label)
    if areas:
        rows = table.filter(pl.col("area_code").is_in(list(areas)))
        names = sorted(set(rows["area_name"].to_list()))
        label = names[0] if len(names) == 1 else f"{len(names)} areas"
        return Scope(tuple(sorted(rows["service_id"])), tuple(sorted(set(areas))), False,
                     label)
    return ALL_SERVICES


def each_service(store: db.Store, scope: Scope) -> list[Scope]:
    """One single-service scope per service in `scope`, labelled with the service's name."""
    table = services_table(store)
    wanted = set(scope.services or table["service_id"].to_list())
    return [Scope((sid,), (area,), True, name)
            for sid, name, area in zip(table["service_id"], table["name"], table["area_code"],
                                       strict=True) if sid in wanted]


def period_for(year: str, quarter: int | None = None) -> Period:
    """A financial year like 2024-25, or one quarter (1 = April to June) of it."""
    return periods.quarter(year, quarter) if quarter else periods.financial_year(year)
