"""SQL workbench: ad-hoc, read-only, aggregate-only SQL for analysts."""

import streamlit as st

from service_insights.ui import filters, lifecycle, workbench_blocks

st.title("SQL workbench")
st.write("Try a query over the same relations as the charts, see the result (after "
         "disclosure control) and a quick chart, and save it as a new chart file.")
workbench_blocks.render(lifecycle.store(), filters.current_selection())
