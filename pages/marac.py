"""Marac: volume, repeats, referring agencies and diversity."""

import streamlit as st

from service_insights import components

st.title("Marac")
st.write(
    "Referrals to the Multi-Agency Risk Assessment Conference: volume per 10,000 adult "
    "females (expected about 40), repeat rate (expected 28% to 40%; national 31%), "
    "referring agencies, and who the victims are."
)
components.render_page("marac")
