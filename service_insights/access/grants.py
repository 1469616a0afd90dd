"""Who may see which services: the viewer, and the one place a scope is narrowed to it.

Every scope a query runs under passes through `clamp` before it is used or used as a
cache key, so no page, query file, export or cached result can reach rows outside the
viewer's services. A service manager sees their own services; a commissioner the
services in their areas; analysts and admins everything. The all-services benchmark is
an aggregate and stays visible to all (results.run decides when it is safe to show).

`audience` is what results.run is told about the viewer besides the clamped scope: every
service they may see (so the benchmark is withheld when too few services lie outside
them) and the services whose records they hold (a service manager's own, shown exactly;
everything else is perturbed by the cell key method).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from service_insights.catalogue.results import Audience
from service_insights.catalogue.scope import Scope

ROLES = ("service_manager", "commissioner", "analyst", "admin")
ROLE_NAMES = {"service_manager": "Service manager", "commissioner": "Commissioner",
              "analyst": "Analyst", "admin": "Administrator"}
DEMO_NEVER = frozenset({"import", "users", "save_query"})
"""What a demo viewer may never do, whatever role it is shown as."""


@dataclass(frozen=True)
class Viewer:
    username: str
    role: str
    services: tuple[str, ...] | None
    """The services this viewer may see; None means every service."""
    areas: tuple[str, ...] | None
    """The areas whose Marac data this viewer may see; None means every area."""
    demo: bool = False

    @property
    def sees_everything(self) -> bool:
        return self.services is None

    def can(self, action: str) -> bool:
        """workbench: analysts and admins; import and users: admins; save_query (a new
        chart file from the workbench): analysts and admins. The demo (anyone who can
        reach a server with only the synthetic sample and no users) never writes."""
        if self.demo and action in DEMO_NEVER:
            return False
        allowed = {"workbench": ("analyst", "admin"), "import": ("admin",),
                   "users": ("admin",), "export": ROLES, "compare": ROLES,
                   "save_query": ("analyst", "admin")}
        return self.role in allowed.get(action, ())


SYSTEM = Viewer("system", "admin", None, None)
"""The command line: whoever can run it can read the store file anyway."""


def resolve(username: str, role: str, services: list[str], areas: list[str],
            catalogue: pl.DataFrame, demo: bool = False) -> Viewer:
    """A viewer with explicit service and area lists, from a user's configured grants.

    `catalogue` is main.services (service_id, area_code). Commissioners are granted
    areas, and see every service in them; service managers are granted services, and
    see their areas' Marac figures only through their own services' referrals.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role in ("analyst", "admin"):
        return Viewer(username, role, None, None, demo)
    known = set(catalogue["service_id"])
    if role == "commissioner":
        rows = catalogue.filter(pl.col("area_code").is_in(areas))
        return Viewer(username, role, tuple(sorted(rows["service_id"])), tuple(sorted(areas)),
                      demo)
    chosen = sorted(s for s in services if s in known)
    rows = catalogue.filter(pl.col("service_id").is_in(chosen))
    return Viewer(username, role, tuple(chosen), tuple(sorted(set(rows["area_code"]))), demo)


def clamp(scope: Scope, viewer: Viewer) -> Scope:
    """The part of `scope` this viewer may see (never more than was asked for).

    A service manager's Marac figures are always their own services' referrals
    (`by_service`), never the whole area's, which would include other services' clients.
    """
    if viewer.sees_everything:
        return scope
    own_marac = viewer.role != "commissioner"
    if scope.is_all:
        return Scope(viewer.services, viewer.areas, own_marac,
                     _label_by_id(viewer.services, viewer.areas, own_marac))
    allowed, allowed_areas = set(viewer.services), set(viewer.areas or ())
    services = tuple(s for s in scope.services if s in allowed)
    areas = tuple(a for a in (scope.areas or ()) if a in allowed_areas)
    by_service = scope.by_service or own_marac
    if (services, areas, by_service) == (scope.services, scope.areas, scope.by_service):
        return scope
    # Narrowed: the asked-for label would claim services this scope no longer holds.
    return Scope(services, areas, by_service,
                 _label_by_id(services, areas, by_service) if services else "No services")


def _label_by_id(services: tuple[str, ...], areas: tuple[str, ...] | None,
                 by_service: bool) -> str:
    """A label naming a clamped scope by id (clamp has no names to hand; the sidebar and
    the command line name scopes by name and id before they get here). Never "Your
    service": exports carry the label, and must say whose figures they hold."""
    if by_service or not areas:
        return ("Service " if len(services) == 1 else "Services ") + ", ".join(services)
    return ("Area " if len(areas) == 1 else "Areas ") + ", ".join(areas)


def visible_services(catalogue: pl.DataFrame, viewer: Viewer) -> pl.DataFrame:
    if viewer.sees_everything:
        return catalogue
    return catalogue.filter(pl.col("service_id").is_in(list(viewer.services)))


def audience(viewer: Viewer) -> Audience:
    """What results.run needs to know about this viewer (see the module docstring)."""
    own = viewer.services if viewer.role == "service_manager" and viewer.services else ()
    return Audience(visible=viewer.services, own=tuple(own))
