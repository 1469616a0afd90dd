"""The SQL workbench: an analyst's ad-hoc, read-only, aggregate-only query.

Three layers keep it safe, each enough on its own for the common mistakes: the SQL is
parsed (sqlglot) and refused unless it is one SELECT over the scoped relations with no
file, URL or system functions; it runs on its own read-only connection with external
access disabled and configuration locked, with a time limit and a row cap; and the
result goes through disclosure control like every chart (integer columns are counts,
other numbers are withheld where the row's count is too small). It shows aggregates
only: a query that returns case-level rows is refused, because rows of one person's
characteristics can identify them even without a name.
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

from service_insights.access import grants
from service_insights.catalogue import catalog
from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import Scope, scoped_sql
from service_insights.protection import disclosure
from service_insights.settings import Settings
from service_insights.store import db

RELATIONS = ("cases", "marac_referrals", "services", "areas")
"""What a workbench query may read: the same scoped relations as a chart."""
FORBIDDEN_FUNCTIONS = re.compile(
    r"^(read_|parquet_|sniff_|glob$|query$|query_table$|duckdb_|pragma_|current_setting$|"
    r"getenv$|which_secret$|iceberg_|delta_|postgres_|mysql_|sqlite_|http)", re.I)
WORKBENCH_PARAMS = ("period_start", "period_end")


class Refused(ValueError):
    """Why a workbench query will not run, in words an analyst can act on."""


@dataclass
class Outcome:
    sql: str
    protected: disclosure.Protected | None = None
    truncated: bool = False
    seconds: float = 0.0
    counts: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)


def check(sql: str) -> exp.Expression:
    """Refuse anything but one aggregate SELECT over the scoped relations."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise Refused("Type a SELECT query.")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise Refused(f"The SQL does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise Refused("One statement at a time: the workbench runs a single SELECT.")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = tree.key.upper() if tree.key else type(tree).__name__
        raise Refused(f"Only SELECT queries run here ({kind} is not allowed): the workbench "
                      "cannot change, attach, copy, export or configure anything.")
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.Pragma | exp.Set | exp.Attach | exp.Copy
                      | exp.Insert | exp.Update | exp.Delete | exp.Create | exp.Drop
                      | exp.Alter):
            raise Refused(f"{node.key.upper()} is not allowed in the workbench.")
        if isinstance(node, exp.Func):
            name = node.sql_name() if not isinstance(node, exp.Anonymous) else node.name
            if FORBIDDEN_FUNCTIONS.match(name or ""):
                raise Refused(f"The function {name.lower()}() is not allowed: the workbench "
                              "reads only the dashboard's own relations.")
        if isinstance(node, exp.Table):
            if node.args.get("db") or node.args.get("catalog"):
                raise Refused(f"Read the relations {', '.join(RELATIONS)} by their plain "
                              f"names (not {node.sql(dialect='duckdb')}): they are already "
                              "limited to the services you may see.")
            if isinstance(node.this, exp.Literal | exp.Func):
                raise Refused("Reading files, URLs or table functions such as read_csv() or "
                              "range() is not allowed: the workbench reads only its relations.")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name and name not in RELATIONS and name not in ctes:
            raise Refused(f"Unknown relation '{table.name}': the workbench reads "
                          f"{', '.join(RELATIONS)} (and your own WITH clauses).")
    _require_aggregate(tree)
    return tree


def _require_aggregate(tree: exp.Expression) -> None:
    selects = [tree] if isinstance(tree, exp.Select) else list(tree.find_all(exp.Select))
    outer = selects[0] if selects else None
    if outer is None:
        return
    if outer.args.get("group"):
        return
    projections = outer.expressions
    if projections and all(p.find(exp.AggFunc) is not None for p in projections):
        return
    raise Refused("The workbench shows aggregates only (counts, rates, averages by group), "
                  "never case-level rows: add GROUP BY and count(*), or aggregate every "
                  "column.")


def open_connection(path: Path) -> db.Store:
    """The workbench's own read-only connection (external access off, settings locked),
    separate from the one charts share, so an analyst's query never holds theirs."""
    return db.Store(path)


def run(store: db.Store, sql: str, scope: Scope, period: Period, viewer: grants.Viewer,
        settings: Settings, timeout_s: float | None = None) -> Outcome:
    """Check, scope to the viewer, run with limits, and protect the result."""
    check(sql)
    text = sql.strip().rstrip(";").strip()
    used = catalog.used_params(text)
    unknown = used - set(WORKBENCH_PARAMS)
    if unknown:
        names = ", ".join("$" + p for p in WORKBENCH_PARAMS)
        raise Refused(f"Unknown parameter ${sorted(unknown)[0]}: the workbench binds "
                      f"{names} from the sidebar period.")
    scope = grants.clamp(scope, viewer)
    full, _ = scoped_sql(text)
    params = {**scope.params(),
              **{p: getattr(period, p.removeprefix("period_")) for p in used}}
    started = time.perf_counter()
    try:
        res = store.query(full, params, timeout_s=timeout_s or settings.query_timeout_s,
                          max_rows=min(settings.max_rows, 10_000))
    except db.QueryTimeout as exc:
        raise Refused(f"The query was stopped at its time limit: {exc.detail}") from None
    except db.QueryFailed as exc:
        raise Refused(f"DuckDB refused the query: {exc.detail}") from None
    frame = res.frame
    counts = [c for c, t in frame.schema.items() if t.is_integer()]
    measures = [c for c, t in frame.schema.items() if t.is_numeric() and not t.is_integer()]
    dims = [c for c, t in frame.schema.items() if not t.is_numeric()]
    protected = _protect(frame, counts, measures, dims, settings)
    return Outcome(text, protected, res.truncated, time.perf_counter() - started,
                   counts, measures)


def _protect(frame: pl.DataFrame, counts, measures, dims, settings) -> disclosure.Protected:
    rules = disclosure.Rules(settings.suppression_threshold, settings.min_rate_base)
    if measures and counts:
        # An average or rate is only as safe as the smallest count beside it.
        frame = frame.with_columns(pl.min_horizontal(counts).alias("__base__"))
        protected = disclosure.protect(frame, counts=counts + ["__base__"],
                                       measures={m: "__base__" for m in measures},
                                       dims=dims, rules=rules)
        protected.frame = protected.frame.drop("__base__")
        protected.hidden.pop("__base__", None)
        return protected
    protected = disclosure.protect(frame, counts=counts, dims=dims, rules=rules)
    if measures:
        # No count to judge them by: withhold every non-integer number.
        protected.frame = protected.frame.with_columns(
            [pl.lit(None, dtype=frame.schema[m]).alias(m) for m in measures])
        for m in measures:
            protected.hidden[m] = [True] * frame.height
        protected.withheld += len(measures) * frame.height
    return protected


def save(sql: str, header: dict, queries_dir: Path) -> Path:
    """Write the query as a new catalogue file, after the catalogue accepts it."""
    check(sql)
    page, title = header.get("page", ""), header.get("title", "")
    slug = re.sub(r"[^a-z0-9]+", "_", str(title).lower()).strip("_")[:60]
    if not slug or not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", str(page)):
        raise Refused("The chart needs a title and a page.")
    params = sorted(catalog.used_params(sql))
    if params:
        header = {**header, "params": params}
    text = "/*---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True,
                                       width=88) + "---*/\n" + sql.strip().rstrip(";") + "\n"
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


