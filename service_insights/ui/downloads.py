"""Download controls in the dashboard: a chart's image and data files, and the report pack.

Files are made only when asked for: each button holds a function that Streamlit runs on
click, so drawing a page renders no image. The report pack is built on request, with
progress, and kept in the viewer's own session for the selection it was built for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import streamlit as st

from service_insights import settings
from service_insights.access import audit, grants
from service_insights.catalogue.results import ChartResult
from service_insights.exports import chart_files, images, report_pack
from service_insights.store import db
from service_insights.ui import signin

_PACK_KEY = "report_pack_built"


def download_buttons(res: ChartResult, key: str) -> None:
    """A small "Download" popover under a chart: PNG, SVG, PDF, CSV, XLSX."""
    if res.error is not None or res.data is None:
        return
    marking = settings.get().protective_marking
    no_images = images.unavailable_reason()
    no_audit = audit.problem()
    with st.popover("Download", icon=":material/download:"):
        st.caption(f"Marked {marking}. Files carry the same suppression as the screen, "
                   "with the scope, period, source and data date.")
        for fmt, col in zip(chart_files.FORMATS, st.columns(len(chart_files.FORMATS)), strict=True):
            why = no_audit or (no_images if fmt in images.FORMATS else None)
            col.download_button(
                fmt.upper(), data=_maker(res, fmt, marking, signin.current().username),
                file_name=chart_files.file_name(res, fmt), mime=chart_files.MIME[fmt],
                key=f"download-{key}-{fmt}", on_click="ignore", disabled=bool(why),
                help=why or f"Download as {fmt.upper()}")
        if no_audit or no_images:
            st.caption(no_audit or no_images)


def _maker(res: ChartResult, fmt: str, marking: str, who: str):
    # Runs on Streamlit's worker thread at click time: no st calls, only the export.
    def make() -> bytes:
        data = chart_files.export(res, fmt, marking)
        audit.record(who, "export", format=fmt, query=res.spec.id, scope=res.scope.label,
                     period=res.period.label)
        return data

    return make


def pack_pages() -> list[str]:
    return report_pack.pages_in(settings.get().queries_dir)


def page_title(page: str) -> str:
    return report_pack.page_title(page)


def build_pack(store: db.Store, selection, pages: Sequence[str],
               findings: list | None = None) -> None:
    """Build the pack with visible progress and keep it for `offer_pack`."""
    no_audit = audit.problem()
    if no_audit:
        st.error(no_audit)
        return
    with st.status(f"Building the report pack for {selection.scope.label}, "
                   f"{selection.period.label}…", expanded=True) as status:
        bar = st.progress(0.0)

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)

        try:
            pack = report_pack.build(store, selection.scope, selection.period,
                                     settings.get(), pages=pages, findings=findings,
                                     progress=progress,
                                     audience=grants.audience(signin.current()),
                                     comparator=selection.comparator)
        except Exception as exc:  # noqa: BLE001 - say what went wrong, keep the page
            status.update(label=f"The report pack could not be built: {exc}", state="error")
            return
        label = (f"Report pack ready: {pack.charts} charts." if not pack.omitted else
                 f"Report pack ready: {pack.charts} charts, {len(pack.omitted)} omitted.")
        status.update(label=label, state="complete", expanded=False)
    try:
        audit.record(signin.current().username, "export", format="pack",
                     scope=selection.scope.label, period=selection.period.label,
                     pages=list(pages), charts=pack.charts, omitted=len(pack.omitted))
    except OSError:  # the folder turned read-only while the pack was built
        st.error(audit.problem() or "The report pack could not be recorded in the audit "
                 "log, so it is not offered.")
        return
    st.session_state[_PACK_KEY] = (_pack_key(store, selection, pages), pack)


def _pack_key(store: db.Store, selection, pages: Sequence[str]) -> tuple:
    sig = store.signature
    return (sig.path, sig.inode, sig.mtime_ns, selection.scope, selection.period,
            selection.comparator,
            tuple(pages))


def offer_pack(store: db.Store, selection, pages: Sequence[str]) -> None:
    """The download for a pack built for exactly this selection, and what it left out."""
    kept = st.session_state.get(_PACK_KEY)
    if not kept or kept[0] != _pack_key(store, selection, pages):
        return
    pack: report_pack.Pack = kept[1]
    st.download_button("Download the report pack (PDF)", data=pack.pdf,
                       file_name=pack.file_name, mime="application/pdf", type="primary",
                       icon=":material/picture_as_pdf:", on_click="ignore",
                       key="download-report-pack")
    if pack.omitted:
        st.warning("Left out of the pack:\n\n" + "\n".join(
            f"- **{o.item}**: {o.reason}" for o in pack.omitted))


def cli_hint(selection) -> str:
    """The command line that builds the same pack, for a monthly run."""
    scope = selection.scope
    if scope.is_all:
        what = ""
    elif scope.by_service:
        what = " ".join(f"--service {s}" for s in scope.services) + " "
    else:
        what = " ".join(f"--area {a}" for a in scope.areas or ()) + " "
    label = selection.period.label
    if label.startswith("financial year "):
        when = f"--year {label.removeprefix('financial year ')}"
    elif re.fullmatch(r"\d{4}-\d{2} Q[1-4]", label):
        year, quarter = label.split(" Q")
        when = f"--year {year} --quarter {quarter}"
    else:
        return "the command line takes a financial year or a quarter, not custom dates"
    return f"service-insights export {what}{when} --out pack.pdf"
