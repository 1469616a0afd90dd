"""Compare services: funnel plots of the key rates for every service in scope."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Compare services")
st.write(
    "Each dot is a service: its rate against the number of cases behind it. The funnel "
    "shows how far from the comparator's rate (chosen in the sidebar) a service could fall "
    "by chance alone; it "
    "narrows as services get larger. Services outside the outer (99.8%) limits differ by "
    "more than chance would explain. Choose an area, or no service, to compare several."
)
chart_blocks.render_page("compare")
