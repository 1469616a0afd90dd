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
    round(100.0 * count(*) filter (where has_children) / count(*), 1) as pct_with_children
from cases
where referral_date between $period_start and $period_end
group by risk_level
order by cases desc"""


def render(store, selection) -> None:
    viewer = signin.current()
    if not viewer.can("workbench"):
        st.error("The SQL workbench is for analysts.")
        return
    sql = st.text_area("SQL (one SELECT over cases, marac_referrals, services, areas)",
                       value=st.session_state.get("wb_sql", EXAMPLE), height=220,
                       key="wb_sql")
    st.caption("`$period_start` and `$period_end` are the sidebar's period. Results are "
               "aggregates only and pass disclosure control: whole-number columns are "
               "treated as counts, other numbers are withheld where the smallest count "
               "beside them is under the minimum base.")
    if st.button("Run", type="primary", key="wb_run"):
        connection = workbench.open_connection(store.path)
        try:
            outcome = workbench.run(connection, sql, selection.scope, selection.period,
                                    viewer, settings.get())
        except workbench.Refused as exc:
            st.session_state.pop("wb_outcome", None)
            st.error(str(exc))
            audit.record(viewer.username, "workbench_run", ok=False)
            return
        finally:
            connection.close()
        st.session_state["wb_outcome"] = outcome
        audit.record(viewer.username, "workbench_run", ok=True,
                     result_rows=outcome.protected.frame.height)
    outcome = st.session_state.get("wb_outcome")
    if outcome is None or outcome.sql != sql.strip().rstrip(";").strip():
        return
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
    dims = [c for c, t in frame.schema.items() if not t.is_numeric()]
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
    frame = outcome.protected.frame
    dims = [c for c, t in frame.schema.items() if not t.is_numeric()]
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
            rate_count = rate_base = None
            if outcome.measures:
                rate_count = st.selectbox("For a rate y: the count behind it", outcome.counts)
                rate_base = st.selectbox("and its base", outcome.counts)
            save = st.form_submit_button("Save")
        if save:
            header = {"title": title, "description": description, "page": page,
                      "chart": chart}
            if chart != "table":
                header.update({"x": x, "y": y})
            counts = [c for c in outcome.counts if c != rate_base]
            if counts:
                header["counts"] = counts
            if outcome.measures and rate_count and rate_base:
                header["rates"] = {m: {"count": rate_count, "base": rate_base}
                                   for m in outcome.measures}
            try:
                path = workbench.save(outcome.sql, header, settings.get().queries_dir)
            except workbench.Refused as exc:
                st.error(str(exc))
                return
            audit.record(signin.current().username, "query_saved",
                         file=str(path.relative_to(settings.get().queries_dir.parent)))
            st.success(f"Saved as `{path.relative_to(settings.get().queries_dir.parent)}`: "
                       f"it is now on the {page} page.")
