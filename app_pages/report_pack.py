"""Report pack: one PDF of the chosen pages for the selected area or services and period."""

import streamlit as st

from service_insights.ui import downloads, filters, findings_blocks, lifecycle

selection = filters.current_selection()
store = lifecycle.store()
st.title("Report pack")
st.write(
    "One PDF for the area or services and the period chosen in the sidebar: a cover, the "
    "headline figures, every chart of the pages you pick with its description, services "
    "side by side when several are chosen, and the findings. Every number has passed the "
    "same disclosure control as the screen. Each chart can also be downloaded on its own "
    "from the Download button under it."
)
st.markdown(f"**Selection:** {selection.scope.label} · {selection.period.label}")


# Choosing pages and building reruns only this part of the page (st.fragment), not the
# sign-in, sidebar filters and text above it; the sidebar still reruns the whole page.
@st.fragment
def pack_builder() -> None:
    available = downloads.pack_pages()
    pages = st.multiselect("Pages to include", available, default=available,
                           key="pack_pages", format_func=downloads.page_title)
    if st.button("Build the report pack", type="primary", disabled=not pages):
        downloads.build_pack(store, selection, pages,
                             findings=findings_blocks.findings_report(selection).findings)
    downloads.offer_pack(store, selection, pages)


pack_builder()
st.caption(f"From the command line (for a monthly run): `{downloads.cli_hint(selection)}`.")
