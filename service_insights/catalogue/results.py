"""Running a catalogue query for a scope and period, with its all-services benchmark.

This is the one path from a query file to numbers on a screen or in an export: it binds
the scope and period, runs the SQL twice (scope and all services), checks the result
against the header, and passes both through disclosure control. Nothing downstream sees
an unprotected number.

Which figures are perturbed (the cell key method, protection/cellkey.py): every count
is, before small-count suppression, unless the viewer holds the records themselves: a
service manager looking at their own services only sees those counts exactly. Anything
that spans or reveals other services (an area, several services, the all-services
benchmark, a funnel of services, and everything a commissioner, analyst or the command
line sees) is perturbed. Rates are then worked out from the perturbed count and base
(100 x count / base), and a figure proportional to a count (cases per 10,000) is scaled
with it. A count the cell-key pass cannot key (keying.py) is withheld from a viewer who
needs perturbation, never shown exactly. The viewer reaches this module as an Audience
(access/grants.audience), which also decides when the benchmark is safe to show.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from service_insights.catalogue import comparators, keying, lookback, reference
from service_insights.catalogue.catalog import QueryError, QuerySpec
from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import Scope, scoped_sql
from service_insights.protection import cellkey, disclosure
from service_insights.settings import Settings
from service_insights.store import db

_LINE = re.compile(r"LINE (\d+):")
_QUOTED = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')


@dataclass(frozen=True)
class Audience:
    """What results.run needs to know about the viewer (access/grants.audience makes it)."""

    visible: tuple[str, ...] | None = None
    """The services the viewer may see; None for every service."""
    own: tuple[str, ...] = ()
    """Services whose records the viewer holds (a service manager's own): a scope within
    them is shown exactly, without perturbation."""

    def exact(self, scope: Scope) -> bool:
        return bool(scope.services) and set(scope.services) <= set(self.own)


EVERYONE = Audience()
"""Sees every service, and every count perturbed (the command line, analysts, admins)."""


@dataclass
class ChartResult:
    spec: QuerySpec
    scope: Scope
    period: Period
    data: disclosure.Protected | None = None
    benchmark: disclosure.Protected | None = None
    benchmark_label: str = ""
    count_benchmark_label: str = ""
    """For count columns the benchmark is an average service of the selection's size."""
    benchmark_note: str = ""
    """Why no benchmark is drawn, when there is none."""
    truncated: bool = False
    error: QueryError | None = None
    data_as_of: str = ""
    data_kind: str = ""
    overall: dict[str, float] | None = None
    """For funnel plots: each rate over all services (the funnel's centre line), from
    the unsuppressed totals; an aggregate of every service, like the benchmark."""
    perturbed: bool = False
    """True when the counts shown carry cell-key noise."""
    audience: Audience = EVERYONE
    lookback: lookback.Lookback | None = None
    """For a query with `lookback: marac`: whether its referrals had a full 12-month
    look-back (catalogue/lookback.py); None for other queries."""
    lookback_note: str = ""
    """The "look-back incomplete" sentence, empty when complete or not asked for."""
    benchmark_scope: Scope | None = None
    """The comparator's services the benchmark was drawn from (for the look-back check)."""

    def benchmark_label_for(self, column: str) -> str:
        if column in self.spec.counts and self.count_benchmark_label:
            return self.count_benchmark_label
        return self.benchmark_label

    @property
    def base(self) -> int | None:
        """The n behind the chart, as shown under it (after protection).

        A share-of-total chart repeats one base on every row; otherwise rows add up.
        """
        if self.data is None or self.data.frame.height == 0:
            return None
        spec, frame = self.spec, self.data.frame
        bases = [r.base for r in spec.rates.values()] + list(spec.measures.values())
        order = [*spec.counts, *bases] if spec.chart == "kpi" else [*bases, *spec.counts]
        col = next((c for c in order if c in frame.columns), None)
        if col is None:
            return None
        values = [v for v in frame[col].to_list() if v is not None]
        if not values:
            return None
        if col in bases and len(set(values)) == 1:
            return int(values[0])
        if col in bases and spec.x in frame.columns and any(
                isinstance(q, tuple) for q in spec.quantiles.values()):
            # Several statistics (median, 90th percentile) per x share one base: once each.
            firsts = dict(zip(frame[spec.x].to_list(), frame[col].to_list(), strict=True))
            return int(sum(v for v in firsts.values() if v is not None))
        return int(sum(values))


def base_text(res: ChartResult) -> str:
    """The base as a reader needs it: one n when every bar shares it or the bars add up;
    a range when each bar has its own base (summing those would overstate it)."""
    if res.data is None or res.data.frame.height == 0:
        return "Base: no cases in this period."
    spec, frame = res.spec, res.data.frame
    y = spec.y[0] if spec.y else None
    if spec.chart not in ("kpi", "table") and y in spec.rates:
        base_col = spec.rates[y].base
        values = sorted({int(v) for v in frame[base_col].to_list() if v is not None})
        if len(values) > 1:
            each = "service" if spec.chart == "funnel" else "bar"
            return f"Base: n = {values[0]:,} to {values[-1]:,} per {each}."
    n = res.base
    return f"Base: n = {n:,}." if n is not None else "Base: no cases in this period."


def shown_period(res: ChartResult) -> str:
    """A trend shows the two years to the end of the period, not just the period."""
    if "trend_start" in res.spec.params:
        start = _two_years_before(res.period.end)
        return (f"the two years {start:%d/%m/%Y} to {res.period.end:%d/%m/%Y} "
                f"(ending with {res.period.label})")
    return res.period.label


def query_params(spec: QuerySpec, period: Period) -> dict[str, object]:
    values = {
        "period_start": period.start,
        "period_end": period.end,
        "trend_start": _two_years_before(period.end),
    }
    figures = reference.figures()
    return {p: values[p] if p in values else figures[p].value for p in spec.params}


def lookback_start(spec: QuerySpec, period: Period) -> dt.date:
    """From when a repeat-rate chart's look-back is checked: the whole span it shows (two
    years for a trend, else the period)."""
    return _two_years_before(period.end) if "trend_start" in spec.params else period.start


def _two_years_before(end: dt.date) -> dt.date:
    try:
        start = end.replace(year=end.year - 2)
    except ValueError:  # 29 February
        start = end.replace(year=end.year - 2, day=28)
    return start + dt.timedelta(days=1)


def _run(store: db.Store, spec: QuerySpec, scope: Scope, period: Period,
         settings: Settings, keyed: bool = False
         ) -> tuple[pl.DataFrame, bool, keying.Keying | None]:
    """The query's rows; with `keyed`, from the cell-key pass (each count beside its key
    sum, in the same run). A keyed run that fails where the plain one would not leaves
    every count unkeyed (so withheld), never shown exactly."""
    params = {**scope.params(), **query_params(spec, period)}
    if keyed:
        keys = keying.rewrite(spec.sql)
        if not keys.problem:
            text, _ = scoped_sql(keys.sql, keyed=True)
            try:
                res = store.query(text, params, timeout_s=settings.query_timeout_s,
                                  max_rows=settings.max_rows)
                return res.frame, res.truncated, keys
            except db.QueryTimeout as exc:
                raise _Failure(QueryError(spec.path, spec.body_line, exc.detail)) from exc
            except db.QueryFailed:
                pass
        frame, truncated, _ = _run(store, spec, scope, period, settings)
        return frame, truncated, keying.Keying(spec.sql, {}, {}, keys.problem or
                                               "the cell-key pass could not run it")
    text, shift = scoped_sql(spec.sql)
    try:
        res = store.query(text, params, timeout_s=settings.query_timeout_s,
                          max_rows=settings.max_rows)
    except db.QueryFailed as exc:
        detail = exc.detail
        m = _LINE.search(detail)
        line = spec.body_line
        if m:
            line = int(m.group(1)) - shift + spec.body_line - 1
            detail = _LINE.sub(f"line {line}:", detail, count=1)
        else:
            line = _line_naming(spec, detail) or line
        raise _Failure(QueryError(spec.path, max(line, 1), detail.strip())) from exc
    return res.frame, res.truncated, None


def _key_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.endswith(keying.SUFFIX) or c == keying.RECORD_KEY]


