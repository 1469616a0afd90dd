"""The shared sidebar filters (period, area, service) and the selection every page reads,
always narrowed to what the signed-in viewer may see."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from service_insights.access import grants
from service_insights.catalogue import comparators, periods
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
    _restore(years, services, first, last)
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
        comparator = st.selectbox(
            "Compare with", list(comparators.KINDS), key="comparator",
            format_func=comparators.KINDS.get,
            help="Services of the same type is the default: SafeLives publishes separate "
                 "Insights data sets per service type because they are not comparable.")
        if s.meta.get("data_kind") == "synthetic":
            st.warning("Synthetic sample data: not real services or people.",
                       icon=":material/info:")
        st.caption(f"Data as of {s.meta.get('data_as_of', 'unknown')}.")
    _remember(kind)
    scope = resolve_scope(services, areas, chosen)
    if scope.is_all:  # nothing chosen: everything this viewer may see, named
        scope = viewer_scope(services, viewer)
    return Selection(grants.clamp(scope, viewer), period, comparator)


# The sidebar's choice in the address (?period=quarter&fy=2023-24&q=2&service=S03), so that
# a refresh, a bookmark or a link opened in a new tab shows the same filters: Streamlit
# starts a new session, with empty session state, for each of those.
_KINDS = {"year": "Financial year", "quarter": "Quarter", "custom": "Custom dates"}


def _restore(years: list[str], services: pl.DataFrame, first: dt.date, last: dt.date) -> None:
    """Seed the filters from the address once per browser session, keeping only what
    this viewer may choose: the address is typed by anyone, so it never widens a scope
    (and grants.clamp narrows the scope again in any case)."""
    if st.session_state.get("_filters_restored"):
        return
    st.session_state["_filters_restored"] = True
    qp = st.query_params
    seed = {}
    kind = _KINDS.get(qp.get("period", ""))
    if kind:
        seed["period_kind"] = kind
    if qp.get("fy") in years:
        seed["fy" if kind != "Quarter" else "q_fy"] = qp.get("fy")
    if qp.get("q") in ("1", "2", "3", "4"):
        seed["q"] = int(qp.get("q"))
    try:
        start, end = (dt.date.fromisoformat(qp.get(k, "")) for k in ("from", "to"))
        if first <= start <= end <= last:
            seed["custom"] = (start, end)
    except ValueError:
        pass
    area_codes = set(services["area_code"])
    areas = [a for a in qp.get_all("area") if a in area_codes]
    if areas:
        seed["areas"] = areas
    pool = services.filter(pl.col("area_code").is_in(areas)) if areas else services
    chosen = [x for x in qp.get_all("service") if x in set(pool["service_id"])]
    if chosen:
        seed["services"] = chosen
    if qp.get("comparator") in comparators.KINDS:
        seed["comparator"] = qp.get("comparator")
    for key, value in seed.items():
        st.session_state.setdefault(key, value)


def _remember(kind: str) -> None:
    """Write the sidebar's choice to the address (only what changed)."""
    state = st.session_state
    wanted: dict[str, str | list[str]] = {
        "period": next(k for k, v in _KINDS.items() if v == kind)}
    if kind == "Financial year":
        wanted["fy"] = state.get("fy")
    elif kind == "Quarter":
        wanted["fy"], wanted["q"] = state.get("q_fy"), str(state.get("q"))
    else:
        picked = state.get("custom")
        if isinstance(picked, tuple | list) and len(picked) == 2:
            wanted["from"], wanted["to"] = picked[0].isoformat(), picked[1].isoformat()
    wanted["area"] = list(state.get("areas") or [])
    wanted["service"] = list(state.get("services") or [])
    if state.get("comparator") not in (None, comparators.DEFAULT):
        wanted["comparator"] = state.get("comparator")
    qp = st.query_params
    for key in ("period", "fy", "q", "from", "to", "area", "service", "comparator"):
        value = wanted.get(key)
        if value in (None, [], "None"):
            if key in qp:
                del qp[key]
        elif (qp.get_all(key) if isinstance(value, list) else qp.get(key)) != value:
            qp[key] = value


def current_selection() -> Selection:
    """The sidebar's choice, narrowed to what the signed-in viewer may see."""
    sel = st.session_state.get("selection")
    if sel is None:
        sel = Selection(ALL_SERVICES, periods.financial_year(
            periods.fy_start_year(dt.date.today())))
    return Selection(grants.clamp(sel.scope, signin.current()), sel.period, sel.comparator)
