"""The SQL workbench: an analyst's ad-hoc, read-only question, asked safely.

Four layers, each enough on its own for the common mistakes: the parsed query must have
the shape of the catalogue's disclosure model (safe_sql: grouping keys from an allow-list
of categorical fields, and plain counts, over the scoped relations only); it runs on a
read-only connection with external access off, configuration locked, a memory and thread
limit, a time limit and a row cap; its counts, and the rates declared over them, go
through disclosure control exactly as a chart's do; and every run is written to the audit
log with its SQL text (never its result), refused or not.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import sqlglot
import yaml
from sqlglot import exp

from service_insights.access import audit, grants
from service_insights.catalogue import catalog, keying, results, safe_sql
from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import RELATIONS, Scope, scoped_sql
from service_insights.protection import cellkey, disclosure
from service_insights.settings import Settings
from service_insights.store import db

__all__ = ["RELATIONS", "Outcome", "Refused", "check", "open_connection", "parse_rates",
           "run", "save"]

WORKBENCH_PARAMS = ("period_start", "period_end")
_RATE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*=\s*([a-z][a-z0-9_]*)\s*/\s*([a-z][a-z0-9_]*)\s*$")


class Refused(ValueError):
    """Why a workbench query will not run, in words an analyst can act on."""


@dataclass
class Outcome:
    sql: str
    protected: disclosure.Protected | None = None
    truncated: bool = False
    seconds: float = 0.0
    counts: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    rates: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def measures(self) -> list[str]:
        """The declared rates (percentages), for the quick chart and the save form."""
        return list(self.rates)


def check(sql: str) -> safe_sql.Shape:
    """Refuse anything but a safe grouped count over the scoped relations."""
    try:
        return safe_sql.check(sql)
    except safe_sql.Unsafe as exc:
        raise Refused(str(exc)) from None


def parse_rates(text: str) -> dict[str, tuple[str, str]]:
    """Rates declared one a line as `name = count / base` (a percentage of two counts)."""
    rates: dict[str, tuple[str, str]] = {}
    for n, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        m = _RATE.match(line)
        if not m:
            raise Refused(f"Rate line {n} should read like 'pct_children = with_children / "
                          "cases' (lowercase column names).")
        rates[m.group(1)] = (m.group(2), m.group(3))
    return rates


def open_connection(path: Path) -> db.Store:
    """The workbench's own read-only connection (external access off, settings locked),
    separate from the one charts share, so an analyst's query never holds theirs."""
    return db.Store(path)


def run(store: db.Store, sql: str, scope: Scope, period: Period, viewer: grants.Viewer,
        settings: Settings, timeout_s: float | None = None,
        rates: dict[str, tuple[str, str]] | None = None) -> Outcome:
    """Check, scope to the viewer, run with limits, and protect the result; the SQL text of
    every run, refused or not, goes to the audit log (never the result)."""
    text = sql.strip().rstrip(";").strip()
    try:
        outcome = _run(store, text, scope, period, viewer, settings, timeout_s, rates or {})
    except Refused as exc:
        audit.record(viewer.username, "workbench_run", ok=False, sql=text, reason=str(exc))
        raise
    audit.record(viewer.username, "workbench_run", ok=True, sql=text,
                 result_rows=outcome.protected.frame.height if outcome.protected else 0)
    return outcome


