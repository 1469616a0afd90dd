"""Users: who can sign in, with which role and services (administrators)."""

import streamlit as st

from service_insights import components, users_ui

st.title("Users")
st.caption("Passwords are stored only as argon2id hashes. Changes are written to the "
           "audit log.")
users_ui.render(components.services_table())
