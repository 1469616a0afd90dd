"""The store as the dashboard holds it: opened once per build of the file and shared by all
sessions, built from the sample on first start, and explained (with a way out) when it is
broken. Every session asks here, so a rebuilt store is picked up by the next script run."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from service_insights import settings
from service_insights.catalogue import reference
from service_insights.store import db, synth


@st.cache_resource(max_entries=4)
def _open_store(path: str, inode: int, mtime_ns: int) -> db.Store:
    return db.Store(path)


def store() -> db.Store:
    """The shared read-only store for the current build of the file."""
    path = settings.get().db_path
    sig = db.signature(path)
    return _open_store(str(path), sig.inode, sig.mtime_ns)


def _build_sample(path) -> None:
    cfg = settings.get()
    with st.status(f"Building the synthetic sample ({cfg.sample_cases:,} cases). This takes "
                   "a few seconds and happens once.", expanded=True) as status:
        synth.write_sample(path, cfg.sample_cases, cfg.sample_seed)
        status.update(label="Synthetic sample built.", state="complete", expanded=False)


def ensure_store() -> db.Store:
    """Open the store, building the sample on first start; on a broken file, explain and
    offer a rebuild instead of a traceback. Stops the page when there is no store.

    Copies of the store left by a killed import or first-start build are removed first
    (db.remove_leftovers never touches one a live writer still holds)."""
    path = settings.get().db_path
    db.remove_leftovers(path)
    if not path.exists():
        st.info(f"No database at `{path}` yet: building the bundled synthetic sample.")
        _build_sample(path)
        st.cache_data.clear()
    try:
        return store()
    except db.StoreOutdated as exc:
        if exc.data_kind != "synthetic":
            st.error(f"{exc} It holds imported records, so it is not rebuilt automatically: "
                     "re-import them with this version (see data/DICTIONARY.md).")
            st.stop()
        # A synthetic sample is regenerated from its seed: nothing is lost.
        st.info("The synthetic sample was built by an older version: rebuilding it.")
        _build_sample(path)
        st.cache_resource.clear()
        st.cache_data.clear()
        return store()
    except db.StoreError as exc:
        st.error(f"The database could not be opened. {exc}")
        st.write("You can move the broken file aside (it is kept, renamed, in case it holds "
                 "imported records) and rebuild the synthetic sample.")
        if st.button("Move the broken file aside and rebuild the sample", type="primary"):
            moved = db.quarantine(path)
            _build_sample(path)
            st.cache_resource.clear()
            st.cache_data.clear()
            st.success(f"Rebuilt. The broken file was kept as `{moved.name}`.")
            st.rerun()
        st.stop()


@st.cache_data(ttl=3600, max_entries=8)
def _services_table(inode: int, mtime_ns: int) -> pl.DataFrame:
    return store().query(
        "select service_id, name, area_code, area_name from main.services order by name").frame


@st.cache_data(ttl=3600, max_entries=8)
def _date_range(inode: int, mtime_ns: int) -> tuple[dt.date, dt.date]:
    frame = store().query(
        "select min(referral_date) as first, max(coalesce(exit_date, referral_date)) as last "
        "from main.cases").frame
    first, last = frame["first"][0], frame["last"][0]
    if first is None:
        today = dt.date.today()
        return today, today
    return first, last


def services_table() -> pl.DataFrame:
    """Every service with its area, for forms that assign services (admins only)."""
    sig = store().signature
    return _services_table(sig.inode, sig.mtime_ns)


def date_range() -> tuple[dt.date, dt.date]:
    """The first referral and the last event in the store, for the period filters."""
    sig = store().signature
    return _date_range(sig.inode, sig.mtime_ns)


def store_key() -> tuple:
    """What a cached figure depends on besides the query: the store build and the
    reference figures (thresholds and national lines drawn on charts)."""
    sig = store().signature
    return (sig.path, sig.inode, sig.mtime_ns, reference.version())
