"""The two HTTP routes that sign a browser in and out, served beside Streamlit by st.App.

A Streamlit script talks to the browser over a WebSocket and cannot set a cookie, least of
all an HttpOnly one (which page scripts cannot read, so an injected script cannot steal
it). Sign-in is therefore a plain HTML form posted to POST /signin: the password is checked
here (argon2, throttled, as before), a session is created (sessions.py) and its token is
set as an HttpOnly, SameSite=Strict cookie (Secure when the request came over HTTPS, or
SI_COOKIE_SECURE=1), then the browser is sent back (303) to the page and filters it came
from. The script reads the cookie from the WebSocket handshake (st.context.cookies) and
looks the session up on every run. POST /signout ends the session and clears the cookie.

SameSite=Strict rather than Lax: the cookie is needed only by the page's own WebSocket and
these two forms, all same-site, so nothing is lost by never sending it with a request that
another site starts. Both routes also check that the form came from this site (Origin, or
Referer when a browser sends no Origin), which SameSite does not give for sign-in itself
(a forged sign-in into the attacker's account).
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from service_insights.access import accounts, audit, sessions

MAX_FORM_BYTES = 8_192
ERROR_PARAM = "signin_error"
"""The query parameter that tells the page why a sign-in was refused."""


def routes(base_url: str = "") -> list[Route]:
    """POST {base}/signin and POST {base}/signout (base: Streamlit's server.baseUrlPath)."""
    base = "/" + base_url.strip("/") if base_url.strip("/") else ""

    async def signin(request: Request) -> Response:
        return await _signin(request, base)

    async def signout(request: Request) -> Response:
        return await _signout(request, base)

    async def page_file(request: Request) -> Response:
        # A page script's own path (/app_pages/users.py, as a bookmark or an old link)
        # would get Streamlit's shell with nothing in it: send it to the page's address,
        # where the router decides who may open it.
        name = request.path_params["name"]
        stem = name if re.fullmatch(r"[A-Za-z0-9_]{1,64}", name) else ""
        return RedirectResponse(f"{base}/{stem}", status_code=303)

    return [Route(f"{base}/signin", signin, methods=["POST"]),
            Route(f"{base}/signout", signout, methods=["POST"]),
            Route(f"{base}/app_pages/{{name}}.py", page_file, methods=["GET", "HEAD"])]


def _same_site(request: Request) -> bool:
    """The form was posted by a page of this server (Origin, else Referer, names it)."""
    source = request.headers.get("origin")
    if not source or source == "null":
        source = request.headers.get("referer")
    if not source:
        return False
    came = urlsplit(source)
    host = urlsplit(f"//{request.headers.get('host', '')}")
    if not came.hostname or came.hostname != host.hostname:
        return False
    # A proxy may pass the host without its port (nginx's $host): then the name decides.
    return host.port is None or came.port == host.port


def _back_to(base: str, wanted: str | None, **params: str) -> str:
    """Where to send the browser: the page it came from, on this server only."""
    if (not wanted or not wanted.startswith(base + "/") or wanted.startswith("//")
            or "\\" in wanted):
        wanted = base + "/"
    parts = urlsplit(wanted)
    query = [(k, v) for k, vs in parse_qs(parts.query).items() for v in vs if k != ERROR_PARAM]
    query += list(params.items())
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or os.environ.get("SI_COOKIE_SECURE") == "1"


async def _form(request: Request) -> dict[str, str] | None:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _refuse(message: str, status: int = 403) -> Response:
    return PlainTextResponse(message, status_code=status)


async def _signin(request: Request, base: str) -> Response:
    if not _same_site(request):
        return _refuse("Sign-in refused: the form was not sent from this site.")
    form = await _form(request)
    if form is None:
        return _refuse("Sign-in refused: the form is too large.", 413)
    username = (form.get("username") or "").strip().lower()
    nxt = form.get("next")
    if audit.problem():  # every sign-in is recorded first; a read-only folder stops it
        return RedirectResponse(_back_to(base, nxt, **{ERROR_PARAM: "unwritable"}), 303)
    result = await run_in_threadpool(accounts.authenticate, username, form.get("password", ""))
    if result.user is None:
        code = ("throttled" if result.wait_s > 0 else
                "disabled" if result.message == accounts.DISABLED else "wrong")
        audit.record(username or "?", "sign_in", ok=False, method="password",
                     throttled=result.wait_s > 0)
        return RedirectResponse(_back_to(base, nxt, **{ERROR_PARAM: code}), 303)
    store = sessions.SessionStore()
    try:
        token = store.create(result.user.username, "password")
    except (OSError, sessions.SessionsFileError):  # its folder cannot be written
        return RedirectResponse(_back_to(base, nxt, **{ERROR_PARAM: "unwritable"}), 303)
    audit.record(result.user.username, "sign_in", ok=True, method="password",
                 role=result.user.role)
    response = RedirectResponse(_back_to(base, nxt), 303)
    response.set_cookie(sessions.COOKIE, token, max_age=int(store.max_s), httponly=True,
                        samesite="strict", secure=_secure(request),
                        path=base + "/")
    return response


async def _signout(request: Request, base: str) -> Response:
    if not _same_site(request):
        return _refuse("Sign-out refused: the form was not sent from this site.")
    token = request.cookies.get(sessions.COOKIE)
    store = sessions.SessionStore()
    live = store.lookup(token)
    store.revoke(token)
    if live is not None:
        audit.record(live.username, "sign_out", method=live.method)
    response = RedirectResponse(base + "/", 303)
    response.delete_cookie(sessions.COOKIE, httponly=True, samesite="strict",
                           secure=_secure(request),
                           path=base + "/")
    return response
