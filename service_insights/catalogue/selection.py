"""A selection (scope and period) from what a user chose: the sidebar's areas and services,
or area codes, service ids and a financial year typed at the command line. Unknown codes
are refused by name rather than exporting nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from service_insights.access.grants import Viewer
from service_insights.catalogue import comparators, periods
from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import ALL_SERVICES, Scope, scoped_sql
from service_insights.store import db


@dataclass(frozen=True)
class Selection:
    """What every page shows: a scope (already narrowed to the viewer), a period, and
    the comparator its figures are set against (catalogue/comparators.py)."""

    scope: Scope
    period: Period
    comparator: str = comparators.DEFAULT


NAMED_UP_TO = 3
"""A scope of up to this many services (or areas) is labelled with each one's name and id;
a larger one with its count and ids, so a legend or file name stays readable."""


def services_label(rows: pl.DataFrame) -> str:
    """What a scope of services shows, by name and id: "Riverside Idva (S01)".

    The label travels with every export (subtitle, legend, CSV/XLSX stamp, pack cover,
    file name, audit entry), so a file forwarded to someone else says whose figures it
    holds; "Your service" is only ever a screen heading.
    """
    pairs = sorted(zip(rows["service_id"].to_list(), rows["name"].to_list(), strict=True))
    if not pairs:
        return "No services"
    if len(pairs) <= NAMED_UP_TO:
        return ", ".join(f"{name} ({sid})" for sid, name in pairs)
    return f"{len(pairs)} services: {', '.join(sid for sid, _ in pairs)}"


def areas_label(rows: pl.DataFrame, areas: Sequence[str]) -> str:
    """What a scope of whole areas shows, by name and code: "Ashcombe (E06000001)"."""
    names = dict(zip(rows["area_code"].to_list(), rows["area_name"].to_list(), strict=True))
    codes = sorted(set(areas))
    if len(codes) <= NAMED_UP_TO:
        return ", ".join(f"{names[c]} ({c})" if c in names else c for c in codes)
    return f"{len(codes)} areas: {', '.join(codes)}"


def _chosen_services(table: pl.DataFrame, chosen: Sequence[str]) -> Scope:
    rows = table.filter(pl.col("service_id").is_in(list(chosen)))
    return Scope(tuple(sorted(set(chosen))), tuple(sorted(set(rows["area_code"]))), True,
                 services_label(rows))


def _whole_areas(table: pl.DataFrame, areas: Sequence[str]) -> Scope:
    rows = table.filter(pl.col("area_code").is_in(list(areas)))
    return Scope(tuple(sorted(rows["service_id"])), tuple(sorted(set(areas))), False,
                 areas_label(rows, areas))


def resolve_scope(services: pl.DataFrame, areas: list[str], chosen: list[str]) -> Scope:
    """Turn the sidebar's choice into a Scope: chosen services win over chosen areas.

    `services` is main.services with area names (service_id, name, area_code, area_name).
    """
    if chosen:
        return _chosen_services(services, chosen)
    if areas:
        return _whole_areas(services, areas)
    return ALL_SERVICES


def viewer_scope(services: pl.DataFrame, viewer: Viewer) -> Scope:
    """Everything this viewer may see, labelled by name: what "nothing chosen" means for
    a service manager (their services) or a commissioner (their areas)."""
    if viewer.sees_everything:
        return ALL_SERVICES
    if viewer.role == "commissioner":
        return _whole_areas(services, viewer.areas or ())
    return _chosen_services(services, viewer.services)


def services_table(store: db.Store) -> pl.DataFrame:
    """Every registered service with its area, by id: the columns the filters, sign-in and
    findings show, from the register comparators.services_register reads once per open
    store."""
    return comparators.services_register(store).select(
        "service_id", "name", "area_code", "area_name")


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
        return _chosen_services(table, services)
    if areas:
        return _whole_areas(table, areas)
    return ALL_SERVICES


def each_service(store: db.Store, scope: Scope) -> list[Scope]:
    """One single-service scope per service in `scope`, labelled with its name and id."""
    table = services_table(store)
    wanted = set(scope.services or table["service_id"].to_list())
    return [Scope((sid,), (area,), True, f"{name} ({sid})")
            for sid, name, area in zip(table["service_id"], table["name"], table["area_code"],
                                       strict=True) if sid in wanted]


def period_for(year: str, quarter: int | None = None) -> Period:
    """A financial year like 2024-25, or one quarter (1 = April to June) of it."""
    return periods.quarter(year, quarter) if quarter else periods.financial_year(year)


_ANY_RECORDS = """
select (select count(*) from cases
        where referral_date between $period_start and $period_end
           or exit_date between $period_start and $period_end)
     + (select count(*) from marac_referrals
        where meeting_date between $period_start and $period_end) as n
"""


def has_records(store: db.Store, scope: Scope, period: Period) -> bool:
    """Whether the scope has any case referred or closed, or Marac referral heard, in the
    period: an export of an empty period would be a blank pack that looks like a real one
    (every chart empty), so the command line refuses it instead."""
    text, _ = scoped_sql(_ANY_RECORDS)
    params = {**scope.params(), "period_start": period.start, "period_end": period.end}
    return bool(store.query(text, params).frame["n"][0])
