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
             "password set": "yes" if u.password_hash else "no"} for u in users.values()]
    if rows:
        tables.show(pl.DataFrame(rows))
    else:
        st.info(f"No users yet in `{accounts.users_path()}`.")
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
                       username.strip().lower() in users)
    if problem:
        st.error(problem)
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
