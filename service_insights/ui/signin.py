"""Sign-in for the dashboard: who is viewing, before any figure is drawn.

Password sign-in is a plain HTML form posted to the server's /signin route
(session_routes.py), which checks the users file (argon2 hashes, throttled) and sets an
HttpOnly session cookie; every script run looks that cookie's session up again
(sessions.py), so a refresh or a new tab stays signed in, and a session that was ended
(sign-out, expiry, password change, user disabled or removed) is refused at the next
click. Organisations with an identity provider configure Streamlit's OIDC sign-in
(st.login) in .streamlit/secrets.toml and list their users' e-mail addresses in the users
file for role and services.

With no users configured and only synthetic data in the store, the dashboard runs as a
read-only demo without sign-in: it shows the sample as a service manager, a commissioner
or an analyst would see it, and never as an administrator (no Users, Import or Audit log,
no saved queries). The first administrator is added from the command line. Real data
always needs sign-in.
"""

from __future__ import annotations

import html
import os
from urllib.parse import urlencode, urlsplit

import streamlit as st
from streamlit import config

from service_insights.access import accounts, audit, grants, sessions
from service_insights.catalogue import selection
from service_insights.store import db
from service_insights.ui import session_routes

_KEY = "viewer"
_METHOD = "signin_method"
NOBODY = grants.Viewer("nobody", "service_manager", (), ())
"""What a script sees before sign-in: no services at all."""
DEMO_ROLES = ("service_manager", "commissioner", "analyst")
"""The views the demo offers: never an administrator's."""
DEMO_PARAM = "as"
_ERRORS = {
    "wrong": "The username or password is not right.",
    "throttled": "Too many failed sign-ins for this username. Try again in 15 minutes.",
    "disabled": accounts.DISABLED,
    "unwritable": "Sign-in is off because the server cannot write its audit log or its "
                  "sessions file (a read-only folder): ask whoever runs Service Insights "
                  "to make the data and config folders writable.",
}


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


def _catalogue(store: db.Store, columns: tuple[str, ...] = ("service_id", "area_code")):
    # Every run resolves the viewer's grants against the register, read once per build.
    return selection.services_table(store).select(columns)


def _base() -> str:
    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


def _cookie() -> str | None:
    """The session token the browser sent with this tab's WebSocket, if any."""
    token = st.context.cookies.get(sessions.COOKIE)
    return token if isinstance(token, str) and token else None  # AppTest: a stand-in


def _ended(message: str) -> None:
    """Forget this browser session's viewer, say why, and offer the sign-in form."""
    st.session_state.pop(_KEY, None)
    st.session_state.pop("selection", None)
    st.session_state.pop(_METHOD, None)
    st.title("Sign in to Service Insights")
    code = st.query_params.get(session_routes.ERROR_PARAM)
    st.error(_ERRORS.get(code, _ERRORS["wrong"]) if code else message)
    if code:
        del st.query_params[session_routes.ERROR_PARAM]
    _form_html()
    st.stop()


def require(store: db.Store) -> grants.Viewer:
    """The signed-in viewer, or the sign-in form and a stopped script."""
    try:
        users = accounts.load_users()
    except accounts.UsersFileError as exc:
        st.error(f"The users file could not be read: {exc}")
        st.stop()
    token = _cookie()
    if token:
        return _from_session(store, token, users)
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
        if user.disabled:
            audit.record(user.username, "sign_in", ok=False, method="oidc", disabled=True)
            st.error(accounts.DISABLED)
            st.button("Sign out", on_click=st.logout)
            st.stop()
        return _start(store, user, "oidc")
    held = st.session_state.get(_KEY)
    if held is not None and not held.demo:
        # Put there by a test (AppTest cannot send cookies); still refused once disabled.
        user = users.get(held.username)
        if user is not None and user.disabled:
            _ended(accounts.DISABLED)
        return held
    synthetic = store.meta.get("data_kind") == "synthetic"
    if not users and synthetic and os.environ.get("SI_DEMO", "1") != "0":
        return _demo(store)
    if not users:
        st.title("Service Insights")
        st.error("Sign-in is required because the store holds real records, and no users "
                 "are set up. An administrator adds them with "
                 "`service-insights users add NAME --role ...` (see README).")
        st.stop()
    _form(store, users)
    st.stop()


def admin_at_screen() -> bool:
    """Whether the person at this screen is a signed-in administrator, found without the
    store (which may be the thing that is broken): their session cookie, their identity
    provider's address, or a viewer already held, looked up in the users file. The demo
    never counts (it never shows an administrator's view)."""
    try:
        users = accounts.load_users()
    except accounts.UsersFileError:
        return False
    username = None
    token = _cookie()
    if token:
        try:
            live = sessions.SessionStore().lookup(token)
        except sessions.SessionsFileError:
            live = None
        username = live.username if live else None
    elif _oidc_configured() and getattr(st.user, "is_logged_in", False):
        email = str(st.user.get("email") or "").strip().lower()
        refused = _oidc_refusal(email, st.user.get("email_verified"))
        user = None if refused else accounts.user_for_email(email, users)
        username = user.username if user else None
    else:
        held = st.session_state.get(_KEY)
        username = held.username if held is not None and not held.demo else None
    user = users.get(username) if username else None
    return user is not None and not user.disabled and user.role == "admin"


