"""Audit log: sign-ins, exports, imports and saved queries (who, what, when)."""

import streamlit as st

from service_insights.ui import audit_view

st.title("Audit log")
st.caption("Who did what and when: sign-ins, exports, imports, workbench runs. It never "
           "holds the data itself.")
audit_view.render_audit_log()
