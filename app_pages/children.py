"""Children and families: children in clients' households and social care."""

import streamlit as st

from service_insights import components

st.title("Children and families")
st.write(
    "Clients with children, the ages of those children, how many families are already "
    "known to children's social care, and whether whole-family support was offered."
)
components.render_page("children")
