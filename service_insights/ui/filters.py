"""The shared sidebar filters (period, area, service) and the selection every page reads,
always narrowed to what the signed-in viewer may see."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from service_insights.access import grants
from service_insights.catalogue import periods
from service_insights.catalogue.scope import ALL_SERVICES
from service_insights.catalogue.selection import Selection, resolve_scope, viewer_scope
from service_insights.ui import lifecycle, signin


def sidebar_filters(viewer: grants.Viewer | None = None) -> Selection:
    """Period, area and service, shared by every page (the router draws them); only the
    services the viewer may see are offered."""
    viewer = viewer or signin.current()
    s = lifecycle.store()
    services = grants.visible_services(lifecycle.services_table(), viewer)
    first, last = lifecycle.date_range()
    years = periods.financial_years_between(first, last)
    with st.sidebar:
        st.header("Filters")
        kind = st.radio("Period", ["Financial year", "Quarter", "Custom dates"],
                        key="period_kind", horizontal=False)
        if kind == "Financial year":
            fy = st.selectbox("Financial year (April to March)", years, key="fy")
            period = periods.financial_year(fy)
        elif kind == "Quarter":
            fy = st.selectbox("Financial year", years, key="q_fy")
            q = st.selectbox("Quarter", [1, 2, 3, 4], key="q",
                             format_func=lambda q: ["Q1 Apr-Jun", "Q2 Jul-Sep", "Q3 Oct-Dec",
                                                    "Q4 Jan-Mar"][q - 1])
            period = periods.quarter(fy, q)
        else:
            default = (periods.financial_year(years[0]).start, last)
            picked = st.date_input("From and to", value=default, min_value=first,
                                   max_value=last, key="custom", format="DD/MM/YYYY")
            if isinstance(picked, tuple) and len(picked) == 2:
                period = periods.custom(picked[0], picked[1])
            else:
                st.caption("Pick an end date too.")
                period = periods.custom(picked[0] if picked else first, last)
        area_names = dict(zip(services["area_code"], services["area_name"], strict=True))
        areas = st.multiselect("Area", sorted(area_names), key="areas",
                               format_func=lambda c: f"{area_names[c]} ({c})",
                               placeholder="All areas")
        pool = services.filter(pl.col("area_code").is_in(areas)) if areas else services
        service_names = dict(zip(pool["service_id"], pool["name"], strict=True))
        chosen = st.multiselect("Service", list(service_names), key="services",
                                format_func=lambda i: service_names.get(i, i),
                                placeholder="All services in the areas" if areas
                                else "All services")
        chosen = [c for c in chosen if c in service_names]
        if s.meta.get("data_kind") == "synthetic":
            st.warning("Synthetic sample data: not real services or people.",
                       icon=":material/info:")
        st.caption(f"Data as of {s.meta.get('data_as_of', 'unknown')}.")
    scope = resolve_scope(services, areas, chosen)
    if scope.is_all:  # nothing chosen: everything this viewer may see, named
        scope = viewer_scope(services, viewer)
    return Selection(grants.clamp(scope, viewer), period)


def current_selection() -> Selection:
    """The sidebar's choice, narrowed to what the signed-in viewer may see."""
    sel = st.session_state.get("selection")
    if sel is None:
        sel = Selection(ALL_SERVICES, periods.financial_year(
            periods.fy_start_year(dt.date.today())))
    return Selection(grants.clamp(sel.scope, signin.current()), sel.period)
