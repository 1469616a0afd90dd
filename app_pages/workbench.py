"""SQL workbench: ad-hoc, read-only questions for analysts, asked as counts by group."""

import streamlit as st

from service_insights.ui import filters, lifecycle, workbench_blocks

st.title("SQL workbench")
st.write("Ask a question over the same relations as the charts (counts by group, and "
         "rates over them), see the result after disclosure control and a quick chart, and "
         "save it as a new chart file.")
workbench_blocks.render(lifecycle.store(), filters.current_selection())
