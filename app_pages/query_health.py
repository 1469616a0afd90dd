"""Query health: every file in queries/, whether it parses and runs, and what is wrong."""

import streamlit as st

from service_insights.ui import chart_blocks, tables

st.title("Query health")
st.write(
    "Every chart comes from a file in `queries/`. A file that does not parse or run is "
    "listed here with its path and line; it breaks only its own chart."
)
table = chart_blocks.query_health()
broken = table.filter(table["status"] != "ok")
if broken.height:
    st.error(f"{broken.height} of {table.height} query files need attention.")
else:
    st.success(f"All {table.height} query files parse and run.")
tables.show(table)
