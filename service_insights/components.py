"""Streamlit building blocks that pages call: the store, the shared filters, chart blocks.

Pages hold layout only; everything they show comes through here. Cached results are
keyed by the store build, the query file's content, the scope and the period, so one
viewer's figures are never served to another scope and a rebuilt store is never
answered from an old cache. Errors are not cached.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import streamlit as st

from service_insights import (
    access,
    audit,
    captions,
    catalog,
    charts,
    db,
    export_ui,
    findings,
    periods,
    reference,
    results,
    settings,
    significance,
    signin_ui,
    stats,
    synth,
)
from service_insights.periods import Period
from service_insights.scope import ALL_SERVICES, Scope


@dataclass(frozen=True)
class Selection:
    scope: Scope
    period: Period


# ---------------------------------------------------------------- the store


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
    offer a rebuild instead of a traceback. Stops the page when there is no store."""
    path = settings.get().db_path
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


# ---------------------------------------------------------------- filters


def resolve_scope(services: pl.DataFrame, areas: list[str], chosen: list[str]) -> Scope:
    """Turn the sidebar's choice into a Scope: chosen services win over chosen areas."""
    if chosen:
        rows = services.filter(pl.col("service_id").is_in(chosen))
        names = rows["name"].to_list()
        label = names[0] if len(names) == 1 else f"{len(names)} services"
        return Scope(tuple(sorted(chosen)), tuple(sorted(set(rows["area_code"]))), True, label)
    if areas:
        rows = services.filter(pl.col("area_code").is_in(areas))
        names = sorted(set(rows["area_name"].to_list()))
        label = names[0] if len(names) == 1 else f"{len(names)} areas"
        return Scope(tuple(sorted(rows["service_id"])), tuple(sorted(areas)), False, label)
    return ALL_SERVICES


def sidebar_filters(viewer: access.Viewer | None = None) -> Selection:
    """Period, area and service, shared by every page (the router draws them); only the
    services the viewer may see are offered."""
    viewer = viewer or signin_ui.current()
    s = store()
    sig = s.signature
    services = access.visible_services(services_table(), viewer)
    first, last = _date_range(sig.inode, sig.mtime_ns)
    years = periods.financial_years_between(first, last)
    with st.sidebar:
        st.header("Filters")
        kind = st.radio("Period", ["Financial year", "Quarter", "Custom dates"],
                        key="period_kind", horizontal=False)
        if kind == "Financial year":
            fy = st.selectbox("Financial year (April to March)", years, key="fy")
            period = periods.financial_year(fy)
        elif kind == "Quarter":
            fy = st.selectbox("Financial year", years, key="q_fy")
            q = st.selectbox("Quarter", [1, 2, 3, 4], key="q",
                             format_func=lambda q: ["Q1 Apr-Jun", "Q2 Jul-Sep", "Q3 Oct-Dec",
                                                    "Q4 Jan-Mar"][q - 1])
            period = periods.quarter(fy, q)
        else:
            default = (periods.financial_year(years[0]).start, last)
            picked = st.date_input("From and to", value=default, min_value=first,
                                   max_value=last, key="custom", format="DD/MM/YYYY")
            if isinstance(picked, tuple) and len(picked) == 2:
                period = periods.custom(picked[0], picked[1])
            else:
                st.caption("Pick an end date too.")
                period = periods.custom(picked[0] if picked else first, last)
        area_names = dict(zip(services["area_code"], services["area_name"], strict=True))
        areas = st.multiselect("Area", sorted(area_names), key="areas",
                               format_func=lambda c: f"{area_names[c]} ({c})",
                               placeholder="All areas")
        pool = services.filter(pl.col("area_code").is_in(areas)) if areas else services
        service_names = dict(zip(pool["service_id"], pool["name"], strict=True))
        chosen = st.multiselect("Service", list(service_names), key="services",
                                format_func=lambda i: service_names.get(i, i),
                                placeholder="All services in the areas" if areas
                                else "All services")
        chosen = [c for c in chosen if c in service_names]
        if s.meta.get("data_kind") == "synthetic":
            st.warning("Synthetic sample data: not real services or people.",
                       icon=":material/info:")
        st.caption(f"Data as of {s.meta.get('data_as_of', 'unknown')}.")
    return Selection(access.clamp(resolve_scope(services, areas, chosen), viewer), period)


