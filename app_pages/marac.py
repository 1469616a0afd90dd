"""Marac: volume, repeats, referring agencies and diversity."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Marac")
st.write(
    "Referrals to the Multi-Agency Risk Assessment Conference: volume per 10,000 adult "
    "females against the level SafeLives expects, the repeat rate against its expected "
    "range and the national rate, referring agencies, and who the victims are against "
    "national shares."
)
chart_blocks.render_page("marac")
