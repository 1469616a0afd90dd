"""The administrators' audit log page: the newest events first, never data values."""

from __future__ import annotations

import polars as pl
import streamlit as st

from service_insights.access import audit
from service_insights.ui import signin, tables


def render_audit_log(limit: int = 500) -> None:
    if not signin.current().can("users"):
        st.error("The audit log is for administrators.")
        return
    events = audit.read(limit)
    if not events:
        st.info(f"Nothing recorded yet in `{audit.path()}`.")
        return
    # Events carry different details: a column an event does not use is blank, not "None".
    frame = pl.DataFrame([{k: "" if v is None else str(v) for k, v in e.items()}
                          for e in reversed(events)], infer_schema_length=None).fill_null("")
    tables.show(frame)