def perturb_counts(frame: pl.DataFrame, counts, keys: keying.Keying,
                   ptable: cellkey.Ptable) -> tuple[dict[str, pl.Series], list[str]]:
    """Each of `counts` perturbed by its cell key (a whole column at a time), or withheld
    (all null) when the cell-key pass could not key it; a column that is not a count of
    records (a population) is left out, as there is nothing to perturb. Returns the new
    columns and the names withheld. The one place charts and the workbench perturb."""
    schema = frame.schema
    new: dict[str, pl.Series] = {}
    withheld: list[str] = []
    for col in counts:
        kind = keys.kind(col)
        key = keys.keys.get(col)
        if kind == "keyed" and key in schema:
            # Plain lists: a chart has tens of rows, where Polars' own operations (and
            # the thread pool behind them) cost more than the lookup itself.
            dtype = schema[col]
            if (dtype.is_integer() and schema[key].is_integer()
                    and not frame[col].null_count() and not frame[key].null_count()):
                # No nulls: whole arrays (perturb_series skips its null handling).
                new[col] = ptable.perturb_series(frame[col], frame[key]).cast(dtype)
                continue
            new[col] = pl.Series(col, ptable.perturb(frame[col].to_list(),
                                                     frame[key].to_list()),
                                 dtype=dtype if dtype.is_integer() else pl.Float64,
                                 strict=False)
        elif kind == "plain":
            continue
        else:
            new[col] = pl.Series(col, [None] * frame.height, dtype=schema[col])
            withheld.append(col)
    return new, withheld


