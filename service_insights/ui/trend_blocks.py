"""Home's recent-trend block: each headline measure's Fingertips trend marker over the
last five financial years, with "worse than comparator and getting worse" shown first
and prominently. The markers come from findings/trends.py on the same protected result
the Overview's annual chart draws (one query, one cache entry)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from service_insights.catalogue.selection import Selection
from service_insights.findings import trends
from service_insights.ui import chart_blocks, tables


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def trend_summary(selection: Selection) -> None:
    res = chart_blocks.chart_result(trends.TREND_QUERY, selection)
    st.subheader("Recent trends")
    if not hasattr(res, "spec"):
        chart_blocks.show_error(res, "The trends could not be worked out")
        return
    if res.error:
        chart_blocks.show_error(res.error, "The trends could not be worked out")
        return
    items = trends.measure_trends(res)
    who = res.benchmark_label or "the comparator"
    # Mid-sentence: "other Idva services", "all services" (an acronym keeps its case).
    said = who if who[:2].isupper() else who[0].lower() + who[1:]
    alerts = [m for m in items if m.alert]
    for m in alerts:
        # A warning, not st.error: st.error is kept for things that went wrong.
        st.warning(
            f"**Worse than {said} and getting "
            f"worse: {m.measure}.** {_pct(m.latest)} in {m.latest_year} against "
            f"{_pct(m.comparator)} at {said}; "
            f"{m.trend.marker.lower()} over {m.trend.years[0]} to {m.trend.years[-1]}.",
            icon="⚠️")
    if not alerts and items:
        st.success("No headline measure is both worse than the comparator and getting worse.")
    # One latest year for every measure (the usual case) goes in the header, leaving the
    # trend column room for "Decreasing and getting worse" at the page's width.
    years = {m.latest_year for m in items}
    one_year = next(iter(years)) if len(years) == 1 and None not in years else None
    rows = [{
        "Measure": m.measure,
        **({} if one_year else {"Latest year": m.latest_year or "–"}),
        (f"Figure, {one_year}" if one_year else "Figure"): _pct(m.latest),
        who: _pct(m.comparator),
        "Recent trend (5 years)": f"{m.trend.symbol} {m.trend.marker}",
    } for m in items]
    if rows:
        tables.show(pl.DataFrame(rows))
    st.caption(trends.METHOD_NOTE + " Better or worse is said only where a higher figure is "
               "clearly better (the whole-family offer, outcomes recorded, partner-agency "
               "referrals); the others describe the caseload and are marked increasing or "
               "decreasing. " + (res.data.note() if res.data is not None else "")
               + ("" if res.benchmark is not None else " " + res.benchmark_note))
