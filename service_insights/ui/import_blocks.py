"""Streamlit blocks for the Import page: registering a service, running an import and
showing its result. The page arranges them; the work is in importer and registry."""

from __future__ import annotations

import streamlit as st

from service_insights import settings
from service_insights.access import audit
from service_insights.ingest import importer, pseudonym
from service_insights.store import db, registry
from service_insights.ui import signin, tables

PROBLEMS_SHOWN = 1_000


def key_warning() -> bool:
    """Explain how to set the pseudonymisation key; True when one is set."""
    try:
        pseudonym.load_key()
    except pseudonym.KeyMissing as exc:
        # The shell lines go in a code block: as Markdown, "~" would strike text through.
        text = str(exc)
        lines = text.splitlines()
        prose = [x for x in lines if not x.startswith("  ")]
        commands = [x.strip() for x in lines if x.startswith("  ")]
        st.warning("\n\n".join(prose[:1]) + (
            "\n\n```bash\n" + "\n".join(commands) + "\n```\n\n" if commands else "")
            + " ".join(prose[1:]))
        return False
    return True


def register_form(expanded: bool) -> None:
    with st.expander("Register a service", expanded=expanded), st.form("register_service"):
        st.caption("On the synthetic sample this starts a fresh store for real records; "
                   "the area fields are needed for a new area.")
        c1, c2, c3 = st.columns(3)
        sid = c1.text_input("Service id", placeholder="S01")
        name = c2.text_input("Service name")
        kind = c3.selectbox("Type", registry.SERVICE_TYPES)
        a1, a2, a3, a4 = st.columns(4)
        code = a1.text_input("Area code", placeholder="E06000001")
        area_name = a2.text_input("Area name")
        region = a3.text_input("Region", placeholder="North East")
        population = a4.number_input("Adult female population", min_value=0, step=1000)
        f1, f2 = st.columns(2)
        idva_fte = f1.number_input("Idva FTE (full-time equivalents; blank if unknown)",
                                   min_value=0.0, step=0.5, value=None)
        admin_fte = f2.number_input("Marac administrator FTE (blank if unknown)",
                                    min_value=0.0, step=0.1, value=None)
        if st.form_submit_button("Register"):
            area = (registry.Area(code, area_name, region, int(population))
                    if area_name or region or population else None)
            try:
                st.session_state["import_message"] = registry.register_service(
                    registry.Service(sid.strip(), name.strip(), kind, code.strip(),
                                     idva_fte, admin_fte), area)
                audit.record(signin.current().username, "service_registered",
                             service=sid.strip(), area=code.strip())
            except (registry.RegistrationError, db.StoreError) as exc:
                st.error(str(exc))
                return
            st.cache_data.clear()
            st.rerun()


KINDS = {
    "cases": "Cases for one service",
    "area": "Cases for several services (an area-wide file: its service_id column)",
    "marac": "Marac referrals (a Marac coordinator's file)",
}


def import_form(service_ids: list[str]) -> None:
    kind = st.radio("What the file holds", list(KINDS), format_func=KINDS.get)
    service = None
    if kind == "cases":
        service = st.selectbox("Service the records belong to", service_ids)
    elif kind == "area":
        st.caption("Each row names its service; every one must be a registered service you "
                   "may import for (" + ", ".join(service_ids) + "). One bad row and "
                   "nothing is imported.")
    else:
        st.caption("One row per referral heard: client_ref, marac_area, meeting_date, "
                   "referring_agency, children_in_household; optional dash_score, "
                   "perpetrator_ref, and service_id with service_client_ref.")
    upload = st.file_uploader("Export file (CSV, XLSX or Parquet)",
                              type=["csv", "xlsx", "parquet"])
    if upload is None or not st.button("Check and import", type="primary"):
        return
    with st.spinner("Checking every record..."):
        try:
            # The bytes stay in memory; the importer never writes the raw file anywhere.
            who = signin.current().username
            if kind == "marac":
                result = importer.import_marac_bytes(upload.getvalue(), upload.name, user=who)
            else:
                result = importer.import_bytes(upload.getvalue(), upload.name, service,
                                               services=service_ids, user=who)
        except (importer.KeyMissing, importer.ImportRefused, importer.FileUnreadable,
                db.StoreError) as exc:
            st.error(f"Nothing was imported. {exc}")
            return
    st.session_state["import_result"] = result
    audit.record(who, "import", ok=result.imported, service=service, kind=result.kind,
                 file=upload.name, rows_read=result.rows_read, rows_added=result.rows_added,
                 rows_replaced=result.rows_replaced, problems=result.problems.height)
    if result.imported:
        st.cache_data.clear()  # the dashboard's cached figures are from the old store
    st.rerun()  # redraw the sidebar from the new store and show the result above


def show_result() -> None:
    message = st.session_state.pop("import_message", None)
    if message:
        st.success(message)
    result: importer.ImportResult | None = st.session_state.get("import_result")
    if result is None:
        return
    for note in result.notes():
        st.caption(note)
    if not result.imported:
        st.error(result.headline())
        n = result.problems.height
        if n > PROBLEMS_SHOWN:
            st.caption(f"Showing the first {PROBLEMS_SHOWN:,} of {n:,} problems.")
        tables.show(result.problems.head(PROBLEMS_SHOWN))
        tables.show(result.problems.group_by("field").len("problems")
                    .sort("problems", descending=True), width="content")
        return
    st.success(result.headline())
    if result.kind == "marac":
        st.subheader("Referrals by Marac area")
        tables.show(result.by_area, width="content")
        return
    if result.by_service is not None and result.by_service.height > 1:
        st.subheader("Cases by service")
        tables.show(result.by_service, width="content")
    q = result.quality
    st.write(f"Open cases (no exit date): {q.open_cases:,}.")
    c1, c2 = st.columns(2)
    c1.subheader("Cases by financial year")
    tables.show(q.by_year, where=c1, width="content")
    c2.subheader("Date ranges")
    tables.show(q.dates, where=c2, width="content")
    st.subheader("Optional fields left blank")
    tables.show(q.blanks)


def store_kind() -> str | None:
    return registry.data_kind(settings.get().db_path)
