"""Marac: volume, repeats, referring agencies and diversity."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Marac")
st.write(
    "Referrals to the Multi-Agency Risk Assessment Conference: volume per 10,000 adult "
    "females against the level SafeLives expects, the repeat rate against its expected "
    "range and the national rate (with repeats for the same victim and perpetrator where "
    "Marac files record the perpetrator), referring agencies, who the victims are against "
    "national shares, and, where the deployment uses the linkage key, victims also known "
    "at another Marac or service in the previous 12 months."
)
chart_blocks.render_page("marac")