def current_selection() -> Selection:
    """The sidebar's choice, narrowed to what the signed-in viewer may see."""
    sel = st.session_state.get("selection")
    if sel is None:
        sel = Selection(ALL_SERVICES, periods.financial_year(
            periods.fy_start_year(dt.date.today())))
    return Selection(access.clamp(sel.scope, signin_ui.current()), sel.period)


# ---------------------------------------------------------------- charts


class _Uncached(Exception):
    """Carries a failed result out of the cached function, so failures are not cached."""

    def __init__(self, result: results.ChartResult):
        super().__init__(str(result.error))
        self.result = result


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _cached_result(store_key: tuple, qid: str, digest: str, scope: Scope,
                   period: Period) -> results.ChartResult:
    entry = catalog.get(settings.get().queries_dir, qid)
    result = results.run(store(), entry.spec, scope, period, settings.get())
    if result.error:
        raise _Uncached(result)
    return result


def chart_result(qid: str, selection: Selection) -> results.ChartResult | catalog.QueryError:
    entry = catalog.get(settings.get().queries_dir, qid)
    if entry.error:
        return entry.error
    # Narrowed before it becomes a cache key: cached results are shared by all sessions.
    scope = access.clamp(selection.scope, signin_ui.current())
    try:
        return _cached_result(_store_key(), qid, entry.spec.digest, scope, selection.period)
    except _Uncached as exc:
        return exc.result


def _store_key() -> tuple:
    """What a cached figure depends on besides the query: the store build and the
    reference figures (thresholds and national lines drawn on charts)."""
    sig = store().signature
    return (sig.path, sig.inode, sig.mtime_ns, reference.version())


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _cached_figure(store_key: tuple, qid: str, digest: str, scope: Scope, period: Period):
    # Building a figure (Plotly's validation) costs more than the query behind it, so the
    # figure is cached under the same key as its result.
    return charts.build(_cached_result(store_key, qid, digest, scope, period))


def figure(res: results.ChartResult):
    return _cached_figure(_store_key(), res.spec.id, res.spec.digest, res.scope, res.period)


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
            st.markdown(f"**{spec.title}**")
            st.dataframe(charts.table_frame(res), hide_index=True, width="stretch")
        else:
            st.plotly_chart(figure(res), width="stretch", key=f"chart-{qid}",
                            theme=None, config={"displaylogo": False})
        st.caption(captions.caption(res))
        export_ui.download_buttons(res, key=qid)
        if spec.notes:
            with st.expander("Definitions and sources"):
                st.caption(spec.notes)


def _render_kpis(res: results.ChartResult) -> None:
    spec = res.spec
    st.markdown(f"**{spec.title}** · {res.scope.label} · {res.period.label}")
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
                about = f"vs all services ({b_text}) · {interval}"
            elif raw_theirs is not None and name in spec.counts:
                about = f"{res.benchmark_label_for(name)}: {raw_theirs:,.0f}"
            else:
                about = f"{res.benchmark_label_for(name)}: {b_text}"
        if spec.reference and "line" in spec.reference:
            ref = reference.get(spec.reference["line"])
            about = f"{about}; {ref.label}" if about else ref.label
        col.metric(spec.label(name), text, delta=delta, delta_color="off",
                   delta_description=about, border=True)


def _verdict_words(verdicts: list[significance.Verdict], rate: str) -> tuple[str, str]:
    """Short enough for a metric tile: the verdict, and the interval behind it."""
    found = [v for v in verdicts if v.rate == rate and v.verdict]
    if not found:
        return "no test", "too few to test"
    v = found[0]
    words = {stats.HIGHER: "significantly higher", stats.LOWER: "significantly lower",
             stats.SIMILAR: "not a significant difference"}[v.verdict]
    return words, f"95% CI {v.interval.low:.1f}–{v.interval.high:.1f}%"


