"""Speed and memory of Service Insights at national scale, printed as a table.

    python benchmarks/run.py                    # 1M cases, every section
    python benchmarks/run.py --sizes 1M,10M     # and 10M (generation takes ~2 min, ~7 GB)
    python benchmarks/run.py --quick            # fewer repeats, for a quick look
    python benchmarks/run.py --only queries     # one section (see --list)
    python benchmarks/run.py --profile marac/repeat_rate_by_quarter   # where the time goes

Samples are built into benchmarks/data/ (not committed) and reused when one of the same
size and seed is there. Each section is a function that returns rows; add a section by
writing one and listing it in SECTIONS. Nothing here is a test: the targets are printed
beside the figures, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from service_insights import settings  # noqa: E402
from service_insights.catalogue import catalog, lookback, periods, results  # noqa: E402
from service_insights.catalogue.scope import ALL_SERVICES, Scope, scoped_sql  # noqa: E402
from service_insights.store import db  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
SEED = 20240401
SERVICE = "S03"
FY = "2024-25"
SCOPE = Scope((SERVICE,), ("E06000002",), True, "Brindlehurst Family Idva")

TARGET_QUERY_MS = {1_000_000: 200, 10_000_000: 1500}
TARGET_RATIO = 1.5
TARGET_PAGE_COLD_MS = 1500
TARGET_PAGE_CACHED_MS = 300
TARGET_START_S = 20


# ------------------------------------------------------------------ plumbing


@dataclass
class Row:
    section: str
    size: str
    item: str
    value: str
    compare: str = ""
    target: str = ""
    ok: bool | None = None
    peak_mb: float | None = None


@dataclass
class Context:
    sizes: list[int]
    repeats: int
    quick: bool
    stores: dict[int, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * scale)


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def reset_peak() -> None:
    """Make VmHWM (peak RSS) start again from now, so each section reports its own peak."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    return medians_ms([fn], repeats)[0]


def medians_ms(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median time of each function after one warm-up each. The functions take turns, so
    that a burst of load from elsewhere on the machine falls on all of them alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]


def store_path(n: int) -> Path:
    return DATA / f"sample-{n}-seed{SEED}.duckdb"


def store_matches(path: Path, n: int) -> bool:
    if not path.exists():
        return False
    try:
        con = duckdb.connect(str(path), read_only=True)
        try:
            meta = dict(con.execute("select key, value from store.meta").fetchall())
        finally:
            con.close()
    except duckdb.Error:
        return False
    return (meta.get("n_cases") == str(n) and meta.get("seed") == str(SEED)
            and meta.get("schema_version") == db.SCHEMA_VERSION)


def raw_connect(path: Path) -> duckdb.DuckDBPyConnection:
    # The same settings as the product's handle: DuckDB will not open one file twice in a
    # process with different ones. Both handles then share one buffer cache: a fair race.
    return duckdb.connect(str(path), read_only=True, config=db.read_only_config())


def chart_specs(ctx: Context) -> list[catalog.QuerySpec]:
    specs = []
    for entry in catalog.discover(settings.get().queries_dir):
        if entry.error:
            ctx.notes.append(f"skipped {entry.id}: does not parse ({entry.error.message})")
        elif entry.spec.chart not in catalog.CHART_TYPES:
            ctx.notes.append(f"skipped {entry.id}: not a chart")
        else:
            specs.append(entry.spec)
    return specs


# ------------------------------------------------------------------ sections


