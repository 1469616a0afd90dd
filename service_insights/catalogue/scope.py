"""Which services a viewer is looking at, and the relations a query reads for that scope.

Queries read `cases`, `marac_referrals`, `services` and `areas`. The data layer puts CTEs
of those names in front of the query, filtered by bound parameters, so the same SQL runs
over the viewer's scope and over all services, and no query repeats access rules. The
CTE text is fixed: scope values travel only as bound parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCOPE_PREFIX = """\
with cases as (
    select * from main.cases
    where $scope_services is null or list_contains($scope_services, service_id)
),
marac_referrals as (
    select * from main.marac_referrals
    where case
        when $scope_areas is null then true
        when $marac_by_service then list_contains($scope_services, service_id)
        else list_contains($scope_areas, marac_area)
    end
),
services as (
    select * from main.services
    where $scope_services is null or list_contains($scope_services, service_id)
),
areas as (
    select * from main.areas
    where $scope_areas is null or list_contains($scope_areas, area_code)
)"""

KEYED_PREFIX = (SCOPE_PREFIX
                .replace("from main.cases", "from store.cases_keyed")
                .replace("from main.marac_referrals", "from store.marac_referrals_keyed"))
"""The same scoped relations with each record's `record_key`, for the cell-key pass
(catalogue/keying.py) only: the relations analysts' SQL reads never carry it."""

SCOPE_PARAMS = frozenset({"scope_services", "scope_areas", "marac_by_service"})

_LEADING = re.compile(r"^\s*(?:(?:--[^\n]*\n)|(?:/\*.*?\*/)|\s)*", re.S)
_WITH = re.compile(r"^with\s+(recursive\s+)?", re.I)


@dataclass(frozen=True)
class Scope:
    """A set of services (None = every service) and the areas they sit in.

    `by_service` is true when the viewer picked services rather than whole areas: Marac
    referrals are then those the chosen services made, not every referral in the area.
    """

    services: tuple[str, ...] | None
    areas: tuple[str, ...] | None
    by_service: bool
    label: str

    @property
    def is_all(self) -> bool:
        return self.services is None

    @property
    def slug(self) -> str:
        return re.sub(r"[^0-9A-Za-z]+", "-", self.label).strip("-").lower()[:60]

    def params(self) -> dict[str, object]:
        return {
            "scope_services": list(self.services) if self.services is not None else None,
            "scope_areas": list(self.areas) if self.areas is not None else None,
            "marac_by_service": self.by_service,
        }


ALL_SERVICES = Scope(None, None, False, "All services")


def scoped_sql(sql: str, *, keyed: bool = False) -> tuple[str, int]:
    """Put the scoped relations in front of a single SELECT (which may have its own WITH).

    Returns the text to run and how many lines to subtract from a line number in it to
    get the line in `sql`, so DuckDB's "LINE n" points into the analyst's file.
    """
    prefix = KEYED_PREFIX if keyed else SCOPE_PREFIX
    leading = _LEADING.match(sql).group(0)
    body = sql[len(leading):].rstrip().rstrip(";")
    prefix_lines = prefix.count("\n") + 1
    shift = prefix_lines - leading.count("\n")
    m = _WITH.match(body)
    if m:
        recursive = "recursive " if m.group(1) else ""
        head = prefix.replace("with ", f"with {recursive}", 1)
        return head + ",\n" + body[m.end():], shift
    return prefix + "\n" + body, shift
