"""The administrators' users page: who can sign in, with which role and services."""

from __future__ import annotations

import polars as pl
import streamlit as st

from service_insights.access import accounts, audit, grants
from service_insights.ui import signin, tables


def render(services: pl.DataFrame) -> None:
    """`services` is main.services (service_id, name, area_code, area_name)."""
    admin = signin.current()
    if not admin.can("users"):
        st.error("Managing users is for administrators.")
        return
    users = accounts.load_users()
    rows = [{"username": u.username, "role": grants.ROLE_NAMES[u.role],
             "services": ", ".join(u.services), "areas": ", ".join(u.areas),
             "e-mail (identity provider)": u.email,
             "password set": "yes" if u.password_hash else "no",
             "status": "disabled" if u.disabled else "active"} for u in users.values()]
    if rows:
        tables.show(pl.DataFrame(rows))
    else:
        st.info(f"No users yet in `{accounts.users_path()}`.")
    if users:
        _lifecycle(admin, users)
    names = dict(zip(services["service_id"], services["name"], strict=True))
    areas = dict(zip(services["area_code"], services["area_name"], strict=False))
    with st.form("add-user", clear_on_submit=True):
        st.markdown("**Add or change a user**")
        username = st.text_input("Username", key="user_name")
        role = st.selectbox("Role", grants.ROLES, format_func=grants.ROLE_NAMES.get,
                            key="user_role")
        chosen_services = st.multiselect("Services (service managers)", list(names),
                                         format_func=names.get)
        chosen_areas = st.multiselect("Areas (commissioners)", sorted(areas),
                                      format_func=lambda c: f"{areas[c]} ({c})")
        email = st.text_input("E-mail for identity-provider sign-in (optional)")
        password = st.text_input("Password (12 characters or more; leave empty to keep "
                                 "the current one)", type="password", key="user_password")
        saved = st.form_submit_button("Save user", type="primary")
    if not saved:
        return
    problem = _problem(username, role, chosen_services, chosen_areas, password,
                       username.strip().lower() in users) or accounts.unregistered_problem(
        chosen_services, chosen_areas, list(names), list(areas))
    if problem:
        st.error(problem[0].upper() + problem[1:] + ("" if problem.endswith(".") else "."))
        return
    user = accounts.User(username.strip().lower(), role, tuple(chosen_services),
                     tuple(chosen_areas), email.strip().lower())
    try:
        accounts.save_user(user, password or None)
    except ValueError as exc:
        st.error(str(exc))
        return
    audit.record(admin.username, "user_saved", user=user.username, role=role)
    st.success(f"Saved {user.username}.")
    st.rerun()


def _problem(username, role, services, areas, password, exists) -> str | None:
    if not username.strip():
        return "Give a username."
    grants = accounts.grant_problem(role, services, areas)
    if grants:
        return f"{grants[0].upper()}{grants[1:]}."
    if not exists and not password:
        return "A new user needs a password (or sign in through the identity provider: "\
               "give an e-mail address and set a password they will not use)."
    return None


_ACTIONS = {"Disable": "user_disabled", "Enable": "user_enabled",
            "Set a new password": "user_password_changed", "Remove": "user_removed"}


def _lifecycle(admin: grants.Viewer, users: dict[str, accounts.User]) -> None:
    """Disable, enable, remove a user or set their password; each ends the user's open
    sessions where it should (accounts.py) and is audited."""
    if "life_done" in st.session_state:
        st.success(st.session_state.pop("life_done"))
    with st.form("user-lifecycle", clear_on_submit=True):
        st.markdown("**Disable, enable, remove, or set a password**")
        name = st.selectbox("User", sorted(users), key="life_user")
        action = st.radio("Action", list(_ACTIONS), horizontal=True, key="life_action")
        password = st.text_input("New password (for Set a new password)", type="password",
                                 key="life_password")
        confirm = st.checkbox("Yes, do this", key="life_confirm")
        done = st.form_submit_button("Apply")
    if not done:
        return
    if not confirm:
        st.error("Tick \"Yes, do this\" to confirm.")
        return
    if name == admin.username and action in ("Disable", "Remove"):
        st.error("You cannot disable or remove the account you are signed in with.")
        return
    try:
        if action == "Set a new password":
            ended = accounts.set_password(name, password)
        elif action == "Remove":
            ended = accounts.remove_user(name)
        else:
            ended = accounts.set_disabled(name, action == "Disable")
    except ValueError as exc:
        st.error(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        return
    audit.record(admin.username, _ACTIONS[action], user=name, sessions_ended=ended)
    st.session_state["life_done"] = f"{action}: {name}, done; {ended} open session(s) ended."
    st.rerun()
