"""Overview: volumes, referral routes and time lived with abuse."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Overview")
st.write(
    "How many cases the service took on, where they came from, and how long clients lived "
    "with abuse before getting help, beside the comparator chosen in the sidebar."
)
chart_blocks.render_page("overview")
