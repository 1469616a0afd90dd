"""Chart blocks that pages call: a query's protected result, cached; its figure or KPI
tiles; the caption, downloads and definitions under it; and the Query health table.

Cached results are keyed by the store build, the query file's content, the scope, the
period and the audience (which services the viewer may see and holds: a service
manager's exact counts are never served to a commissioner who must see them perturbed),
so one viewer's figures are never served to another and a rebuilt store is never
answered from an old cache. Errors are not cached.
"""

from __future__ import annotations

import contextlib
import queue
import threading

import polars as pl
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from service_insights import settings
from service_insights.access import grants
from service_insights.catalogue import catalog, comparators, coverage, reference, results
from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import Scope
from service_insights.catalogue.selection import Selection
from service_insights.findings import significance, stats
from service_insights.presentation import capacity, captions, charts
from service_insights.ui import downloads, lifecycle, signin, tables
from service_insights.ui.filters import current_selection

SHARED_FIGURES = 300
"""Live figures kept for all sessions (_shared_figure); each is about 150 KB."""

PREFETCH_THREADS = 2
"""Queries a page runs side by side before drawing (the machine's cores: DuckDB releases
Python's lock while it works, so two queries really do run at once)."""


class _Uncached(Exception):
    """Carries a failed result out of the cached function, so failures are not cached."""

    def __init__(self, result: results.ChartResult):
        super().__init__(str(result.error))
        self.result = result


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _cached_result(store_key: tuple, qid: str, digest: str, scope: Scope,
                   period: Period, audience: results.Audience,
                   comparator: str = comparators.DEFAULT) -> results.ChartResult:
    entry = catalog.get(settings.get().queries_dir, qid)
    result = results.run(lifecycle.store(), entry.spec, scope, period, settings.get(),
                         audience, comparator)
    if result.error:
        raise _Uncached(result)
    return result


def _result_key(entry: catalog.Entry, selection: Selection) -> tuple:
    """_cached_result's arguments for this query and the current viewer. The scope is
    narrowed to the viewer's grants before it becomes a cache key: cached results are
    shared by all sessions. Built in the script's thread (it reads the session)."""
    viewer = signin.current()
    return (lifecycle.store_key(), entry.id, entry.spec.digest,
            grants.clamp(selection.scope, viewer), selection.period,
            grants.audience(viewer), selection.comparator)


def chart_result(qid: str, selection: Selection) -> results.ChartResult | catalog.QueryError:
    entry = catalog.get(settings.get().queries_dir, qid)
    if entry.error:
        return entry.error
    try:
        return _cached_result(*_result_key(entry, selection))
    except _Uncached as exc:
        return exc.result


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _cached_figure(store_key: tuple, qid: str, digest: str, scope: Scope, period: Period,
                   audience: results.Audience, comparator: str = comparators.DEFAULT):
    # Building a figure (Plotly's validation) costs more than the query behind it, so the
    # figure is cached under the same key as its result (everything that changes the
    # result changes the figure: the store build, the query, scope, period, audience and
    # comparator).
    return charts.build(_cached_result(store_key, qid, digest, scope, period, audience,
                                       comparator))


@st.cache_resource(ttl=3600, max_entries=SHARED_FIGURES, show_spinner=False)
def _shared_figure(store_key: tuple, qid: str, digest: str, scope: Scope, period: Period,
                   audience: results.Audience, comparator: str = comparators.DEFAULT):
    # The recently drawn figures as live objects shared by every session, over the
    # pickled cache above: st.cache_data unpickles a fresh Figure on every hit (15 ms a
    # chart, the largest part of a cached page's run; benchmarks/load.py). Live figures
    # are ~150 KB against ~8 KB pickled, so only SHARED_FIGURES of them are kept (about
    # 45 MB); a figure that falls out is unpickled from the 2,000 below, not rebuilt.
    # Safe to share: nothing changes a figure once built (st.plotly_chart serialises a
    # copy, Figure.to_dict; exports build their own). Same key as the result, so one
    # viewer's figure is never another's (tests/test_shared_figures.py attacks that).
    return _cached_figure(store_key, qid, digest, scope, period, audience, comparator)


