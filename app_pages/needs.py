"""Needs: clients' mental health, substance use and housing needs, and how they fare."""

import streamlit as st

from service_insights.ui import chart_blocks

st.title("Complex needs")
st.write(
    "How many clients had a mental health, substance use or housing need recorded at "
    "intake, and whether clients with those needs engage and leave the service as well "
    "as its other clients. The Marac near-miss review found a victim whose substance use "
    "and mental health needs were known to services that shared little."
)
chart_blocks.render_page("needs")
