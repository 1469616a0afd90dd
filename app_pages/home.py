"""Home: the headline figures for the selected period and services."""

import streamlit as st

from service_insights.ui import chart_blocks, filters, findings_blocks, trend_blocks

selection = filters.current_selection()
st.title("Service Insights")
st.write(
    "How your service compares with services like it: who you work with, how much risk "
    "they face, and how many families are already known to children's social care. Pick a "
    "period, area, service and what to compare with in the sidebar (services of the same "
    "type unless you choose otherwise)."
)
chart_blocks.render_page("home", selection)
trend_blocks.trend_summary(selection)
findings_blocks.findings_teaser(selection)
