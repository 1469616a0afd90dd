"""Equality and access: who the service reaches against national shares."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Equality and access")
st.write(
    "Who the service reaches, by gender, age, ethnicity, disability and LGBT+ identity, "
    "against the national shares."
)
chart_blocks.render_page("equality")
