"""Home: the headline figures for the selected period and services."""

import streamlit as st

from service_insights import components

selection = components.current_selection()
st.title("Service Insights")
st.write(
    "How your service compares with all services: who you work with, how much risk they "
    "face, and how many families are already known to children's social care. Pick a "
    "period, area and service in the sidebar."
)
components.render_page("home", selection)
components.findings_teaser(selection)