def _from_session(store: db.Store, token: str, users: dict[str, accounts.User]
                  ) -> grants.Viewer:
    """The viewer for a session cookie, looked up afresh on every run."""
    try:
        live = sessions.SessionStore().lookup(token)
    except sessions.SessionsFileError as exc:
        _ended(str(exc))
    if live is None:
        _ended("Your session has ended (signed out, timed out, or ended by an "
               "administrator). Sign in again.")
    user = users.get(live.username)
    if user is None or user.disabled:
        sessions.SessionStore().revoke(token)
        _ended(accounts.DISABLED if user else "This account no longer exists.")
    viewer = grants.resolve(user.username, user.role, list(user.services), list(user.areas),
                            _catalogue(store))
    st.session_state[_KEY] = viewer
    st.session_state[_METHOD] = "cookie"
    return viewer


def _form(store: db.Store, users: dict[str, accounts.User]) -> None:
    st.title("Sign in to Service Insights")
    code = st.query_params.get(session_routes.ERROR_PARAM)
    if code:
        st.error(_ERRORS.get(code, _ERRORS["wrong"]))
        del st.query_params[session_routes.ERROR_PARAM]
    _form_html()
    if _oidc_configured():
        missing = _oidc_missing()
        if missing:
            st.error(f"Sign-in through your organisation is off because the [auth] section "
                     f"of the secrets file has no {', '.join(missing)}.")
        else:
            st.button("Sign in with your organisation", on_click=st.login)


def _here() -> str:
    """This page's path and query string (the filters), to come back to after sign-in."""
    path = urlsplit(st.context.url or "").path or f"{_base()}/"
    query = {k: v for k, v in st.query_params.to_dict().items()
             if k != session_routes.ERROR_PARAM}
    return path + (f"?{urlencode(query)}" if query else "")


_FORM_STYLE = """<style>
.si-form{display:flex;flex-direction:column;gap:.75rem;max-width:24rem}
.si-form label{display:flex;flex-direction:column;gap:.25rem;font-size:.875rem}
.si-form input{font:inherit;padding:.5rem .75rem;border:1px solid rgba(49,51,63,.2);
  border-radius:.5rem}
.si-form button{font:inherit;padding:.5rem 1rem;border-radius:.5rem;cursor:pointer;
  border:1px solid #ff4b4b;background:#ff4b4b;color:#fff;align-self:flex-start}
.si-out button{font:inherit;padding:.25rem .75rem;border-radius:.5rem;cursor:pointer;
  border:1px solid rgba(49,51,63,.2);background:transparent}
</style>"""


def _form_html() -> None:
    """A plain form posted to /signin: only a server route can set an HttpOnly cookie."""
    st.html(f"""{_FORM_STYLE}
<form class="si-form" method="post" action="{_base()}/signin">
  <label>Username<input name="username" autocomplete="username" required></label>
  <label>Password<input name="password" type="password" autocomplete="current-password"
    required></label>
  <input type="hidden" name="next" value="{html.escape(_here(), quote=True)}">
  <button type="submit">Sign in</button>
</form>""")


def _start(store: db.Store, user: accounts.User, method: str) -> grants.Viewer:
    viewer = grants.resolve(user.username, user.role, list(user.services), list(user.areas),
                            _catalogue(store))
    held = st.session_state.get(_KEY)
    if held is None or held.username != viewer.username:
        audit.record(user.username, "sign_in", ok=True, method=method, role=user.role)
    st.session_state[_KEY] = viewer
    st.session_state[_METHOD] = method
    return viewer


def _demo(store: db.Store) -> grants.Viewer:
    """The read-only demo, seen as a service manager, a commissioner or an analyst."""
    catalogue = _catalogue(store, ("service_id", "name", "area_code", "area_name"))
    service = catalogue.row(0, named=True)
    labels = {"service_manager": f"Service manager ({service['name']})",
              "commissioner": f"Commissioner ({service['area_name']})",
              "analyst": "Analyst (every service)"}
    if "demo_role" not in st.session_state:
        wanted = st.query_params.get(DEMO_PARAM)
        st.session_state["demo_role"] = wanted if wanted in DEMO_ROLES else "analyst"
    with st.sidebar:
        role = st.selectbox("View the demo as", DEMO_ROLES, key="demo_role",
                            format_func=labels.get)
    st.query_params[DEMO_PARAM] = role
    viewer = grants.resolve("demo", role, [service["service_id"]], [service["area_code"]],
                            catalogue.select("service_id", "area_code"), demo=True)
    st.session_state[_KEY] = viewer
    st.session_state[_METHOD] = "demo"
    return viewer


def sidebar(viewer: grants.Viewer) -> None:
    """Who is signed in, and the way out; or the demo notice."""
    with st.sidebar:
        if viewer.demo:
            st.info("Demo mode: the synthetic sample, read-only and without sign-in, as "
                    "the role chosen above would see it. Administrators are added from the "
                    "command line; real records always need sign-in.",
                    icon=":material/lock_open:")
            return
        st.caption(f"Signed in as **{viewer.username}** "
                   f"({grants.ROLE_NAMES.get(viewer.role, viewer.role)}).")
        if st.session_state.get(_METHOD) == "cookie":
            # The cookie is HttpOnly: only the server's /signout can clear it.
            st.html(f"""{_FORM_STYLE}<form class="si-out" method="post"
                action="{_base()}/signout"><button type="submit">Sign out</button></form>""")
            return
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