def figure(res: results.ChartResult, comparator: str = comparators.DEFAULT):
    """The figure of `res`, which `comparator` (the selection's) produced: a ChartResult
    does not carry its comparator, so the caller names it, and it is part of the key."""
    return _shared_figure(lifecycle.store_key(), res.spec.id, res.spec.digest, res.scope,
                          res.period, res.audience, comparator)


def show_error(error: catalog.QueryError, title: str | None = None) -> None:
    st.error(f"**{title or 'This chart could not be drawn'}**  \n`{error.path}`, line "
             f"{error.line}: {error.message}")


def render_query(qid: str, selection: Selection | None = None) -> None:
    """One chart block: figure or KPIs, then description, period, base and notes."""
    selection = selection or current_selection()
    res = chart_result(qid, selection)
    if isinstance(res, catalog.QueryError):
        show_error(res)
        return
    if res.error:
        show_error(res.error, res.spec.title)
        return
    spec = res.spec
    with st.container(border=True):
        if spec.chart == "kpi":
            _render_kpis(res)
        elif spec.chart == "table":
            if spec.id == capacity.CAPACITY_QUERY and res.data.frame.height:
                st.plotly_chart(capacity.figure(res), width="stretch", key=f"chart-{qid}",
                                theme=None, config=tables.FIGURE_CONFIG)
            else:
                st.markdown(f"**{spec.title}**")
            tables.show(charts.table_frame(res))
        else:
            st.plotly_chart(figure(res, selection.comparator), width="stretch", key=f"chart-{qid}",
                            theme=None, config=tables.FIGURE_CONFIG)
        if coverage.is_outcome_chart(spec):
            st.info(coverage.sentence(_result_or_none(coverage.COVERAGE_QUERY, selection)))
        st.caption(captions.caption(res))
        downloads.download_buttons(res, key=qid)
        if spec.notes:
            with st.expander("Definitions and sources"):
                st.caption(spec.notes)


def _result_or_none(qid: str, selection: Selection) -> results.ChartResult | None:
    res = chart_result(qid, selection)
    return None if isinstance(res, catalog.QueryError) else res


def _render_kpis(res: results.ChartResult) -> None:
    spec = res.spec
    st.markdown(f"**{spec.title}** · {res.scope.label} · {res.period.label}")
    if res.lookback_note:
        st.warning("Look-back incomplete: less than 12 months of this Marac area's data "
                   "before the period, so the repeat rate is understated (see below).",
                   icon=":material/history:")
    shown = res.data.display()
    bench = res.benchmark.display() if res.benchmark is not None else None
    verdicts = significance.verdicts(res) if bench is not None else []
    per_row = 3 if len(spec.y) > 3 else len(spec.y)
    cols = [c for start in range(0, len(spec.y), per_row)
            for c in st.columns(per_row)][:len(spec.y)]
    for col, name in zip(cols, spec.y, strict=True):
        value = shown[name][0] if shown.height else "–"
        suffix = charts.value_suffix(res, name)
        text = f"{value}{suffix}" if value and value[0].isdigit() else (value or "–")
        delta, about = None, None
        if bench is not None and bench.height:
            b = bench[name][0]
            raw_ours = res.data.frame[name][0] if res.data.frame.height else None
            raw_theirs = res.benchmark.frame[name][0] if res.benchmark.frame.height else None
            b_text = f"{b}{suffix}" if b and b[0].isdigit() else (b or "–")
            if raw_ours is not None and raw_theirs is not None and name in spec.rates:
                verdict, interval = _verdict_words(verdicts, name)
                delta = f"{raw_ours - raw_theirs:+.1f} pts · {verdict}"
                about = (f"vs {res.benchmark_label[0].lower()}{res.benchmark_label[1:]} "
                         f"({b_text}) · {interval}")
            elif raw_theirs is not None and name in spec.counts:
                about = f"{res.benchmark_label_for(name)}: {raw_theirs:,.0f}"
            else:
                about = f"{res.benchmark_label_for(name)}: {b_text}"
        if spec.reference and "line" in spec.reference:
            ref = reference.get(spec.reference["line"])
            about = f"{about}; {ref.label}" if about else ref.label
        # The comparison goes under the figure as its own text, which wraps: as the
        # metric's delta description it was cut off ("vs all s…") in a narrow card.
        with col.container(border=True):
            st.metric(spec.label(name), text, delta=delta, delta_color="off")
            if about:
                st.caption(about)