def percent(counts: list, bases: list, places: int = 1) -> list[float | None]:
    """The one definition of a rate from protected counts: 100 x count / base, rounded
    per cell with Python's round, so a rate is what a reader works out from the counts
    shown; none where either is missing or the base is zero."""
    return [round(100.0 * c / b, places) if c is not None and b else None
            for c, b in zip(counts, bases, strict=True)]


def _perturb(spec: QuerySpec, frame: pl.DataFrame, keys: keying.Keying,
             ptable: cellkey.Ptable) -> tuple[pl.DataFrame, list[str]]:
    """Every count perturbed by its cell key, rates worked out again from the perturbed
    counts, figures proportional to a count scaled with it; whatever cannot be keyed is
    withheld. Returns the frame (key columns dropped) and the columns withheld."""
    schema = frame.schema
    counts = list(dict.fromkeys([*spec.counts, *(r.count for r in spec.rates.values()),
                                 *(r.base for r in spec.rates.values()),
                                 *spec.measures.values()]))
    counts = [c for c in counts if c in schema]
    new, withheld = perturb_counts(frame, counts, keys, ptable)
    values: dict[str, list] = {}

    def listed(col: str) -> list | None:
        if col not in values:
            if col in new:
                values[col] = new[col].to_list()
            elif col in schema:
                values[col] = frame[col].to_list()
            else:
                return None
        return values[col]

    for rate, r in spec.rates.items():
        if rate not in schema:
            continue
        if r.count not in new and r.base not in new:
            continue  # neither part perturbed (a population over a population): as run
        count, base = listed(r.count), listed(r.base)
        if count is None or base is None:
            new[rate] = pl.Series(rate, [None] * frame.height, dtype=pl.Float64)
            continue
        new[rate] = pl.Series(rate, percent(count, base, keys.decimals.get(rate, 1)),
                              dtype=pl.Float64)
    for col, dtype in schema.items():
        if col in new or col in spec.dims or not dtype.is_numeric():
            continue
        if keys.kind(col) not in ("tainted", "keyed"):
            continue  # a median or other value of the records: protected by its base
        by = keys.scales_with.get(col)
        if by in new and by in schema:
            places = keys.decimals.get(col)
            scaled = []
            for v, true, noisy in zip(frame[col].to_list(), frame[by].to_list(),
                                      new[by].to_list(), strict=True):
                if v is None or noisy is None or not true:
                    scaled.append(None if noisy is None else v)
                    continue
                x = v * noisy / true
                scaled.append(round(x, places) if places is not None else x)
            whole = dtype.is_integer() and places in (None, 0)
            if whole:  # a whole number stays one (585, not 585.0)
                scaled = [None if x is None else int(round(x)) for x in scaled]
            new[col] = pl.Series(col, scaled, dtype=dtype if whole else pl.Float64,
                                 strict=False)
        else:
            new[col] = pl.Series(col, [None] * frame.height, dtype=pl.Float64)
            withheld.append(col)
    # One eager DataFrame from Series (with_columns and drop would each go through the
    # lazy engine: about a millisecond a chart, a tenth of a small chart's query).
    out = [new[c] if c in new else frame[c]
           for c in frame.columns if not (c.endswith(keying.SUFFIX) or c == keying.RECORD_KEY)]
    return pl.DataFrame(out), withheld


