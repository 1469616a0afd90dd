"""The one way the dashboard draws a table, with no download of its own (and the config
that takes Plotly's own image download off figures on screen).

Streamlit's interactive table has a toolbar "Download as CSV" (and copy to clipboard)
that would write figures with no stamp, no formula neutralising and no audit entry.
Every download must go through the export path (ui/downloads.py), so the dashboard sets
Streamlit's `client.disableDataExport` (.streamlit/config.toml beside dashboard.py). If a
deployment turns it off (a command-line flag wins over that file), tables are drawn as
static HTML tables, which have no toolbar, and the option is switched back on for the
next run. Streamlit sends the option to the browser at the start of each run, so this
run's tables follow the value it sent.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

EXPORT_OPTION = "client.disableDataExport"

FIGURE_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}
"""Plotly's config for figures on screen: its mode bar's "Download plot as a png" would
write an image without the stamp (marking, scope, query, export date) or an audit entry,
so it goes too; the Download menu under each chart makes the stamped image."""


def export_disabled() -> bool:
    return st.get_option(EXPORT_OPTION) is True


def show(frame: pl.DataFrame, *, where=None, width: int | str = "stretch") -> None:
    """A read-only table of `frame` (already protected where it holds figures), in the
    container `where` (a column, say), or the page."""
    place = where if where is not None else st
    if export_disabled():
        place.dataframe(frame, hide_index=True, width=width)
        return
    st.set_option(EXPORT_OPTION, True)
    place.table(frame, hide_index=True, border="horizontal", width=width)
