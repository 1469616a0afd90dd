"""Overview: volumes, referral routes and time lived with abuse."""

import streamlit as st

from service_insights import components

st.title("Overview")
st.write(
    "How many cases the service took on, where they came from, and how long clients lived "
    "with abuse before getting help, beside all services."
)
components.render_page("overview")