def _line_naming(spec: QuerySpec, detail: str) -> int | None:
    """DuckDB's binder errors quote the name they trip on but give no line: find it."""
    m = _QUOTED.search(detail)
    if not m:
        return None
    word = re.compile(rf"\b{re.escape(m.group(1))}\b")
    for i, text in enumerate(spec.sql.splitlines()):
        if word.search(text.split("--")[0]):
            return spec.body_line + i
    return None


class _Failure(Exception):
    def __init__(self, error: QueryError):
        super().__init__(str(error))
        self.error = error


def check_columns(spec: QuerySpec, frame: pl.DataFrame) -> QueryError | None:
    """Header and result must agree, and every number must be one disclosure can check."""
    declared = spec.declared_columns()
    for col, key in declared.items():
        if col not in frame.columns:
            return QueryError(spec.path, spec.line_of(key),
                              f"'{key}' names column '{col}' but the query returns "
                              f"{', '.join(frame.columns) or 'no columns'}")
    for col, dtype in frame.schema.items():
        if col not in declared and dtype.is_numeric():
            return QueryError(spec.path, spec.body_line,
                              f"column '{col}' is a number but the header does not declare it "
                              "under 'counts', 'rates' or 'measures', so disclosure control "
                              "cannot check it")
    return None


def _protect(spec: QuerySpec, frame: pl.DataFrame, settings: Settings,
             perturbed: bool = False, unkeyed: list[str] = ()) -> disclosure.Protected:
    dims = list(spec.dims)
    if spec.chart == "table":
        dims = [c for c, t in frame.schema.items()
                if not t.is_numeric() and c not in spec.declared_columns()] + dims
    return disclosure.protect(
        frame,
        counts=spec.counts,
        rates={r: (v.count, v.base) for r, v in spec.rates.items()},
        measures=spec.measures,
        dims=dims,
        rules=disclosure.Rules(settings.suppression_threshold, settings.min_rate_base),
        perturbed=perturbed,
        unkeyed=unkeyed,
        quantiles=row_quantiles(spec, frame),
    )


def row_quantiles(spec: QuerySpec, frame: pl.DataFrame) -> dict[str, list[float | None]]:
    """Each quantile measure's quantile on every row (issue 15): a fixed one, or the one
    its `by` column names; a row whose label is not listed is judged as a median."""
    out: dict[str, list[float | None]] = {}
    for col, q in spec.quantiles.items():
        if isinstance(q, tuple):
            by, values = q
            labels = frame[by].to_list() if by in frame.columns else [None] * frame.height
            out[col] = [values.get(str(v), 0.5) for v in labels]
        else:
            out[col] = [q] * frame.height
    return out


_JUDGING_PTABLES: set[str] = set()
"""The ptable paths results.py has bound into a judged query (normally one)."""


def _perturbed_count(counts: pa.Array, key_sums: pa.Array, paths: pa.Array) -> pa.Array:
    """keying.PERTURB_FUNCTION inside DuckDB: each count plus the noise the ptable at
    `paths` (one path, bound once per query) gives for its key sum; the same lookup as
    Ptable.perturb_array, so a finding's counts are the chart's."""
    if len(counts) == 0:
        return pa.array([], type=pa.int64())
    path = paths[0].as_py()
    if path not in _JUDGING_PTABLES:
        # Only the ptable results.py bound itself: never a path from a query's own text.
        raise cellkey.PtableError("That ptable is not the one configured (SI_PTABLE).")
    ptable = cellkey.load(Path(path))
    if counts.null_count or key_sums.null_count:
        return pa.array(ptable.perturb(counts.to_pylist(), key_sums.to_pylist()),
                        type=pa.int64())
    # No nulls (the usual case): whole arrays, no Python value per cell.
    return pa.array(ptable.perturb_array(counts.to_numpy(), key_sums.to_numpy()),
                    type=pa.int64())


