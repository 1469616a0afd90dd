"""Service Insights: the router. Page config, navigation and the shared filters."""

from pathlib import Path

import streamlit as st  # noqa: TID251 - the router is part of the browser layer

from service_insights.ui import filters, lifecycle, signin

HERE = Path(__file__).parent

st.set_page_config(page_title="Service Insights", page_icon="📊", layout="wide")
store = lifecycle.ensure_store()
viewer = lifecycle.guarded(signin.require, store)
signin.sidebar(viewer)
st.session_state["selection"] = lifecycle.guarded(filters.sidebar_filters, viewer)

analysts = [st.Page(HERE / "app_pages" / "query_health.py", title="Query health")]
if viewer.can("workbench"):
    analysts.append(st.Page(HERE / "app_pages" / "workbench.py", title="SQL workbench"))
if viewer.can("import"):
    analysts.append(st.Page(HERE / "app_pages" / "import_data.py", title="Import"))
if viewer.can("users"):
    analysts.append(st.Page(HERE / "app_pages" / "users.py", title="Users"))
    analysts.append(st.Page(HERE / "app_pages" / "audit_log.py", title="Audit log"))

page = st.navigation({
    "Your service": [
        st.Page(HERE / "app_pages" / "home.py", title="Home", default=True),
        st.Page(HERE / "app_pages" / "overview.py", title="Overview"),
        st.Page(HERE / "app_pages" / "children.py", title="Children and families"),
        st.Page(HERE / "app_pages" / "marac.py", title="Marac"),
        st.Page(HERE / "app_pages" / "risk.py", title="Risk and outcomes"),
        st.Page(HERE / "app_pages" / "needs.py", title="Complex needs"),
        st.Page(HERE / "app_pages" / "equality.py", title="Equality and access"),
        st.Page(HERE / "app_pages" / "findings.py", title="Findings: where to adapt"),
    ],
    "For commissioners": [
        st.Page(HERE / "app_pages" / "compare.py", title="Compare services"),
        st.Page(HERE / "app_pages" / "report_pack.py", title="Report pack"),
    ],
    "For analysts": analysts,
}, expanded=True)
lifecycle.guarded(page.run)
