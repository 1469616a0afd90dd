"""The store as the dashboard holds it: opened once per build of the file and shared by all
sessions, built from the sample on first start, and explained (with a way out) when it is
broken. Every session asks here, so a rebuilt store is picked up by the next script run."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from service_insights import settings
from service_insights.catalogue import reference, selection
from service_insights.store import db, synth
from service_insights.ui import signin


@st.cache_resource(max_entries=4)
def _open_store(path: str, inode: int, mtime_ns: int) -> db.Store:
    return db.Store(path)


def store() -> db.Store:
    """The shared read-only store for the current build of the file."""
    path = settings.get().db_path
    sig = db.signature(path)
    return _open_store(str(path), sig.inode, sig.mtime_ns)


def _build_sample(path, **build) -> None:
    """Build the sample with visible progress; `build` as db.build_store takes it."""
    cfg = settings.get()
    with st.status(f"Building the synthetic sample ({cfg.sample_cases:,} cases). This takes "
                   "a few seconds and happens once.", expanded=True) as status:
        synth.write_sample(path, cfg.sample_cases, cfg.sample_seed, **build)
        status.update(label="Synthetic sample built.", state="complete", expanded=False)


def _cannot_build(exc: db.StoreError) -> None:
    st.error(f"The synthetic sample could not be built. {exc}")
    st.stop()


def ensure_store() -> db.Store:
    """Open the store, building the sample on first start; on a broken file, explain and
    offer what fits instead of a traceback. Stops the page when there is no store.

    Copies of the store left by a killed import or first-start build are removed first
    (db.remove_leftovers never touches one a live writer still holds). Every script run
    asks again, so a session open while another session or process replaces the store
    picks up the new build at its next interaction."""
    path = settings.get().db_path
    db.remove_leftovers(path)
    if not path.exists():
        st.info(f"No database at `{path}` yet: building the bundled synthetic sample.")
        try:
            # A second session arriving meanwhile waits for this build, then uses it.
            _build_sample(path, if_missing=True)
        except db.StoreError as exc:
            _cannot_build(exc)
        st.cache_data.clear()
    try:
        return store()
    except db.StoreOutdated as exc:
        if exc.data_kind != "synthetic":
            if exc.version in db.UPGRADABLE:
                st.error(f"{exc} It holds imported records, so it is not rebuilt "
                         "automatically: an administrator can upgrade it in place, keeping "
                         "every record, with `service-insights upgrade`.")
            else:
                st.error(f"{exc} It holds imported records, so it is not rebuilt "
                         "automatically: re-import them with this version "
                         "(see data/DICTIONARY.md).")
            st.stop()
        # A synthetic sample is regenerated from its seed: nothing is lost.
        st.info("The synthetic sample was built by an older version: rebuilding it.")
        try:
            _build_sample(path, replace_broken=db.signature(path))
        except db.StoreError as err:
            _cannot_build(err)
        st.cache_resource.clear()
        st.cache_data.clear()
        return store()
    except db.StoreError as exc:
        store_failed(exc)
        raise  # not reached: store_failed stops the script


def guarded(step, *args):
    """Run one step of the router (sign-in, filters, the page); a store that goes bad or
    away under it (a damaged block found by a query, a rebuild by another session) gets
    one explanation for the page, not a red box under every chart or a traceback."""
    try:
        result = step(*args)
    except db.StoreReplaced:
        # Another session or process swapped in a new build while this run read the old
        # one: run again on the new build (twice at most, then say so).
        tries = st.session_state.get("_store_replaced_tries", 0)
        if tries < 2:
            st.session_state["_store_replaced_tries"] = tries + 1
            st.rerun()
        store_failed(db.StoreMissing("The database was replaced while this page was drawn."))
    except db.StoreError as exc:
        store_failed(exc)
    st.session_state["_store_replaced_tries"] = 0
    return result


def store_failed(exc: db.StoreError) -> None:
    """Explain a store that cannot be read (at start, or a damaged block found by a query
    on any page), and offer what fits what it holds; always stops the script.

    Only a store known to hold the synthetic sample may be rebuilt in place, and only by
    an administrator: a store of real records is never swapped for the sample, whoever
    asks; its remedy is the organisation's backup."""
    path = settings.get().db_path
    if isinstance(exc, db.StoreMissing):
        st.warning("The database is being replaced right now (rebuilt or restored by "
                   "another session or process). Reload the page in a moment.")
        st.stop()
    st.error(f"**The database cannot be read.** {exc}")
    kind = db.known_kind(path)
    if kind != "synthetic":
        st.markdown(
            "It may hold imported records, so it is never replaced by the synthetic sample. "
            f"Stop the dashboard, restore `{path}` from your most recent backup (or start a "
            "new store and import your files again: see *Importing your records* in the "
            "README), then reload this page. Keep the damaged file for whoever looks after "
            "your backups.")
        st.stop()
    if not signin.admin_at_screen():
        st.markdown(
            "It holds only the synthetic sample, which can be rebuilt from its seed: an "
            "administrator can do that on this page, or whoever runs the server with "
            "`service-insights sample`. Reload this page once it has been rebuilt.")
        st.stop()
    st.write("It holds only the synthetic sample, so nothing is lost by rebuilding it. The "
             "broken file is kept beside it, renamed `.corrupt-<date>`.")
    try:
        broken = db.signature(path)
    except db.StoreMissing:
        st.stop()
    if st.button("Move the broken file aside and rebuild the sample", type="primary"):
        try:
            # Moves the file aside only if it is still the broken one: a file another
            # session has rebuilt meanwhile is kept.
            _build_sample(path, replace_broken=broken)
        except db.StoreError as err:
            _cannot_build(err)
        st.cache_resource.clear()
        st.cache_data.clear()
        st.success("Rebuilt.")
        st.rerun()
    st.stop()


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
    return selection.services_table(store()).sort("name")


def date_range() -> tuple[dt.date, dt.date]:
    """The first referral and the last event in the store, for the period filters."""
    sig = store().signature
    return _date_range(sig.inode, sig.mtime_ns)


def store_key() -> tuple:
    """What a cached figure depends on besides the query: the store build and the
    reference figures (thresholds and national lines drawn on charts)."""
    sig = store().signature
    return (sig.path, sig.inode, sig.mtime_ns, reference.version())