def _fetch_judged(store: db.Store, spec: QuerySpec, scope: Scope, period: Period,
                  settings: Settings) -> tuple[pl.DataFrame, bool, list[str]]:
    """A finding rule's rows for a viewer who needs perturbation: its counts perturbed
    before the rule's own SQL judges them (keying.judged), so whether it fires, and what
    it says, follow the numbers this viewer sees, never the exact ones."""
    cellkey.load(settings.ptable_path)  # a broken ptable is named before anything runs
    judged = keying.judged(spec.sql)
    if judged.problem:
        raise _Failure(QueryError(spec.path, spec.body_line, "this finding cannot be judged "
                                  f"on perturbed counts: {judged.problem}"))
    store.scalar_function(keying.PERTURB_FUNCTION, _perturbed_count,
                          ["BIGINT", "BIGINT", "VARCHAR"], "BIGINT")
    _JUDGING_PTABLES.add(str(settings.ptable_path))
    params = {**scope.params(), **query_params(spec, period),
              keying.PTABLE_PARAM: str(settings.ptable_path)}
    text, _ = scoped_sql(judged.sql, keyed=True)
    try:
        res = store.query(text, params, timeout_s=settings.query_timeout_s,
                          max_rows=settings.max_rows)
    except db.QueryTimeout as exc:
        raise _Failure(QueryError(spec.path, spec.body_line, exc.detail)) from exc
    except db.QueryFailed as exc:
        _run(store, spec, scope, period, settings)  # the rule's own error, with its line
        raise _Failure(QueryError(spec.path, spec.body_line, "this finding could not be "
                                  f"judged on perturbed counts: {exc.detail.strip()}")) from exc
    frame = res.frame
    keys = keying.rewrite(spec.sql)
    schema = frame.schema
    new: dict[str, pl.Series] = {}
    unkeyed = []
    counts = dict.fromkeys([*spec.counts, *(r.count for r in spec.rates.values()),
                            *(r.base for r in spec.rates.values()), *spec.measures.values()])
    for col in counts:
        if col in schema and keys.kind(col) not in ("keyed", "plain"):
            new[col] = pl.Series(col, [None] * frame.height, dtype=schema[col])
            unkeyed.append(col)
    for rate, r in spec.rates.items():
        if rate in schema and r.count in schema and r.base in schema:
            count = (new.get(r.count) if r.count in new else frame[r.count]).to_list()
            base = (new.get(r.base) if r.base in new else frame[r.base]).to_list()
            new[rate] = pl.Series(rate, percent(count, base, keys.decimals.get(rate, 1)),
                                  dtype=pl.Float64)
    out = [new[c] if c in new else frame[c] for c in frame.columns
           if not (c.endswith(keying.SUFFIX) or c == keying.RECORD_KEY)]
    return pl.DataFrame(out), res.truncated, unkeyed


def _fetch(store: db.Store, spec: QuerySpec, scope: Scope, period: Period,
           settings: Settings, perturb: bool) -> tuple[pl.DataFrame, bool, list[str]]:
    """The rows for `scope`, perturbed when `perturb`; raises _Failure."""
    if perturb and spec.chart == "finding":
        return _fetch_judged(store, spec, scope, period, settings)
    frame, truncated, keys = _run(store, spec, scope, period, settings, keyed=perturb)
    if keys is None:
        return frame, truncated, []
    frame, unkeyed = _perturb(spec, frame, keys, cellkey.load(settings.ptable_path))
    return frame, truncated, unkeyed


def _overall(spec: QuerySpec, frame: pl.DataFrame) -> dict[str, float]:
    out = {}
    for rate, r in spec.rates.items():
        base = frame[r.base].sum() if frame.height else 0
        if base:
            out[rate] = 100.0 * frame[r.count].sum() / base
    return out


def service_count(store: db.Store) -> int:
    """Fixed for a store build, so asked once per open store."""
    if store.service_count is None:
        frame = store.query("select count(*) as n from main.services").frame
        store.service_count = int(frame["n"][0])
    return store.service_count


