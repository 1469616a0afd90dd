"""Risk and outcomes: risk at intake and change by exit."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Risk and outcomes")
st.write(
    "Risk at intake (DASH score and risk level) and what changed by the time cases "
    "closed."
)
chart_blocks.render_page("risk")
