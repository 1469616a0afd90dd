"""Users: who can sign in, with which role and services (administrators)."""

import streamlit as st

from service_insights.ui import lifecycle, user_admin

st.title("Users")
st.caption("Passwords are stored only as argon2id hashes. Changes are written to the "
           "audit log.")
user_admin.render(lifecycle.services_table())
