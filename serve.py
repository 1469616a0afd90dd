"""The web server: the dashboard and its sign-in routes, as one ASGI app (st.App).

`service-insights run` starts this file with `streamlit run`, which finds `app` below and
serves it with uvicorn: every page is dashboard.py as before, plus POST /signin and
POST /signout (service_insights/ui/session_routes.py), which set and clear the HttpOnly
session cookie that a Streamlit script cannot set itself.

Everything a script run may import is imported here first (serving.preload), on the main
thread before any session starts, so no session imports a module while another uses it.
"""

from pathlib import Path

import streamlit as st  # noqa: TID251 - the server is part of the browser layer
from streamlit import config  # noqa: TID251

from service_insights import serving
from service_insights.ui import session_routes

serving.preload()

app = st.App(Path(__file__).resolve().parent / "dashboard.py",
             routes=session_routes.routes(config.get_option("server.baseUrlPath") or ""))