def render_page(page: str, selection: Selection | None = None) -> None:
    """Every chart whose header names this page, in order."""
    for entry in catalog.for_page(settings.get().queries_dir, page):
        if entry.error:
            show_error(entry.error)
        else:
            render_query(entry.id, selection)


def query_health(selection: Selection | None = None) -> pl.DataFrame:
    """One row per query file: parses? runs on the current selection? what is wrong?"""
    selection = selection or current_selection()
    rows = []
    for entry in catalog.discover(settings.get().queries_dir):
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


# ---------------------------------------------------------------- findings


@st.cache_data(ttl=3600, max_entries=200, show_spinner=False)
def _cached_findings(store_key: tuple, rules_digest: str, scope: Scope,
                     period: Period) -> findings.Report:
    return findings.evaluate(store(), scope, period, settings.get())


def findings_report(selection: Selection | None = None) -> findings.Report:
    selection = selection or current_selection()
    root = settings.get().queries_dir
    scope = access.clamp(selection.scope, signin_ui.current())
    return _cached_findings(_store_key(), findings.rules_digest(root), scope,
                            selection.period)


_LEVEL_BADGE = {"high": ("High confidence", "green"), "moderate": ("Moderate confidence",
                "orange"), "low": ("Low confidence", "gray")}


def render_findings(selection: Selection | None = None) -> None:
    """The findings for the selection: each with its numbers, what to do, and why."""
    selection = selection or current_selection()
    report = findings_report(selection)
    n = len(report.findings)
    st.markdown(f"**{n} finding{'s' if n != 1 else ''}** for {selection.scope.label}, "
                f"{selection.period.label}, from {report.rules} rules.")
    if not n:
        st.info("No rule found a difference large enough to be sure of for this selection. "
                "That is not proof that nothing needs to change: small services and short "
                "periods give wide intervals.")
    for f in report.findings:
        label, colour = _LEVEL_BADGE[f.level]
        with st.container(border=True):
            st.markdown(f"#### {f.title}")
            st.badge(f"{label} · {f.subject}", color=colour)
            st.markdown(f.message)
            st.markdown(f"**What to do.** {f.recommendation}")
            st.markdown(f"**Evidence.** {f.evidence}")
            st.caption(f"{f.confidence} Source: {f.source}.")
    for error in report.errors:
        show_error(error, "This finding rule could not be checked")
    if report.withheld:
        st.caption(f"Possible findings not reported because the numbers behind them are "
                   f"too small to show: {report.withheld}.")
    for note in report.not_judged:
        st.caption(note)
    st.caption("A finding is reported only when the 95% confidence interval, not just the "
               "figure itself, is beyond the threshold, so chance variation in a small "
               "service is not mistaken for a difference. Thresholds and national figures "
               "are listed in data/reference.yaml.")


def render_audit_log(limit: int = 500) -> None:
    if not signin_ui.current().can("users"):
        st.error("The audit log is for administrators.")
        return
    events = audit.read(limit)
    if not events:
        st.info(f"Nothing recorded yet in `{audit.path()}`.")
        return
    frame = pl.DataFrame([{k: str(v) for k, v in e.items()} for e in reversed(events)],
                         infer_schema_length=None)
    st.dataframe(frame, hide_index=True, width="stretch")


def findings_teaser(selection: Selection | None = None) -> None:
    """On the home page: how many findings hold, with the first titles and a link."""
    report = findings_report(selection)
    n = len(report.findings)
    if not n:
        st.caption("No finding holds for this selection and period.")
        return
    titles = list(dict.fromkeys(f"{f.title} ({f.subject})" for f in report.findings))
    more = f" and {len(titles) - 3} more" if len(titles) > 3 else ""
    st.info(f"**{n} finding{'s' if n != 1 else ''} on where to adapt:** "
            + "; ".join(titles[:3]) + more + ".", icon=":material/lightbulb:")
    st.page_link("app_pages/findings.py", label="Read the findings, with the evidence",
                 icon=":material/arrow_forward:")
