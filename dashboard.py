"""Service Insights: the router. Page config, navigation and the shared filters."""

from pathlib import Path

import streamlit as st

from service_insights import components

HERE = Path(__file__).parent

st.set_page_config(page_title="Service Insights", page_icon="📊", layout="wide")
components.ensure_store()
st.session_state["selection"] = components.sidebar_filters()

page = st.navigation({
    "Your service": [
        st.Page(HERE / "pages" / "home.py", title="Home", default=True),
        st.Page(HERE / "pages" / "overview.py", title="Overview"),
        st.Page(HERE / "pages" / "children.py", title="Children and families"),
        st.Page(HERE / "pages" / "marac.py", title="Marac"),
        st.Page(HERE / "pages" / "risk.py", title="Risk and outcomes"),
        st.Page(HERE / "pages" / "equality.py", title="Equality and access"),
    ],
    "For analysts": [
        st.Page(HERE / "pages" / "query_health.py", title="Query health"),
        st.Page(HERE / "pages" / "import_data.py", title="Import"),
    ],
})
page.run()
