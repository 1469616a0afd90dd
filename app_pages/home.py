"""Home: the headline figures for the selected period and services."""

import streamlit as st

from service_insights.ui import chart_blocks, filters, findings_blocks, trend_blocks

selection = filters.current_selection()
st.title("Service Insights")
st.write(
    "How your service compares with all services: who you work with, how much risk they "
    "face, and how many families are already known to children's social care. Pick a "
    "period, area and service in the sidebar."
)
chart_blocks.render_page("home", selection)
trend_blocks.trend_summary(selection)
findings_blocks.findings_teaser(selection)