def _verdict_words(verdicts: list[significance.Verdict], rate: str) -> tuple[str, str]:
    """Short enough for a metric tile: the verdict, and the interval behind it."""
    found = [v for v in verdicts if v.rate == rate and v.verdict]
    if not found:
        return "no test", "too few to test"
    v = found[0]
    words = {stats.HIGHER: "significantly higher", stats.LOWER: "significantly lower",
             stats.SIMILAR: "not a significant difference"}[v.verdict]
    return words, f"95% CI {v.interval.low:.1f}–{v.interval.high:.1f}%"


def prefetch(qids: list[str], selection: Selection) -> None:
    """Fill the result cache for these queries with PREFETCH_THREADS queries at a time.

    A cold page otherwise runs its queries one after another, each (with its comparator's
    pooled run) waiting on DuckDB while the other core idles; the page then draws from
    the cache in order. The cache key is chart_result's own (_result_key), so a
    prefetched result is the one the page would have run. A failure is left for the
    page's own run, which reports it (errors are never cached)."""
    jobs: queue.Queue = queue.Queue()
    for qid in qids:
        entry = catalog.get(settings.get().queries_dir, qid)
        if not entry.error:
            jobs.put(_result_key(entry, selection))
    if jobs.qsize() < 2:
        return

    def work() -> None:
        while True:
            try:
                args = jobs.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):  # the page's own run reports it
                _cached_result(*args)

    ctx = get_script_run_ctx()
    threads = [threading.Thread(target=work, daemon=True) for _ in range(PREFETCH_THREADS)]
    for t in threads:
        add_script_run_ctx(t, ctx)
        t.start()
    for t in threads:
        t.join()


def render_page(page: str, selection: Selection | None = None) -> None:
    """Every chart whose header names this page, in order (their queries run side by
    side first: prefetch)."""
    entries = catalog.for_page(settings.get().queries_dir, page)
    prefetch([e.id for e in entries], selection or current_selection())
    for entry in entries:
        if entry.error:
            show_error(entry.error)
        else:
            render_query(entry.id, selection)


def query_health(selection: Selection | None = None) -> pl.DataFrame:
    """One row per query file: parses? runs on the current selection? what is wrong?"""
    selection = selection or current_selection()
    rows = []
    entries = catalog.discover(settings.get().queries_dir)
    prefetch([e.id for e in entries if not e.error and not e.id.startswith("findings/")],
             selection)
    for entry in entries:
        status, problem, page, title = "ok", "", "", ""
        if entry.spec:
            page, title = entry.spec.page, entry.spec.title
        if entry.error:
            status, problem = "does not parse", str(entry.error)
        elif not entry.id.startswith("findings/"):
            res = chart_result(entry.id, selection)
            err = res if isinstance(res, catalog.QueryError) else res.error
            if err:
                status, problem = "fails to run", str(err)
        rows.append({"query": entry.id, "page": page, "title": title, "status": status,
                     "problem": problem})
    return pl.DataFrame(rows, schema={k: pl.String for k in
                                      ("query", "page", "title", "status", "problem")})
