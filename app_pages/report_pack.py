"""Report pack: one PDF of the chosen pages for the selected area or services and period."""

import streamlit as st

from service_insights import components, export_ui

selection = components.current_selection()
store = components.store()
st.title("Report pack")
st.write(
    "One PDF for the area or services and the period chosen in the sidebar: a cover, the "
    "headline figures, every chart of the pages you pick with its description, services "
    "side by side when several are chosen, and the findings. Every number has passed the "
    "same disclosure control as the screen. Each chart can also be downloaded on its own "
    "from the Download button under it."
)
st.markdown(f"**Selection:** {selection.scope.label} · {selection.period.label}")
available = export_ui.pack_pages()
pages = st.multiselect("Pages to include", available, default=available, key="pack_pages",
                       format_func=export_ui.page_title)
if st.button("Build the report pack", type="primary", disabled=not pages):
    export_ui.build_pack(store, selection, pages,
                         findings=components.findings_report(selection).findings)
export_ui.offer_pack(store, selection, pages)
st.caption(f"From the command line (for a monthly run): `{export_ui.cli_hint(selection)}`.")