def _run(store, text, scope, period, viewer, settings, timeout_s, rates) -> Outcome:
    shape = check(text)
    used = catalog.used_params(shape.sql)
    unknown = used - set(WORKBENCH_PARAMS)
    if unknown:
        names = ", ".join("$" + p for p in WORKBENCH_PARAMS)
        raise Refused(f"Unknown parameter ${sorted(unknown)[0]}: the workbench binds "
                      f"{names} from the sidebar period.")
    scope = grants.clamp(scope, viewer)
    runnable, names = _named_counts(shape)
    # The same rule as a chart: exact counts only for a service manager looking at their
    # own services; anyone else gets every count through the cell key method.
    perturb = not grants.audience(viewer).exact(scope)
    keys = keying.rewrite(runnable) if perturb else None
    params = {**scope.params(),
              **{p: getattr(period, p.removeprefix("period_")) for p in used}}
    limits = {"timeout_s": timeout_s or settings.query_timeout_s,
              "max_rows": min(settings.max_rows, 10_000)}
    started = time.perf_counter()
    res = None
    if keys is not None and not keys.problem:
        # The key columns are added to the checked query here, after the safety check:
        # the analyst's SQL itself may not name record_key (safe_sql.NEVER_NAMED).
        try:
            res = store.query(scoped_sql(keys.sql, keyed=True)[0], params, **limits)
        except (db.QueryTimeout, db.QueryOutOfMemory) as exc:
            raise _refusal(exc) from None
        except db.QueryFailed:
            res = None  # run as written below, for its own error, with every count withheld
    keyed_run = res is not None
    if res is None:
        try:
            res = store.query(scoped_sql(runnable)[0], params, **limits)
        except db.QueryFailed as exc:
            raise _refusal(exc) from None
    frame = res.frame
    columns = [c for c in frame.columns if not keyed_run
               or not (c.endswith(keying.SUFFIX) or c == keying.RECORD_KEY)]
    key_cols = [columns[i] for i in shape.keys]
    counts = [columns[i] for i in shape.counts]
    _check_rates(rates, counts, columns)
    unkeyed: list[str] = []
    if keys is not None:
        if keys.problem or not keyed_run:
            keys = keying.Keying(runnable, {}, {})  # nothing keyed: every count withheld
        try:
            ptable = cellkey.load(settings.ptable_path)
        except cellkey.PtableError as exc:
            raise Refused(str(exc)) from None
        new, unkeyed = results.perturb_counts(frame, counts, keys, ptable)
        frame = pl.DataFrame([new.get(c, frame[c]) for c in columns])
    protected = _protect(frame, key_cols, counts, rates, settings, perturbed=perturb,
                         unkeyed=unkeyed)
    return Outcome(runnable, protected, res.truncated, time.perf_counter() - started,
                   counts, key_cols, dict(rates))


def _named_counts(shape: safe_sql.Shape) -> tuple[str, list[str]]:
    """The checked query with every count given a name, so the cell-key pass can put
    each count's key beside it, the result reads the same whether or not its counts are
    perturbed, and a saved query has names a chart file accepts: a count the analyst did
    not name is `n` (`count(*)`) or `n_<column>` (`count(column)`), `_2`, `_3` ... if
    taken. Returns the SQL and the output names."""
    tree = sqlglot.parse_one(shape.sql, dialect="duckdb")
    names = list(shape.names)
    if any(isinstance(p, exp.Star) or isinstance(p, exp.Column) and isinstance(p.this, exp.Star)
           for p in tree.expressions):
        return shape.sql, names  # positions after * expansion: counts already by name
    taken = {p.alias_or_name.lower() for p in tree.expressions
             if isinstance(p, exp.Alias | exp.Column)}
    projections = []
    for i, p in enumerate(tree.expressions):
        if i in shape.counts and not isinstance(p, exp.Alias):
            count = p.this if isinstance(p, exp.Filter) else p
            arg = count.this if isinstance(count, exp.Count) else None
            base = f"n_{arg.name.lower()}" if isinstance(arg, exp.Column) else "n"
            name, n = base, 2
            while name in taken:
                name, n = f"{base}_{n}", n + 1
            taken.add(name)
            names[i] = name
            p = exp.alias_(p, name)
        projections.append(p)
    tree.set("expressions", projections)
    return tree.sql(dialect="duckdb"), names


