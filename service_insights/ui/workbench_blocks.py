"""The workbench page's blocks: the editor, the protected result, a quick chart, and
saving the query as a catalogue file."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from service_insights import settings
from service_insights.access import audit
from service_insights.catalogue import catalog, workbench
from service_insights.presentation import charts
from service_insights.ui import signin, tables

EXAMPLE = """select
    risk_level,
    count(*) as cases,
    count(*) filter (where has_children) as with_children
from cases
where referral_date between $period_start and $period_end
group by risk_level
order by risk_level"""
EXAMPLE_RATES = "pct_with_children = with_children / cases"


def render(store, selection) -> None:
    viewer = signin.current()
    if not viewer.can("workbench"):
        st.error("The SQL workbench is for analysts.")
        return
    sql = st.text_area("SQL (one SELECT over cases, marac_referrals, services, areas)",
                       value=st.session_state.get("wb_sql", EXAMPLE), height=220,
                       key="wb_sql")
    rates_text = st.text_input("Rates (optional, one per line as name = count / base)",
                               value=st.session_state.get("wb_rates", EXAMPLE_RATES),
                               key="wb_rates")
    st.caption("`$period_start` and `$period_end` are the sidebar's period. A query returns "
               "grouping fields (gender, age_band, risk_level, financial_year, ... never "
               "references, exact dates or free numbers) and plain counts (`count(*)`, "
               "`count(col)`, with or without `FILTER (WHERE ...)`); rates are declared "
               "above as a count over a base. Every result passes disclosure control like a "
               "chart, and every run is written to the audit log.")
    if st.button("Run", type="primary", key="wb_run"):
        connection = workbench.open_connection(store.path)
        try:
            rates = workbench.parse_rates(rates_text)
            outcome = workbench.run(connection, sql, selection.scope, selection.period,
                                    viewer, settings.get(), rates=rates)
        except workbench.Refused as exc:
            st.session_state.pop("wb_outcome", None)
            st.error(str(exc))
            return
        finally:
            connection.close()
        st.session_state["wb_outcome"] = (sql, rates_text, outcome)
    held = st.session_state.get("wb_outcome")
    if held is None or held[0] != sql or held[1] != rates_text:
        return
    outcome = held[2]
    shown = outcome.protected.display()
    tables.show(shown)
    note = outcome.protected.note()
    st.caption(f"{shown.height} rows in {outcome.seconds * 1000:.0f} ms. {note}"
               + (" The result was cut at the row limit." if outcome.truncated else ""))
    _quick_chart(outcome)
    if viewer.can("save_query"):  # never in the demo
        _save_form(outcome)


def _quick_chart(outcome: workbench.Outcome) -> None:
    frame = outcome.protected.frame
    dims = outcome.keys
    values = outcome.measures + outcome.counts
    if not dims or not values:
        return
    x, y = dims[0], values[0]
    fig = go.Figure(go.Bar(x=[str(v) for v in frame[x].to_list()], y=frame[y].to_list(),
                           marker_color=charts.SCOPE_COLOUR))
    fig.update_layout(template="plotly_white", title=f"{y} by {x}", height=360,
                      xaxis_title=x, yaxis_title=y, margin=dict(t=50, l=60, r=20, b=60))
    st.plotly_chart(fig, width="stretch", theme=None, key="wb_chart",
                    config=tables.FIGURE_CONFIG)


def _save_form(outcome: workbench.Outcome) -> None:
    dims = outcome.keys
    pages = sorted({e.spec.page for e in catalog.discover(settings.get().queries_dir)
                    if e.spec and e.spec.chart != "finding"})
    with st.expander("Save as a chart in queries/"):
        with st.form("wb_save"):
            title = st.text_input("Title")
            description = st.text_input("Description (one sentence a manager understands)")
            page = st.selectbox("Page", pages)
            chart = st.selectbox("Chart", ["bar", "line", "table"])
            x = st.selectbox("x (categories)", dims) if dims else None
            y = st.selectbox("y (value)", outcome.measures + outcome.counts)
            save = st.form_submit_button("Save")
        if save:
            header = {"title": title, "description": description, "page": page,
                      "chart": chart}
            if chart != "table":
                header.update({"x": x, "y": y})
            header["counts"] = list(outcome.counts)
            try:
                path = workbench.save(outcome.sql, header, settings.get().queries_dir,
                                      rates=outcome.rates)
            except workbench.Refused as exc:
                st.error(str(exc))
                return
            audit.record(signin.current().username, "query_saved",
                         file=str(path.relative_to(settings.get().queries_dir.parent)))
            st.success(f"Saved as `{path.relative_to(settings.get().queries_dir.parent)}`: "
                       f"it is now on the {page} page.")
