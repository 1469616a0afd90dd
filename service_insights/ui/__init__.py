"""The browser layer: every module that imports Streamlit lives here (a ruff rule holds the
border). Pages in app_pages/ call these blocks; the work itself is in the core packages."""