_GENERATE = """
import resource, sys
sys.path.insert(0, ".")
from service_insights.store import synth
synth.write_sample(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def section_generate(ctx: Context) -> list[Row]:
    """Build (or reuse) each sample size; generation time and peak memory."""
    rows = []
    for n in ctx.sizes:
        path = store_path(n)
        peak = None
        if store_matches(path, n):
            value = "reused"
        else:
            # In its own process, so that its memory is its own and is given back after.
            DATA.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _GENERATE, str(path), str(n),
                                   str(SEED)], cwd=ROOT, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"generating {n:,} cases failed:\n{done.stderr[-3000:]}")
            value = f"{time.perf_counter() - t:,.1f} s"
            peak = int(done.stdout.split()[-1]) / 1024
        ctx.stores[n] = path
        rows.append(Row("generate", size_label(n), "synthetic sample", value,
                        f"{path.stat().st_size / 1e6:,.0f} MB on disk", peak_mb=peak))
    return rows


def _ensure_stores(ctx: Context) -> None:
    for n in ctx.sizes:
        if n not in ctx.stores:
            path = store_path(n)
            if not store_matches(path, n):
                section_generate(Context([n], ctx.repeats, ctx.quick, ctx.stores, ctx.notes))
            ctx.stores[n] = path


def section_queries(ctx: Context) -> list[Row]:
    """Every chart query for one service and a year: the product's path (scoped run,
    all-services run, checks, disclosure) against the same two SQL runs on raw DuckDB."""
    _ensure_stores(ctx)
    cfg = settings.get()
    period = periods.financial_year(FY)
    specs = chart_specs(ctx)
    rows = []
    for n in ctx.sizes:
        path = ctx.stores[n]
        target = TARGET_QUERY_MS.get(n)
        reset_peak()
        store = db.Store(path)
        raw = raw_connect(path)
        worst = 0.0
        try:
            for spec in specs:
                def product(spec=spec, store=store):
                    res = results.run(store, spec, SCOPE, period, cfg)
                    if res.error:
                        raise RuntimeError(str(res.error))
                    return res

                text, _ = scoped_sql(spec.sql)
                # The product runs a finding once, with no all-services benchmark.
                bench = spec.benchmark and spec.chart != "finding"
                scopes = (SCOPE, ALL_SERVICES) if bench else (SCOPE,)
                params = [{**scope.params(), **results.query_params(spec, period)}
                          for scope in scopes]
                # A repeat-rate chart also runs the look-back check for the selection and
                # its benchmark (catalogue/lookback.py): the same SQL runs raw too, so the
                # ratio compares the same work.
                checks = []
                if spec.lookback:
                    start = results.lookback_start(spec, period)
                    checks = [lookback.statement(scope, start, period.end)
                              for scope in scopes]

                def plain(text=text, params=params, raw=raw, checks=checks):
                    for p in params:
                        raw.execute(text, p).fetchall()
                    for check_text, p in checks:
                        raw.execute(check_text, p).fetchall()

                p_ms, r_ms = medians_ms([product, plain], ctx.repeats)
                worst = max(worst, p_ms)
                ratio = p_ms / r_ms if r_ms else float("nan")
                ok = (target is None or p_ms < target) and ratio <= TARGET_RATIO
                rows.append(Row("queries", size_label(n), spec.id, f"{p_ms:,.0f} ms",
                                f"raw {r_ms:,.0f} ms, x{ratio:.2f}",
                                f"<{target} ms, x{TARGET_RATIO}" if target else f"x{TARGET_RATIO}",
                                ok))
        finally:
            raw.close()
            store.close()
        peak = peak_mb()
        for row in rows:
            if row.size == size_label(n):
                row.peak_mb = peak
    return rows


TARGET_PERTURBATION = 1.10
AREA_SCOPE = Scope(("S01", "S02", "S20"), ("E06000001",), False, "Ashcombe")


def _wall_and_cpu_ms(fns: list[Callable[[], object]], repeats: int
                     ) -> tuple[list[float], list[float]]:
    """Median wall time and median CPU time (this process, every thread: DuckDB's
    workers included) of each function, taking turns after one warm-up each. On a
    machine shared with other work, wall time swings with their load; CPU time is the
    work a call itself did, so a ratio of CPU times is the steadier measure of overhead."""
    for fn in fns:
        fn()
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        # Alternate the order each round (ABBA), so neither function always runs on
        # caches the other has just warmed.
        order = list(enumerate(fns)) if r % 2 == 0 else list(enumerate(fns))[::-1]
        for i, fn in order:
            c, t = time.process_time(), time.perf_counter()
            fn()
            wall[i].append((time.perf_counter() - t) * 1000)
            cpu[i].append((time.process_time() - c) * 1000)
    return ([statistics.median(w) for w in wall], [statistics.median(c) for c in cpu])


def section_perturbation(ctx: Context) -> list[Row]:
    """What the cell key method costs a chart query: the scoped run for an area, as a
    commissioner sees it (keyed pass: key sums beside every count in the same query, then
    the ptable; a finding rule's counts perturbed inside its query), against the same run
    with exact counts (a manager's own services). Wall time, and CPU time as the steadier
    measure when the machine is shared."""
    _ensure_stores(ctx)
    cfg = settings.get()
    period = periods.financial_year(FY)
    rows = []
    for n in ctx.sizes:
        store = db.Store(ctx.stores[n])
        ratios, cpu_ratios, totals, cpu_totals = [], [], [0.0, 0.0], [0.0, 0.0]
        try:
            for spec in chart_specs(ctx):
                def fetch(spec=spec, perturb=True, store=store):
                    return results._fetch(store, spec, AREA_SCOPE, period, cfg, perturb)

                # At least 9 rounds: a small chart's query takes about 10 ms, where one
                # slow round moves a median of 3 by more than the 10% being measured.
                (p_ms, e_ms), (p_cpu, e_cpu) = _wall_and_cpu_ms(
                    [fetch, lambda spec=spec: fetch(spec, False)], max(ctx.repeats, 9))
                ratio = p_ms / e_ms if e_ms else float("nan")
                ratios.append(ratio)
                cpu_ratios.append(p_cpu / e_cpu if e_cpu else float("nan"))
                totals[0] += p_ms
                totals[1] += e_ms
                cpu_totals[0] += p_cpu
                cpu_totals[1] += e_cpu
                rows.append(Row("perturbation", size_label(n), spec.id, f"{p_ms:,.1f} ms",
                                f"exact {e_ms:,.1f} ms, x{ratio:.2f}; "
                                f"CPU x{cpu_ratios[-1]:.2f}",
                                f"x{TARGET_PERTURBATION}", ratio <= TARGET_PERTURBATION))
        finally:
            store.close()
        ratios.sort()
        median = statistics.median(ratios)
        rows.append(Row("perturbation", size_label(n), "median over chart queries",
                        f"x{median:.2f}", f"worst x{ratios[-1]:.2f}",
                        f"x{TARGET_PERTURBATION}", median <= TARGET_PERTURBATION))
        whole = totals[0] / totals[1]
        rows.append(Row("perturbation", size_label(n), "all chart queries together",
                        f"{totals[0]:,.0f} ms", f"exact {totals[1]:,.0f} ms, x{whole:.2f}",
                        f"x{TARGET_PERTURBATION}", whole <= TARGET_PERTURBATION))
        cpu_whole = cpu_totals[0] / cpu_totals[1]
        rows.append(Row("perturbation", size_label(n), "all chart queries together, CPU time",
                        f"{cpu_totals[0]:,.0f} ms", f"exact {cpu_totals[1]:,.0f} ms, "
                        f"x{cpu_whole:.2f}; median x{statistics.median(cpu_ratios):.2f}",
                        f"x{TARGET_PERTURBATION}", cpu_whole <= TARGET_PERTURBATION))
    return rows


def section_pages(ctx: Context) -> list[Row]:
    """Each page under AppTest with one service chosen: cold (Streamlit caches cleared)
    and cached (the same page run again), on the smallest size asked for."""
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest's bare-mode notes
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    _ensure_stores(ctx)
    n = min(ctx.sizes)
    os.environ["SI_DB_PATH"] = str(ctx.stores[n])
    pages = sorted(p.stem for p in (ROOT / "app_pages").glob("*.py"))
    rows = []

    def app(page: str, comparator: str | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=300)
        at.session_state["services"] = [SERVICE]
        at.session_state["fy"] = FY
        if comparator:
            at.session_state["comparator"] = comparator
        at.switch_page(f"app_pages/{page}.py")
        return at

    app("home").run()  # imports and first connection, outside the timings
    reset_peak()
    # Every page with the default comparator (services of the same type), then the pages
    # whose every chart runs a second, pooled query against the other comparators.
    cases = [(page, None) for page in pages] + [
        ("home", "all"), ("home", "region"), ("compare", "region"), ("overview", "all")]
    # Findings print each finding's comparator figure (one pooled query per measure and
    # pool), and the national comparator runs no pooled query: both timed too.
    cases += [("findings", "all"), ("findings", "region"), ("home", "national")]
    for page, comparator in cases:
        cold, cached = [], []
        for _ in range(max(1, ctx.repeats // 2)):
            st.cache_data.clear()
            st.cache_resource.clear()
            at = app(page, comparator)
            t = time.perf_counter()
            at.run()
            cold.append((time.perf_counter() - t) * 1000)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception}")
            t = time.perf_counter()
            at.run()
            cached.append((time.perf_counter() - t) * 1000)
        c, w = statistics.median(cold), statistics.median(cached)
        name = f"{page} (comparator: {comparator})" if comparator else page
        rows.append(Row("pages", size_label(n), name, f"cold {c:,.0f} ms",
                        f"cached {w:,.0f} ms",
                        f"<{TARGET_PAGE_COLD_MS} / <{TARGET_PAGE_CACHED_MS} ms",
                        c < TARGET_PAGE_COLD_MS and w < TARGET_PAGE_CACHED_MS, peak_mb()))
    return rows


def section_start(ctx: Context) -> list[Row]:
    """A fresh machine: launch the dashboard with no store, at the default sample size,
    until the home page shows its figures in Chromium (sample build included)."""
    from playwright.sync_api import expect, sync_playwright

    sys.path.insert(0, str(ROOT))
    from tests.browser import harness

    tmp = Path(tempfile.mkdtemp(prefix="si-bench-start-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SI_")}
    db_path = tmp / "data" / "insights.duckdb"
    reset_peak()
    try:
        with sync_playwright() as pw:
            browser = harness.launch_browser(pw)  # before the clock: not part of the app
            t = time.perf_counter()
            srv = harness.Server(db_path, tmp / "streamlit.log")
            srv.env = {**env, "SI_DB_PATH": str(db_path)}
            srv.start(timeout_s=120)
            try:
                up = time.perf_counter() - t
                page = browser.new_page(viewport=harness.VIEWPORT)
                page.goto(srv.url)
                expect(page.get_by_test_id("stMetric")).to_have_count(5, timeout=120_000)
                total = time.perf_counter() - t
            finally:
                srv.stop()
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [Row("start", "50k", "fresh start to home figures", f"{total:,.1f} s",
                f"server up {up:,.1f} s", f"<{TARGET_START_S} s", total < TARGET_START_S,
                peak_mb())]


def section_pandas(ctx: Context) -> list[Row]:
    """The headline figures as a team without the product would get them: Parquet
    exports read into pandas. Timed with and without the load; checked against the
    product's figures for the same service and year."""
    import pandas as pd

    _ensure_stores(ctx)
    rows = []
    period = periods.financial_year(FY)
    spec = catalog.get(settings.get().queries_dir, "home/headline_figures").spec
    for n in ctx.sizes:
        path = ctx.stores[n]
        parquet = DATA / f"parquet-{n}-seed{SEED}"
        if not (parquet / "marac_referrals.parquet").exists():
            import pyarrow.parquet as pq

            # COPY would need external access, which the product's handle (and so any
            # handle on the file in this process) has switched off: stream through Arrow.
            parquet.mkdir(parents=True, exist_ok=True)
            con = raw_connect(path)
            try:
                for table in ("cases", "marac_referrals"):
                    reader = con.sql(f"select * from store.{table}").to_arrow_reader(
                        1_000_000)
                    with pq.ParquetWriter(parquet / f"{table}.parquet", reader.schema) as w:
                        for batch in reader:
                            w.write_batch(batch)
            finally:
                con.close()
        reset_peak()

        def load(parquet=parquet):
            cases = pd.read_parquet(parquet / "cases.parquet")
            refs = pd.read_parquet(parquet / "marac_referrals.parquet")
            cases["referral_date"] = pd.to_datetime(cases["referral_date"])
            refs["meeting_date"] = pd.to_datetime(refs["meeting_date"])
            return cases, refs

        def compute(cases: pd.DataFrame, refs: pd.DataFrame, service: str | None) -> dict:
            start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
            c = cases[(cases.referral_date >= start) & (cases.referral_date <= end)]
            if service:
                c = c[c.service_id == service]
            r = refs.sort_values(["client_key", "meeting_date", "referral_id"])
            gap = r.meeting_date - r.groupby("client_key").meeting_date.shift()
            r = r.assign(is_repeat=gap.dt.days <= 365)
            r = r[(r.meeting_date >= start) & (r.meeting_date <= end)]
            if service:
                r = r[r.service_id == service]
            with_children = c[c.children_in_household > 0]
            recorded = with_children[with_children.social_care != "unknown"]

            def pct(a, b):
                return round(100.0 * a / b, 1) if b else None

            return {
                "cases": len(c),
                "pct_high_risk": pct((c.dash_score >= 14).sum(), c.dash_score.notna().sum()),
                "pct_with_children": pct(len(with_children), len(c)),
                "pct_families_known_to_social_care": pct(
                    (recorded.social_care != "none").sum(), len(recorded)),
                "pct_marac_repeat": pct(r.is_repeat.sum(), len(r)),
            }

        def pandas_both(cases, refs):
            return compute(cases, refs, SERVICE), compute(cases, refs, None)

        cases, refs = load()
        load_ms = median_ms(load, max(1, ctx.repeats // 2))
        compute_ms = median_ms(lambda c=cases, r=refs: pandas_both(c, r),
                               max(1, ctx.repeats // 2))
        mine, everyone = pandas_both(cases, refs)
        del cases, refs

        store = db.Store(path)
        try:
            cfg = settings.get()
            product_ms = median_ms(
                lambda store=store, cfg=cfg: results.run(store, spec, SCOPE, period, cfg),
                ctx.repeats)
            res = results.run(store, spec, SCOPE, period, cfg)
        finally:
            store.close()
        got = {k: res.data.frame[k][0] for k in mine}
        got_all = {k: res.benchmark.frame[k][0] for k in everyone
                   if k not in spec.counts}  # counts there are an average service
        match = got == mine and got_all == {k: everyone[k] for k in got_all}
        if not match:
            ctx.notes.append(f"pandas {mine} / {everyone} vs product {got} / {got_all}")
        total = load_ms + compute_ms
        rows.append(Row("pandas", size_label(n), "headline figures, one service + all",
                        f"product {product_ms:,.0f} ms",
                        f"pandas {compute_ms:,.0f} ms without load, {total:,.0f} ms with "
                        f"Parquet load (x{total / product_ms:.1f}); match: "
                        f"{'yes' if match else 'NO'}",
                        "", match, peak_mb()))
    return rows


PACK_PRELUDE = """
import resource, sys, time
sys.path.insert(0, ".")
from service_insights import settings
from service_insights.catalogue import catalog, periods, results
from service_insights.catalogue.scope import Scope
from service_insights.exports import chart_files, report_pack
from service_insights.store import db
store, cfg = db.Store(sys.argv[1]), settings.get()
area = store.query("select area_code from main.services where service_id = $s",
                   {"s": sys.argv[2]}).frame["area_code"][0]
scope = Scope((sys.argv[2],), (area,), True, sys.argv[2])
period = periods.financial_year(sys.argv[3])
"""
"""A pack process's start (argv: store, service, financial year): for the pack section
and pack_compare.py."""

_PACK = PACK_PRELUDE + """
spec = catalog.get(cfg.queries_dir, "children/whole_family_support_by_social_care").spec
t = time.perf_counter()
res = results.run(store, spec, scope, period, cfg)
chart_files.export(res, "png", cfg.protective_marking)
first = time.perf_counter() - t
t = time.perf_counter()
res = results.run(store, spec, scope, period, cfg)
chart_files.export(res, "png", cfg.protective_marking)
warm = time.perf_counter() - t
t = time.perf_counter()
pack = report_pack.build(store, scope, period, cfg, pages=["overview", "children"])
packed = time.perf_counter() - t
# The every-page pack, repeated: the machine may be shared, so the median is printed
# with the spread.
fulls = []
for _ in range(int(sys.argv[4])):
    t = time.perf_counter()
    full = report_pack.build(store, scope, period, cfg)
    fulls.append(time.perf_counter() - t)
print(first, warm, packed, pack.charts, len(pack.omitted), len(pack.pdf),
      ",".join(f"{f:.3f}" for f in fulls), full.charts)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
TARGET_PACK_S = 10


def section_pack(ctx: Context) -> list[Row]:
    """One chart as PNG (cold: the export browser starts; then warm) and the report pack
    for one service at the largest size, in their own process."""
    _ensure_stores(ctx)
    n = max(ctx.sizes)
    done = subprocess.run([sys.executable, "-c", _PACK, str(ctx.stores[n]), SCOPE.services[0],
                           FY, str(ctx.repeats)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        ctx.notes.append(f"pack: failed: {done.stderr.strip()[-500:]}")
        return []
    first, warm, packed, charts, omitted, size, full_s, full_charts = (
        done.stdout.split("\n")[-3].split())
    fulls = [float(f) for f in full_s.split(",")]
    peak = int(done.stdout.split("\n")[-2]) / 1024
    return [
        Row("pack", size_label(n), "one chart PNG, browser starting", f"{float(first):,.1f} s",
            peak_mb=peak),
        Row("pack", size_label(n), "one chart PNG, warm", f"{float(warm) * 1000:,.0f} ms"),
        Row("pack", size_label(n), f"report pack, {charts} charts",
            f"{float(packed):,.1f} s", f"{int(size) / 2**20:,.1f} MB PDF, {omitted} omitted",
            f"<{TARGET_PACK_S} s", float(packed) < TARGET_PACK_S, peak),
        Row("pack", size_label(n), f"report pack, every page ({full_charts} charts), "
            f"median of {len(fulls)}", f"{statistics.median(fulls):,.1f} s",
            f"min {min(fulls):,.1f} s, max {max(fulls):,.1f} s", f"<{TARGET_PACK_S} s",
            statistics.median(fulls) < TARGET_PACK_S, peak),
    ]


TARGET_IMPORT_S = 60
TARGET_IMPORT_MB = 3 * 1024


def _timed_import(ctx: Context, section: str, what: str, write, fresh, script=None
                  ) -> list[Row]:
    """A 1M-row file (200k with --quick) written by `write`, imported into a store made
    by `fresh`, in its own process (wall time and peak memory are the import's alone)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import import_benchmark  # beside this script

    rows = 1_000_000 if not ctx.quick else 200_000
    tmp = Path(tempfile.mkdtemp(prefix=f"si-bench-{section}-"))
    try:
        export, store = tmp / "export.csv", tmp / "insights.duckdb"
        write(export, rows)
        fresh(store)
        try:
            done = import_benchmark.run_import(export, store, import_benchmark.import_env(),
                                               *([script] if script else []))
        except RuntimeError as exc:
            ctx.notes.append(f"{section}: failed: {str(exc)[-500:]}")
            return []
        return [Row(section, size_label(rows), f"{done.rows:,}-row {what}",
                    f"{done.wall_s:,.1f} s", f"{export.stat().st_size / 2**20:,.0f} MB file",
                    f"<{TARGET_IMPORT_S} s, <{TARGET_IMPORT_MB:,} MB",
                    done.wall_s < TARGET_IMPORT_S and done.peak_mb < TARGET_IMPORT_MB,
                    done.peak_mb)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def section_import(ctx: Context) -> list[Row]:
    """A 1M-row CSV export imported into a fresh store for real records."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import import_benchmark  # beside this script

    from service_insights.ingest import fixture

    return _timed_import(ctx, "import", "CSV import", fixture.write_export,
                         import_benchmark.fresh_store)


def section_marac_import(ctx: Context) -> list[Row]:
    """A 1M-row Marac file (three Maracs, plain columns) imported into a fresh store for
    real records, as section_import does a cases export."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import import_benchmark  # beside this script

    return _timed_import(ctx, "marac_import", "Marac file import",
                         import_benchmark.write_marac_export, import_benchmark.fresh_marac_store,
                         import_benchmark.RUN_MARAC_IMPORT)


SECTIONS: dict[str, Callable[[Context], list[Row]]] = {
    "generate": section_generate,
    "queries": section_queries,
    "perturbation": section_perturbation,
    "pages": section_pages,
    "start": section_start,
    "pandas": section_pandas,
    "pack": section_pack,
    "import": section_import,
    "marac_import": section_marac_import,
}


# ------------------------------------------------------------------ output


def print_table(rows: list[Row]) -> None:
    head = ("section", "size", "item", "value", "compared", "target", "ok", "peak MB")
    body = [(r.section, r.size, r.item, r.value, r.compare, r.target,
             "" if r.ok is None else ("yes" if r.ok else "MISS"),
             "" if r.peak_mb is None else f"{r.peak_mb:,.0f}") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for b in body:
        print(line.format(*b))


def profile(qid: str, ctx: Context) -> None:
    from pyinstrument import Profiler

    _ensure_stores(ctx)
    n = max(ctx.sizes)
    store = db.Store(ctx.stores[n])
    spec = catalog.get(settings.get().queries_dir, qid).spec
    period, cfg = periods.financial_year(FY), settings.get()
    results.run(store, spec, SCOPE, period, cfg)
    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(ctx.repeats):
            results.run(store, spec, SCOPE, period, cfg)
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    text, _ = scoped_sql(spec.sql)
    params = {**SCOPE.params(), **results.query_params(spec, period)}
    raw = raw_connect(ctx.stores[n])
    print("DuckDB plan (scoped run):")
    for _, plan in raw.execute("explain analyze " + text, params).fetchall():
        print(plan)
    raw.close()
    store.close()


def main(argv: list[str] | None = None) -> int:
    global DATA  # --data moves the stores (e.g. to keep a store another checkout uses)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M", help="comma-separated, e.g. 1M,10M")
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 5")
    parser.add_argument("--only", action="append", choices=list(SECTIONS),
                        help="run only this section (repeatable)")
    parser.add_argument("--profile", metavar="QUERY_ID",
                        help="profile one query at the largest size and print its plan")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help=f"where the sample stores are built and reused (default {DATA})")
    args = parser.parse_args(argv)
    if args.data is not None:
        DATA = args.data
    ctx = Context([parse_size(s) for s in args.sizes.split(",")], 3 if args.quick else 5,
                  args.quick)
    if args.profile:
        profile(args.profile, ctx)
        return 0
    print(f"Service Insights benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}, "
          f"{os.cpu_count()} CPUs, DuckDB {duckdb.__version__}, "
          f"sizes {', '.join(map(size_label, ctx.sizes))}, {ctx.repeats} repeats after a "
          f"warm-up; queries for {SERVICE} in {FY} with the all-services benchmark.\n",
          flush=True)
    rows: list[Row] = []
    for name in args.only or list(SECTIONS):
        t = time.perf_counter()
        got = SECTIONS[name](ctx)
        rows.extend(got)
        print(f"[{name}: {time.perf_counter() - t:,.1f} s]", file=sys.stderr, flush=True)
    print_table(rows)
    for note in ctx.notes:
        print(f"note: {note}")
    misses = [r for r in rows if r.ok is False]
    print(f"\n{len(misses)} of {sum(r.ok is not None for r in rows)} checks missed their target.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
