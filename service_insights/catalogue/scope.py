"""Which services a viewer is looking at, and the relations a query reads for that scope.

Queries read `cases`, `marac_referrals`, `services` and `areas`. The data layer puts CTEs
of those names in front of the query, filtered by bound parameters, so the same SQL runs
over the viewer's scope and over all services, and no query repeats access rules. The
CTE text is fixed: scope values travel only as bound parameters.

That only holds if a query can name nothing else: `main.cases` (or `store.cases`) is the
unscoped table behind the CTE, and a table function or file read reaches outside the
store. So every query file and workbench query is parsed (sqlglot) and refused unless each
relation it reads is one of the four scoped names, one of its own CTEs, or a VALUES list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from service_insights.store import db

RELATIONS = ("cases", "marac_referrals", "services", "areas")
"""The only relations a query may read: the scoped CTEs the data layer puts in front."""
FORBIDDEN_FUNCTIONS = re.compile(
    r"^(read_|parquet_|sniff_|glob$|query$|query_table$|duckdb_|pragma_|current_setting$|"
    r"getenv$|getvariable$|which_secret$|iceberg_|delta_|postgres_|mysql_|sqlite_|http|"
    r"error$|si_)", re.I)
"""Functions that read files, URLs, settings or the catalogue, or raise an error whose
text the query chooses (a way to print a record's value in a message), and the
dashboard's own (si_perturbed_count, which only the cell-key pass may call)."""

SCOPE_PREFIX = """\
with cases as (
    select * from main.cases
    where $scope_services is null or list_contains($scope_services, service_id)
),
marac_referrals as (
    select * from main.marac_referrals
    where case
        when $scope_areas is null then true
        when $marac_by_service then list_contains($scope_services, service_id)
        else list_contains($scope_areas, marac_area)
    end
),
services as (
    select * from main.services
    where $scope_services is null or list_contains($scope_services, service_id)
),
areas as (
    select * from main.areas
    where $scope_areas is null or list_contains($scope_areas, area_code)
)"""

KEYED_PREFIX = (SCOPE_PREFIX
                .replace("from main.cases", "from store.cases_keyed")
                .replace("from main.marac_referrals", "from store.marac_referrals_keyed"))
"""The same scoped relations with each record's `record_key`, for the cell-key pass
(catalogue/keying.py) only: the relations analysts' SQL reads never carry it."""

SCOPE_PARAMS = frozenset({"scope_services", "scope_areas", "marac_by_service"})

_LEADING = re.compile(r"^\s*(?:(?:--[^\n]*\n)|(?:/\*.*?\*/)|\s)*", re.S)
_WITH = re.compile(r"^with\s+(recursive\s+)?", re.I)


@dataclass(frozen=True)
class Scope:
    """A set of services (None = every service) and the areas they sit in.

    `by_service` is true when the viewer picked services rather than whole areas: Marac
    referrals are then those the chosen services made, not every referral in the area.
    """

    services: tuple[str, ...] | None
    areas: tuple[str, ...] | None
    by_service: bool
    label: str

    @property
    def is_all(self) -> bool:
        return self.services is None

    @property
    def slug(self) -> str:
        return re.sub(r"[^0-9A-Za-z]+", "-", self.label).strip("-").lower()[:60]

    def params(self) -> dict[str, object]:
        return {
            "scope_services": list(self.services) if self.services is not None else None,
            "scope_areas": list(self.areas) if self.areas is not None else None,
            "marac_by_service": self.by_service,
        }


ALL_SERVICES = Scope(None, None, False, "All services")


def scoped_sql(sql: str, *, keyed: bool = False) -> tuple[str, int]:
    """Put the scoped relations in front of a single SELECT (which may have its own WITH).

    Returns the text to run and how many lines to subtract from a line number in it to
    get the line in `sql`, so DuckDB's "LINE n" points into the analyst's file.
    """
    prefix = KEYED_PREFIX if keyed else SCOPE_PREFIX
    leading = _LEADING.match(sql).group(0)
    body = sql[len(leading):].rstrip().rstrip(";")
    prefix_lines = prefix.count("\n") + 1
    shift = prefix_lines - leading.count("\n")
    m = _WITH.match(body)
    if m:
        recursive = "recursive " if m.group(1) else ""
        head = prefix.replace("with ", f"with {recursive}", 1)
        return head + ",\n" + body[m.end():], shift
    return prefix + "\n" + body, shift


@dataclass(frozen=True)
class Escape:
    """A relation or function a query may not use, and the line of the SQL it is on."""

    message: str
    line: int


def function_name(node: exp.Func) -> str:
    """The name DuckDB will see for a parsed function call (sqlglot's own classes, such
    as ReadCSV, are named by the SQL they generate)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", node.sql(dialect="duckdb"))
    return m.group(1).lower() if m else node.sql_name().lower()


def line_of(node: exp.Expression) -> int:
    """The 1-based line of the SQL a parsed node came from (1 when unknown)."""
    for n in node.walk():
        line = n.meta.get("line") if n.meta else None
        if line:
            return int(line)
    return 1


def relation_escape(tree: exp.Expression) -> Escape | None:
    """The first relation or function in a parsed query that reaches outside the scoped
    relations, or None when it reads only `cases`, `marac_referrals`, `services`, `areas`,
    its own CTEs and VALUES lists."""
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    plain = ", ".join(RELATIONS)
    for node in tree.walk():
        if isinstance(node, exp.Func) and FORBIDDEN_FUNCTIONS.match(function_name(node)):
            return Escape(f"the function {function_name(node)}() is not allowed: a query "
                          f"reads only {plain}", line_of(node))
        if isinstance(node, exp.Unnest | exp.Lateral) and isinstance(
                node.parent, exp.From | exp.Join):
            return Escape("a table function in FROM is not allowed: a query reads only "
                          f"{plain}", line_of(node))
        if not isinstance(node, exp.Table):
            continue
        if not isinstance(node.this, exp.Identifier):
            name = (function_name(node.this) + "()" if isinstance(node.this, exp.Func)
                    else node.this.sql(dialect="duckdb"))
            return Escape(f"reading {name} is not allowed: a query reads only {plain} "
                          "(no table functions, files or URLs)", line_of(node))
        name = node.name.lower()
        if node.args.get("db") or node.args.get("catalog"):
            return Escape(f"{node.sql(dialect='duckdb').split(' ')[0]} names a table outside "
                          f"the scope: read {name if name in RELATIONS else 'cases'} by its "
                          "plain name, which the data layer limits to the services the viewer "
                          "may see", line_of(node))
        if node.this.quoted and ("." in name or "/" in name or ":" in name):
            return Escape(f"reading the file or URL {node.name!r} is not allowed: a query "
                          f"reads only {plain}", line_of(node))
        if name not in RELATIONS and name not in ctes:
            return Escape(f"'{node.name}' is not a relation a query may read: use {plain} "
                          "(and the query's own WITH clauses)", line_of(node))
    return None


def check_relations(sql: str) -> Escape | None:
    """Parse `sql` (DuckDB dialect) and return what escapes the scope, if anything."""
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except sqlglot.errors.SqlglotError as exc:
        return Escape("the SQL could not be checked for the relations it reads: "
                      f"{str(exc).splitlines()[0]}", 1)
    for tree in trees:
        found = relation_escape(tree)
        if found:
            return found
    return duckdb_escape(sql)


def duckdb_escape(sql: str) -> Escape | None:
    """The same rule on DuckDB's own parse of the text that will run, so SQL that sqlglot
    reads one way and DuckDB another cannot slip a table past the check."""
    try:
        refs, ctes = db.table_refs(sql)
    except db.QueryFailed as exc:
        return Escape(f"the SQL does not parse: {exc.detail.splitlines()[0]}", 1)
    plain = ", ".join(RELATIONS)
    for ref in refs:
        line = sql[:ref.offset].count("\n") + 1 if ref.offset is not None else 1
        name = ref.name.lower()
        if ref.kind == "SHOW_REF":
            return Escape(f"DESCRIBE and SUMMARIZE are not allowed: a query reads only {plain}",
                          line)
        if ref.kind != "BASE_TABLE":
            return Escape(f"reading {ref.name}() is not allowed: a query reads only {plain} "
                          "(no table functions, files or URLs)", line)
        if ref.schema or ref.catalog:
            qualified = ".".join(p for p in (ref.catalog, ref.schema, ref.name) if p)
            return Escape(f"{qualified} names a table outside the scope: read "
                          f"{name if name in RELATIONS else 'cases'} by its plain name, which "
                          "the data layer limits to the services the viewer may see", line)
        if name not in RELATIONS and name not in ctes:
            return Escape(f"'{ref.name}' is not a relation a query may read: use {plain} "
                          "(and the query's own WITH clauses)", line)
    return None