def _refusal(exc: db.QueryFailed) -> Refused:
    if isinstance(exc, db.QueryTimeout):
        return Refused(f"The query was stopped at its time limit: {exc.detail}.")
    if isinstance(exc, db.QueryOutOfMemory):
        return Refused(f"The query was stopped because {exc.detail}: narrow it with a filter "
                       "or fewer joins.")
    if isinstance(exc, db.QueryFailed) and exc.before_reading_rows:
        return Refused(f"DuckDB refused the query: {exc.detail.splitlines()[0]}")
    # Errors raised while rows are read (a failed cast, a value out of range) can quote a
    # record's value, so their text is not shown.
    return Refused("DuckDB could not run the query on the records (a value could not be "
                   "converted or was out of range); the details are withheld because they "
                   "can quote a record.")


def _check_rates(rates, counts, columns) -> None:
    for name, (count, base) in rates.items():
        if name in columns:
            raise Refused(f"Rate '{name}' has the name of a column of the result: choose "
                          "another name.")
        for col in (count, base):
            if col not in counts:
                raise Refused(f"Rate '{name}' names '{col}', which is not a count column of "
                              f"the result ({', '.join(counts)}).")


def _protect(frame: pl.DataFrame, keys, counts, rates, settings, perturbed: bool = False,
             unkeyed=()) -> disclosure.Protected:
    """Protected like a chart: keys are its dimensions, counts its counts, and each rate is
    withheld where its count or base is hidden or the base is under the minimum, then
    worked out from the protected counts (never from a count that was not shown)."""
    rules = disclosure.Rules(settings.suppression_threshold, settings.min_rate_base)
    with_rates = frame.with_columns([
        pl.Series(r, results.percent(frame[c].to_list(), frame[b].to_list()),
                  dtype=pl.Float64) for r, (c, b) in rates.items()])
    return disclosure.protect(with_rates, counts=counts, rates=rates, dims=keys,
                              rules=rules, perturbed=perturbed, unkeyed=unkeyed)


def save(sql: str, header: dict, queries_dir: Path,
         rates: dict[str, tuple[str, str]] | None = None) -> Path:
    """Write the query as a new catalogue file, after the same disclosure model as a run
    accepts it: a saved query cannot publish what the workbench would refuse to show.

    The file holds the checked SQL; declared rates are worked out around it from its counts,
    and the header declares the counts, rates and keys for the catalogue's own protection."""
    shape = check(sql)
    rates = rates or {}
    count_names = [shape.names[i] for i in shape.counts]
    for name, (count, base) in rates.items():
        if not all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in (name, count, base)) \
                or count not in count_names or base not in count_names:
            raise Refused(f"Rate '{name}' must be a lowercase name over two named counts of "
                          f"the query ({', '.join(count_names)}).")
    page, title = header.get("page", ""), header.get("title", "")
    slug = re.sub(r"[^a-z0-9]+", "_", str(title).lower()).strip("_")[:60]
    if not slug or not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", str(page)):
        raise Refused("The chart needs a title and a page.")
    body = shape.sql
    if rates:
        parts = ",\n    ".join(
            f"round(100.0 * {c} / nullif({b}, 0), 1) as {r}" for r, (c, b) in rates.items())
        body = (f"with workbench_result as (\n{shape.sql}\n)\n"
                f"select *,\n    {parts}\nfrom workbench_result")
        header = {**header, "rates": {r: {"count": c, "base": b}
                                      for r, (c, b) in rates.items()}}
    params = sorted(catalog.used_params(body))
    if params:
        header = {**header, "params": params}
    text = "/*---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True,
                                       width=88) + "---*/\n" + body + "\n"
    rel = f"{queries_dir.name}/{page}/{slug}.sql"
    try:
        catalog.parse(text, rel)
    except catalog.QueryFileError as exc:
        raise Refused(str(exc.error)) from None
    path = queries_dir / page / f"{slug}.sql"
    if path.exists():
        raise Refused(f"{rel} already exists: choose another title.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as fh:
        fh.write(text)
    return path
