"""Whom the command line acts as, and the scope it may export for them.

`service-insights export --as NAME` applies that dashboard user's grants, by the same
rules as the dashboard (grants.resolve, grants.clamp): a service manager exports their own
services, a commissioner the services in their areas. Where the dashboard's sidebar only
offers what a viewer may see, the command line can be asked for anything, so a request
beyond the user's grants is refused outright rather than narrowed: a file must hold what
its stamp says was asked for. Without --as the command acts as an administrator, which the
caller says on stderr and in the audit log (whoever can run it can read the store file).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from service_insights.access import accounts, grants
from service_insights.catalogue import selection
from service_insights.catalogue.scope import Scope


class Refused(Exception):
    """The user or the scope is refused; the message is one sentence for the caller."""


def viewer_for(username: str | None, catalogue: pl.DataFrame) -> grants.Viewer:
    """The viewer `username` signs in as (None: an administrator, grants.SYSTEM).

    `catalogue` is main.services (service_id, area_code, ...), as the dashboard resolves
    grants against it.
    """
    if username is None:
        return grants.SYSTEM
    try:
        users = accounts.load_users()
    except accounts.UsersFileError as exc:
        raise Refused(f"the users file cannot be read, so nobody can be acted as: {exc}") \
            from exc
    user = users.get(username.strip().lower())
    if user is None:
        raise Refused(f"there is no user {username!r} in {accounts.users_path()} "
                      "(see `service-insights users list`)")
    if is_disabled(user):
        raise Refused(f"user {user.username!r} is disabled, so nothing is exported as them")
    return grants.resolve(user.username, user.role, list(user.services), list(user.areas),
                          catalogue)


def is_disabled(user: accounts.User) -> bool:
    """A disabled user acts as no one. Reads the `disabled` flag where accounts.User has
    one (the user lifecycle adds it); a user without the field is enabled."""
    return bool(getattr(user, "disabled", False))


def scope_as(store, viewer: grants.Viewer, areas: Sequence[str] = (),
             services: Sequence[str] = ()) -> Scope:
    """The scope asked for (as selection.scope_for reads it), if `viewer` may see all of
    it; nothing asked for means everything the viewer may see. Raises Refused naming
    what is out of reach, and ValueError for unknown ids."""
    asked = selection.scope_for(store, areas, services)
    if viewer.sees_everything:
        return asked
    table = selection.services_table(store)
    who = f"{viewer.username} ({grants.ROLE_NAMES[viewer.role].lower()})"
    if asked.is_all:
        scope = selection.viewer_scope(table, viewer)
    else:
        outside = sorted(set(asked.services or ()) - set(viewer.services))
        if services and outside:
            raise Refused(f"{who} may export {_grant_text(viewer)} only, not "
                          f"{', '.join(outside)}")
        if not services:
            out_areas = sorted(set(areas) - set(viewer.areas or ()))
            if viewer.role != "commissioner" or out_areas:
                raise Refused(f"{who} may export {_grant_text(viewer)} only, not the whole "
                              f"area{'s' if len(areas) != 1 else ''} "
                              f"{', '.join(out_areas or sorted(set(areas)))}")
        scope = asked
    if grants.clamp(scope, viewer) != scope:  # the dashboard's own rule agrees, or no file
        raise Refused(f"{who} may export {_grant_text(viewer)} only")
    return scope


def _grant_text(viewer: grants.Viewer) -> str:
    if viewer.role == "commissioner":
        return f"the services in {', '.join(viewer.areas or ()) or 'no area'}"
    return ", ".join(viewer.services) or "no service"
