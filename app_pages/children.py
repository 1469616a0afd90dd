"""Children and families: children in clients' households and social care."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Children and families")
st.write(
    "Clients with children, the ages of those children, how many families are already "
    "known to children's social care, and whether whole-family support was offered."
)
chart_blocks.render_page("children")
