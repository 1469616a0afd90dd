"""Sign-in for the dashboard: who is viewing, before any figure is drawn.

Password sign-in checks the users file (argon2 hashes, throttled); organisations with an
identity provider configure Streamlit's OIDC sign-in (st.login) in
.streamlit/secrets.toml and list their users' e-mail addresses in the users file for
role and services. With no users configured and only synthetic data in the store, the
dashboard runs as a demo without sign-in and says so; real data always needs sign-in.
"""

from __future__ import annotations

import os

import streamlit as st

from service_insights.access import accounts, audit, grants
from service_insights.store import db

_KEY = "viewer"
NOBODY = grants.Viewer("nobody", "service_manager", (), ())
"""What a script sees before sign-in: no services at all."""


def current() -> grants.Viewer:
    return st.session_state.get(_KEY) or NOBODY


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


_AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret",
              "server_metadata_url")


def _oidc_missing() -> list[str]:
    """The [auth] settings st.login needs that the secrets file lacks (st.login itself
    would raise with a traceback on the sign-in page)."""
    auth = st.secrets.get("auth") or {}
    return [k for k in _AUTH_KEYS if not str(auth.get(k) or "").strip()]


def _oidc_refusal(email: str, verified: object) -> str | None:
    """Why the identity provider's answer cannot name a user, if it cannot.

    The e-mail address is the key into the users file, so it must be there, and a
    provider that says it has not verified the address (self-asserted, as some social and
    multi-tenant providers allow) is not trusted with it.
    """
    if not email:
        return ("Your organisation signed you in without an e-mail address, so Service "
                "Insights cannot tell which user you are; ask an administrator.")
    if verified is False or str(verified).lower() == "false":
        return (f"Your organisation has not verified the address {email}, so Service "
                "Insights cannot sign you in with it.")
    return None


def _catalogue(store: db.Store):
    return store.query("select service_id, area_code from main.services").frame


def require(store: db.Store) -> grants.Viewer:
    """The signed-in viewer, or the sign-in form and a stopped script."""
    viewer = st.session_state.get(_KEY)
    if viewer is not None:
        if viewer.demo and store.meta.get("data_kind") != "synthetic":
            # Real records arrived (an import): the demo ends here.
            del st.session_state[_KEY]
        else:
            return viewer
    try:
        users = accounts.load_users()
    except accounts.UsersFileError as exc:
        st.error(f"The users file could not be read: {exc}")
        st.stop()
    synthetic = store.meta.get("data_kind") == "synthetic"
    if not users and synthetic and os.environ.get("SI_DEMO", "1") != "0":
        viewer = grants.Viewer("demo", "admin", None, None, demo=True)
        st.session_state[_KEY] = viewer
        return viewer
    if _oidc_configured() and getattr(st.user, "is_logged_in", False):
        email = str(st.user.get("email") or "").strip().lower()
        refusal = _oidc_refusal(email, st.user.get("email_verified"))
        user = None if refusal else accounts.user_for_email(email, users)
        if user is None:
            audit.record(email or "?", "sign_in", ok=False, method="oidc",
                         issuer=str(st.user.get("iss") or ""))
            st.title("Service Insights")
            st.error(refusal or f"{email} has no Service Insights account, so nothing can be "
                                "shown; ask an administrator to add that address.")
            st.button("Sign out", on_click=st.logout)
            st.stop()
        return _start(store, user, "oidc")
    if not users:
        st.title("Service Insights")
        st.error("Sign-in is required because the store holds real records, and no users "
                 "are set up. An administrator adds them with "
                 "`service-insights users add NAME --role ...` (see README).")
        st.stop()
    _form(store, users)
    st.stop()


def _form(store: db.Store, users: dict[str, accounts.User]) -> None:
    st.title("Sign in to Service Insights")
    with st.form("sign-in"):
        username = st.text_input("Username", key="signin_username")
        password = st.text_input("Password", type="password", key="signin_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if _oidc_configured():
        missing = _oidc_missing()
        if missing:
            st.error(f"Sign-in through your organisation is off because the [auth] section "
                     f"of the secrets file has no {', '.join(missing)}.")
        else:
            st.button("Sign in with your organisation", on_click=st.login)
    if submitted:
        result = accounts.authenticate(username, password, users)
        if result.user is None:
            audit.record((username or "").strip().lower() or "?", "sign_in", ok=False,
                         method="password", throttled=result.wait_s > 0)
            st.error(result.message)
            return
        _start(store, result.user, "password")
        st.rerun()


def _start(store: db.Store, user: accounts.User, method: str) -> grants.Viewer:
    viewer = grants.resolve(user.username, user.role, list(user.services), list(user.areas),
                            _catalogue(store))
    st.session_state[_KEY] = viewer
    audit.record(user.username, "sign_in", ok=True, method=method, role=user.role)
    return viewer


def sidebar(viewer: grants.Viewer) -> None:
    """Who is signed in, and the way out; or the demo notice."""
    with st.sidebar:
        if viewer.demo:
            st.info("Demo mode: no sign-in, because the store holds only synthetic data. "
                    "Real records always need sign-in.", icon=":material/lock_open:")
            return
        st.caption(f"Signed in as **{viewer.username}** "
                   f"({grants.ROLE_NAMES.get(viewer.role, viewer.role)}).")
        if st.button("Sign out", key="sign-out"):
            audit.record(viewer.username, "sign_out")
            st.session_state.pop(_KEY, None)
            st.session_state.pop("selection", None)
            if _oidc_configured() and getattr(st.user, "is_logged_in", False):
                # st.logout sends the browser to /auth/logout, which drops the identity
                # cookie and ends the provider's session; a rerun here would race that
                # redirect and leave the cookie to sign the next tab straight back in.
                st.logout()
                st.stop()
            st.rerun()