def run(store: db.Store, spec: QuerySpec, scope: Scope, period: Period,
        settings: Settings, audience: Audience = EVERYONE,
        comparator: str = "all") -> ChartResult:
    """The chart's data for `scope` as `audience` may see it (perturbed unless they hold
    the records), and the `comparator`'s benchmark (catalogue/comparators.py) where it is
    safe. The product's default comparator is services of the same type (Selection); this
    function's default stays "all" so a caller that names none keeps its old meaning. For a
    query with `lookback: marac`, whether its repeat rate had a full 12-month look-back
    (in the selection and in the comparator's services)."""
    result = _run_chart(store, spec, scope, period, settings, audience, comparator)
    if spec.lookback and result.error is None and result.data is not None:
        start = lookback_start(spec, period)
        try:
            result.lookback = lookback.check(store, scope, start, period.end, settings)
            bench = (lookback.check(store, result.benchmark_scope, start, period.end,
                                    settings)
                     if result.benchmark_scope is not None else None)
        except (db.QueryFailed, db.QueryTimeout) as exc:
            result.error = QueryError(spec.path, spec.line_of("lookback"),
                                      f"the look-back check failed: {exc}")
            return result
        result.lookback_note = lookback.note(result.lookback, bench, period,
                                             "trend_start" in spec.params)
    return result


def _run_chart(store: db.Store, spec: QuerySpec, scope: Scope, period: Period,
               settings: Settings, audience: Audience = EVERYONE,
               comparator: str = "all") -> ChartResult:
    """run() without the look-back check."""
    result = ChartResult(spec, scope, period, data_as_of=store.meta.get("data_as_of", ""),
                         data_kind=store.meta.get("data_kind", ""), audience=audience)
    perturb = not audience.exact(scope)
    try:
        frame, truncated, unkeyed = _fetch(store, spec, scope, period, settings, perturb)
    except _Failure as exc:
        result.error = exc.error
        return result
    except cellkey.PtableError as exc:
        result.error = QueryError(spec.path, spec.body_line, str(exc))
        return result
    result.error = check_columns(spec, frame)
    if result.error:
        return result
    result.truncated = truncated
    result.perturbed = perturb
    result.data = _protect(spec, frame, settings, perturb, unkeyed)
    if spec.chart == "funnel" and scope.is_all:
        result.overall = _overall(spec, frame)

    if not spec.benchmark or spec.chart == "finding":
        return result
    if scope.is_all:
        result.benchmark_note = "You are viewing all services, so this is the benchmark."
        return result
    if not scope.services:
        result.benchmark_note = "The all-services benchmark is not shown: no services are selected."
        return result
    # Services outside everything this viewer may see (not only outside the selection)
    # count towards the comparator's minimum: otherwise the benchmark minus the services
    # they can see gives the ones they cannot (comparators.pool).
    chosen = comparators.pool(store, scope, comparator, settings.min_other_services,
                              audience.visible)
    if chosen.scope is None:
        result.benchmark_note = chosen.note
        result.benchmark_label = chosen.label
        return result
    result.benchmark_scope = chosen.scope
    try:
        bench, _, bench_unkeyed = _fetch(store, spec, chosen.scope, period, settings, True)
    except _Failure as exc:
        result.error = exc.error
        return result
    result.benchmark_label = chosen.label
    if spec.chart == "funnel":
        # Only the comparator's rate is kept: other services' own rows never leave here.
        result.overall = _overall(spec, bench)
        return result
    protected = _protect(spec, bench, settings, True, bench_unkeyed)
    scaled = [c for c in spec.y if c in spec.counts]
    if scaled:
        # Counts are compared with an average service of the same size of selection;
        # suppression above judged the real pooled counts, not the average.
        n = len(scope.services or ())
        total = chosen.size or service_count(store)
        protected.frame = protected.frame.with_columns(
            [(pl.col(c) * (n / total)).alias(c) for c in scaled])
        base = "All-services" if chosen.kind == "all" else chosen.label
        result.count_benchmark_label = (f"{base} average per service" if n == 1
                                        else f"{base} average for {n} services")
    result.benchmark = protected
    return result
