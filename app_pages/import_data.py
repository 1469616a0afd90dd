"""Import: an analyst loads their service's case records, checked and pseudonymised."""

import streamlit as st

from service_insights.ingest import importer
from service_insights.store import registry
from service_insights.ui import import_blocks, signin

st.title("Import your records")
if not signin.current().can("import"):
    st.error("Importing records is for administrators.")
    st.stop()
st.write(
    "Upload your case-management export (CSV, XLSX or Parquet), one row per case (one "
    "service's, or an area-wide file naming each case's service), or a Marac "
    "coordinator's list of referrals heard, one row per referral. Every "
    "value is checked first: if anything is wrong you get a list of problems by row and "
    "field, and nothing is stored. Case and client references are replaced by "
    "pseudonyms; names, dates of birth, addresses, postcodes, phone numbers, emails and "
    "notes are dropped. The columns and codes are described under \"Import format\" in "
    "`data/DICTIONARY.md`."
)
c1, c2 = st.columns(2)
c1.download_button("Download the cases template (CSV)",
                   importer.template_path().read_bytes(),
                   file_name="import_template.csv", mime="text/csv")
c2.download_button("Download the Marac template (CSV)",
                   importer.marac_template_path().read_bytes(),
                   file_name="marac_template.csv", mime="text/csv")

has_key = import_blocks.key_warning()
kind = import_blocks.store_kind()
if kind != "real":
    st.info("The dashboard is showing the synthetic sample. Real records are never mixed "
            "with fictional ones: register your service below to start a store for real "
            "records, then import into it.")
import_blocks.register_form(expanded=kind != "real")
import_blocks.show_result()

if kind == "real" and has_key:
    import_blocks.import_form(registry.services()["service_id"].to_list())
