"""Findings: where the service should adapt, with the numbers and evidence behind each."""

import streamlit as st

from service_insights.ui import findings_blocks

st.title("Findings: where to adapt")
st.caption("Plain-language findings from the rules in queries/findings/, each with the "
           "numbers behind it, what to do, and the evidence for doing it.")
findings_blocks.render_findings()
