"""The workbench's disclosure model: which questions an ad-hoc query may ask.

A chart is safe because its header says which columns are categories and which are counts,
and disclosure control checks every count. A free SELECT says nothing, and an aggregate is
not enough: `count(*)+1000`, `'n='||count(*)`, `count(*) < 4`, `min(abuse_months)`,
`string_agg(case_id, ',')` or a `group by case_id` all return a small count or a record's
value while looking like an aggregate. So the parsed query (sqlglot, with every column
resolved to the relation it comes from) must have the shape disclosure control knows:

- every output column is either a grouping key built only from categorical fields on the
  allow-list below (or constants), or a plain count: `count(*)`, `count(col)`,
  `count(distinct col)`, optionally `FILTER (WHERE ...)`, with nothing built on it;
- GROUP BY and ORDER BY use only such keys (no ROLLUP, CUBE or GROUPING SETS, whose
  subtotals sit beside their parts);
- aggregates run only in the outer SELECT and window functions not at all, so no count
  or record value can feed a condition, a key or another query part;
- references, record keys, exact dates and free numbers (the deny-list) may filter rows
  and be counted, never be shown or grouped by; `record_key` may not be named at all.

Rates are declared beside the query as a count column over a base column and computed
from the protected counts, like a chart's `rates`. A refused query gets one sentence naming
the column and the rule it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify

from service_insights import settings
from service_insights.catalogue.scope import (
    FORBIDDEN_FUNCTIONS,
    RELATIONS,
    function_name,
    relation_escape,
)
from service_insights.store import db

ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "cases": frozenset({
        "service_id", "area_code", "financial_year", "fy_quarter", "quarter_label",
        "quarter_start", "referral_source", "age_band", "gender", "ethnicity", "disability",
        "lgbt", "risk_level", "abuse_physical", "abuse_sexual", "abuse_coercive_control",
        "abuse_stalking", "abuse_economic", "perpetrator", "youngest_child_age_band",
        "social_care", "marac_referred", "whole_family_support", "abuse_ceased",
        "risk_reduced", "feels_safer", "quality_of_life_improved", "has_children",
        "is_high_risk", "is_known_to_social_care", "is_closed", "is_male", "is_minoritised",
        "mental_health_need", "substance_use_need", "housing_need", "has_complex_needs",
        "is_return_after_marac", "is_missed_rereferral",
    }),
    "marac_referrals": frozenset({
        "marac_area", "service_id", "referring_agency", "is_repeat", "is_partner_agency",
        "financial_year", "fy_quarter", "quarter_label", "quarter_start",
        "source", "has_perpetrator", "is_repeat_same_perpetrator", "has_linkage_key",
        "heard_at_other_marac_12m", "supported_by_other_service_12m", "has_full_lookback",
    }),
    "services": frozenset({"service_id", "name", "service_type", "area_code", "area_name",
                           "region"}),
    "areas": frozenset({"area_code", "name", "region"}),
}
"""Categorical fields a result may show and group by (data/DICTIONARY.md): coded values,
yes/no flags, periods no finer than a quarter, and the service and area (the relations are
already limited to what the viewer may see)."""

DENIED: dict[str, str] = {
    "case_id": "a pseudonymous reference",
    "client_key": "a pseudonymous reference",
    "referral_id": "a pseudonymous reference",
    "service_client_key": "a pseudonymous reference",
    "perpetrator_key": "a pseudonymous reference",
    "linkage_key": "a pseudonymous reference",
    "record_key": "a record key used to perturb counts",
    "referral_date": "an exact date",
    "intake_date": "an exact date",
    "exit_date": "an exact date",
    "meeting_date": "an exact date",
    "previous_meeting_date": "an exact date",
    "previous_same_perpetrator_date": "an exact date",
    "dash_score": "a free number",
    "abuse_months": "a free number",
    "children_in_household": "a free number",
    "days_supported": "a free number",
    "days_since_previous": "a free number",
    "adult_female_population": "a free number",
}
"""Fields that single out records: they may filter rows and be counted, never be shown or
grouped by. Any field not on ALLOWED_KEYS is refused the same way; these are named so the
refusal can say why, and so a field added later (like `record_key`) is denied by name."""

NEVER_NAMED = frozenset({"record_key"})
"""Fields a workbench query may not mention anywhere: selecting rows by their record key
would let a query undo the cell key perturbation."""

VALUE_AGGREGATES = frozenset({
    "min", "max", "first", "last", "any_value", "arbitrary", "arg_max", "arg_min",
    "arg_max_null", "arg_min_null", "arg_max_nulls_last", "arg_min_nulls_last", "argmax",
    "argmin", "max_by", "min_by", "mode", "median", "quantile", "quantile_cont",
    "quantile_disc", "approx_quantile", "reservoir_quantile", "string_agg", "listagg",
    "group_concat", "list", "array_agg", "histogram", "histogram_exact", "approx_top_k",
    "bitstring_agg", "lttb", "variant_group_object", "bit_and", "bit_or", "bit_xor",
})
"""Aggregates that return values taken from the records themselves."""

RULE_COUNTS = ("the workbench returns only grouping fields and plain counts (count(*), "
               "count(col), with or without FILTER), with rates declared as a count over a "
               "base")


class Unsafe(ValueError):
    """A query the disclosure model refuses; the message is one plain sentence."""


@dataclass
class Shape:
    """What a safe query returns, by output position: grouping keys and counts."""

    sql: str
    """The SQL to run: sqlglot's own rendering of the tree that was checked."""
    keys: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


@cache
def _schema() -> dict[str, dict[str, str]]:
    columns = db.relation_columns(settings.get().schema_path.read_text(encoding="utf-8"))
    return {r: {c: "TEXT" for c in columns.get(r, ())} for r in RELATIONS}


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, exp.AggFunc) or (
        isinstance(node, exp.Func) and function_name(node) in db.aggregate_functions())


def _label(node: exp.Expression) -> str:
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    return node.sql(dialect="duckdb").lower()


def _denial(column: str) -> str | None:
    if column in DENIED:
        return f"{column} is {DENIED[column]}"
    return None


def check(sql: str) -> Shape:
    """Refuse anything but a safe grouped count over the scoped relations; return the SQL
    to run and which output columns are keys and which are counts."""
    tree = _parse(sql)
    shape = _check_tree(tree)
    # What runs is sqlglot's rendering of the checked tree; read back, it must pass again,
    # so the text DuckDB parses is the query that was checked.
    again = _check_tree(_parse(shape.sql))
    if again.sql != shape.sql or again.keys != shape.keys or again.counts != shape.counts:
        raise Unsafe("The query could not be checked reliably: write it more plainly.")
    return shape


def _parse(sql: str) -> exp.Expression:
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise Unsafe("Type a SELECT query.")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except SqlglotError as exc:
        raise Unsafe(f"The SQL does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise Unsafe("One statement at a time: the workbench runs a single SELECT.")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = tree.key.upper() if tree.key else type(tree).__name__
        raise Unsafe(f"Only SELECT queries run here ({kind} is not allowed): the workbench "
                     "cannot change, attach, copy, export or configure anything.")
    return tree


def _check_tree(tree: exp.Expression) -> Shape:
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.Pragma | exp.Set | exp.Attach | exp.Copy
                      | exp.Insert | exp.Update | exp.Delete | exp.Create | exp.Drop
                      | exp.Alter):
            raise Unsafe(f"{node.key.upper()} is not allowed in the workbench.")
        if isinstance(node, exp.Func) and FORBIDDEN_FUNCTIONS.match(function_name(node)):
            raise Unsafe(f"The function {function_name(node)}() is not allowed: the "
                         "workbench reads only the dashboard's own relations.")
        if isinstance(node, exp.Column | exp.Identifier) and node.name.lower() in NEVER_NAMED:
            raise Unsafe(f"Column '{node.name}' is refused: it is {DENIED[node.name.lower()]} "
                         "and may not be named in a workbench query.")
    escape = relation_escape(tree)
    if escape:
        raise Unsafe(f"Refused: {escape.message}.")
    if not isinstance(tree, exp.Select):
        raise Unsafe("The outer query must be one SELECT (no UNION, INTERSECT or EXCEPT): "
                     "combine groups with CASE on a grouping field instead.")
    with_ = tree.args.get("with") or tree.args.get("with_")
    if with_ is not None and with_.args.get("recursive"):
        raise Unsafe("WITH RECURSIVE is not allowed in the workbench.")
    _check_outer_names(tree)
    try:
        qualified = qualify(tree.copy(), schema=_schema(), dialect="duckdb",
                            validate_qualify_columns=True, quote_identifiers=False)
    except SqlglotError as exc:
        raise Unsafe(f"The query's columns could not be resolved: "
                     f"{str(exc).splitlines()[0]}") from None
    return _shape(tree, qualified)


def _check_outer_names(outer: exp.Select) -> None:
    """GROUP BY and ORDER BY names that DuckDB would bind to a source column while the
    alias of the same name says something else (`select 'x' as case_id ... group by
    case_id` groups by the real case_id): refused before anything else is read."""
    aliases = {p.alias.lower(): p.this for p in outer.expressions if isinstance(p, exp.Alias)}
    group = outer.args.get("group")
    order = outer.args.get("order")
    items = [("GROUP BY", e) for e in (group.expressions if group else [])]
    items += [("ORDER BY", o.this) for o in (order.expressions if order else [])]
    for clause, item in items:
        for col in item.find_all(exp.Column):
            name = col.name.lower()
            if _denial(name):
                raise Unsafe(f"{clause} {col.name} is refused: {_denial(name)}, and "
                             f"{RULE_COUNTS}.")
            target = aliases.get(name)
            if col.table or target is None:
                continue
            if any(_is_aggregate(n) for n in target.walk()):
                if clause == "ORDER BY":
                    raise Unsafe("ORDER BY a count is refused: the order would rank hidden "
                                 "small counts; order by a grouping field.")
                continue
            if name in _column_names(outer) and not (
                    isinstance(target, exp.Column) and target.name.lower() == name):
                raise Unsafe(f"'{col.name}' is both an output name and a column: group and "
                             "order by the column itself or by position.")


def _column_names(outer: exp.Select) -> set[str]:
    """Every column name a source of the query could offer: the scoped relations' columns
    and the output names of every inner SELECT (CTEs, subqueries)."""
    names = {c.lower() for cols in _schema().values() for c in cols}
    for select in outer.find_all(exp.Select):
        if select is not outer:
            names |= {p.alias_or_name.lower() for p in select.expressions}
    for cte in outer.find_all(exp.CTE):
        names |= {c.name.lower() for c in cte.args["alias"].columns} \
            if cte.args.get("alias") is not None else set()
    return names


def _shape(original: exp.Select, q: exp.Select) -> Shape:
    outer = q
    if outer.args.get("distinct"):
        raise Unsafe("SELECT DISTINCT is not allowed on the outer query: it would merge rows "
                     "whose counts are equal.")
    if q.args.get("qualify"):
        raise Unsafe("QUALIFY is not allowed: window functions are not available in the "
                     "workbench.")
    group = outer.args.get("group")
    if group is not None and (any(group.args.get(k) for k in ("rollup", "cube",
                                                              "grouping_sets"))
                              or group.find(exp.Rollup, exp.Cube, exp.GroupingSets)):
        raise Unsafe("ROLLUP, CUBE and GROUPING SETS are not allowed: subtotals beside their "
                     "parts let a hidden cell be worked out.")
    _check_whole_rows(q)
    for node in q.walk():
        if isinstance(node, exp.Window):
            raise Unsafe(f"The window function {node.this.sql(dialect='duckdb').lower()} is "
                         "not allowed: it puts a group's figures on each record.")
    projections = list(outer.expressions)
    names = [_label(p) for p in original.expressions]
    if len(names) != len(projections):  # a star in the outer select was expanded
        names = [_label(p) for p in projections]
    shape = Shape(sql=original.sql(dialect="duckdb"), names=names)
    counted: set[int] = set()
    for i, p in enumerate(projections):
        count = _plain_count(p)
        if count is not None:
            counted.add(id(count))
            shape.counts.append(i)
    for node in q.walk():
        if _is_aggregate(node) and id(node) not in counted:
            raise Unsafe(_aggregate_refusal(node, q, projections, names))
    for i, p in enumerate(projections):
        if i in shape.counts:
            continue
        problem = _key_problem(p.this if isinstance(p, exp.Alias) else p, outer)
        if problem:
            raise Unsafe(f"Column '{names[i]}' is refused: {problem}, and {RULE_COUNTS}.")
        shape.keys.append(i)
    if not shape.counts:
        raise Unsafe("The workbench returns counts by group: add count(*) (and GROUP BY the "
                     "fields to count by), never one row per record.")
    if group is not None:
        for item in group.expressions:
            if isinstance(item, exp.Literal) and not item.is_string:
                continue
            problem = _key_problem(item, outer)
            if problem:
                raise Unsafe(f"GROUP BY {item.sql(dialect='duckdb').lower()} is refused: "
                             f"{problem}; group only by fields on the workbench's list.")
    order = outer.args.get("order")
    if order is not None:
        count_names = {projections[i].alias_or_name.lower() for i in shape.counts}
        for o in order.expressions:
            item = o.this
            if isinstance(item, exp.Literal) and not item.is_string:
                if int(item.name) - 1 in shape.counts:
                    raise Unsafe("ORDER BY a count is refused: the order would rank hidden "
                                 "small counts; order by a grouping field.")
                continue
            if isinstance(item, exp.Column) and not item.table and \
                    item.name.lower() in count_names:
                raise Unsafe("ORDER BY a count is refused: the order would rank hidden small "
                             "counts; order by a grouping field.")
            problem = _key_problem(item, outer)
            if problem:
                raise Unsafe(f"ORDER BY {item.sql(dialect='duckdb').lower()} is refused: "
                             f"{problem}.")
    return shape


def _check_whole_rows(q: exp.Select) -> None:
    """No reference to a whole record (`to_json(c)`, `c::varchar`, `c.*`, COLUMNS(...)):
    a record as text carries every field, the denied ones and the record key included."""
    aliases = {t.alias_or_name.lower() for t in q.find_all(exp.Table, exp.Subquery)}
    aliases |= {c.alias_or_name.lower() for c in q.find_all(exp.CTE)}
    for node in q.walk():
        if isinstance(node, exp.TableColumn) or isinstance(node, exp.Column) and (
                isinstance(node.this, exp.Star)
                or (not node.table and node.name.lower() in aliases)):
            raise Unsafe(f"'{node.sql(dialect='duckdb').lower()}' is refused: a whole record "
                         "cannot be used in the workbench; name the fields you need.")
        if isinstance(node, exp.Func) and function_name(node) in ("columns", "unpack"):
            raise Unsafe("COLUMNS(...) is refused: name the fields you need.")
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count | exp.Select):
            raise Unsafe("* is refused inside an expression: name the fields you need.")


def _plain_count(p: exp.Expression) -> exp.Count | None:
    """The count itself when a projection is exactly count(...) [FILTER (WHERE ...)]."""
    node = p.this if isinstance(p, exp.Alias) else p
    if isinstance(node, exp.Filter):
        node = node.this
    if isinstance(node, exp.Anonymous) and function_name(node) == "count_star" \
            and not node.expressions:
        return node
    return node if isinstance(node, exp.Count) else None


def _aggregate_refusal(node: exp.Expression, outer: exp.Select, projections,
                       names) -> str:
    fname = function_name(node)
    holder = next((i for i, p in enumerate(projections)
                   if any(n is node for n in p.walk())), None)
    where = f"Column '{names[holder]}'" if holder is not None else f"{fname}()"
    if fname not in ("count", "count_star"):
        if fname in VALUE_AGGREGATES:
            return (f"{where} is refused: {fname}() returns values from the records "
                    f"themselves, and {RULE_COUNTS}.")
        return f"{where} is refused: {fname}() is not a count, and {RULE_COUNTS}."
    select = node.find_ancestor(exp.Select)
    if select is not outer:
        return (f"{where} is refused: aggregates run only in the outer SELECT, so that no "
                "count can feed a condition or another part of the query.")
    if holder is not None:
        return (f"{where} is refused: it computes on a count (arithmetic, a cast, text, a "
                f"comparison, a list or a struct), and {RULE_COUNTS}.")
    return (f"{where} is refused: a condition or ordering on a count would reveal it; "
            f"{RULE_COUNTS}.")


def _key_problem(expr: exp.Expression, select: exp.Select, depth: int = 0) -> str | None:
    """Why `expr` is not a grouping key built from allowed fields, or None if it is."""
    if depth > 32:
        return "it is nested too deeply to check"
    for node in expr.walk():
        if isinstance(node, exp.Query | exp.Subquery) and node is not expr:
            return "a subquery cannot be a grouping field"
        if isinstance(node, exp.Star):
            return "* cannot be a grouping field"
        if _is_aggregate(node):
            return "it is built on an aggregate"
    for col in expr.find_all(exp.Column):
        problem = _column_problem(col, select, depth)
        if problem:
            return problem
    return None


def _column_problem(col: exp.Column, select: exp.Select, depth: int) -> str | None:
    name = col.name.lower()
    source, owner = _source(col, select)
    if source is None:
        if _denial(name):
            return _denial(name)
        return f"the workbench cannot tell where {col.name} comes from"
    if isinstance(source, str):  # a scoped relation
        if _denial(name):
            return _denial(name)
        if name not in ALLOWED_KEYS.get(source, ()):
            return (f"{col.name} is not one of the grouping fields the workbench allows for "
                    f"{source}")
        return None
    if isinstance(source, _OwnAlias):
        return _key_problem(source.expr, owner, depth + 1)
    if isinstance(source, exp.Values):
        return _column_problem_values(source)
    return _derived_problem(source, name, depth)


def _derived_problem(query: exp.Expression, name: str, depth: int) -> str | None:
    """A column of a CTE or subquery: its defining expression must itself be a key."""
    if isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.SetOperation):
        left = _derived_problem(query.left, name, depth + 1)
        if left:
            return left
        position = _position(query.left, name)
        right = query.right.unnest() if isinstance(query.right, exp.Subquery) else query.right
        if position is None:
            return f"the workbench cannot tell where {name} comes from"
        return _derived_at(right, position, depth + 1)
    if isinstance(query, exp.Values):
        return _column_problem_values(query)
    if not isinstance(query, exp.Select):
        return f"the workbench cannot tell where {name} comes from"
    for p in query.expressions:
        if p.alias_or_name.lower() == name:
            return _key_problem(p.this if isinstance(p, exp.Alias) else p, query, depth + 1)
    return f"the workbench cannot tell where {name} comes from"


def _column_problem_values(values: exp.Values) -> str | None:
    for node in values.walk():
        if isinstance(node, exp.Column | exp.Query | exp.Subquery) or _is_aggregate(node):
            return "a VALUES list may hold only constants"
    return None


def _position(query: exp.Expression, name: str) -> int | None:
    if isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.SetOperation):
        return _position(query.left, name)
    if isinstance(query, exp.Select):
        for i, p in enumerate(query.expressions):
            if p.alias_or_name.lower() == name:
                return i
    return None


def _derived_at(query: exp.Expression, position: int, depth: int) -> str | None:
    if isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.SetOperation):
        return (_derived_at(query.left, position, depth + 1)
                or _derived_at(query.right, position, depth + 1))
    if isinstance(query, exp.Select) and position < len(query.expressions):
        p = query.expressions[position]
        return _key_problem(p.this if isinstance(p, exp.Alias) else p, query, depth + 1)
    return "the workbench cannot tell where a union's column comes from"


@dataclass(frozen=True)
class _OwnAlias:
    """A column that names an output alias of the same SELECT (ORDER BY n, GROUP BY g)."""

    expr: exp.Expression


def _source(col: exp.Column, select: exp.Select):
    """Where a qualified column comes from: a scoped relation's name, a VALUES list, or the
    query (CTE or subquery) that defines it; searching outwards for correlated columns."""
    scope: exp.Expression | None = select
    while scope is not None:
        if isinstance(scope, exp.Select):
            found = _from_sources(scope).get(col.table.lower()) if col.table else None
            if found is not None:
                return found, scope
            if not col.table:
                for p in scope.expressions:  # a reference to the select's own alias
                    if isinstance(p, exp.Alias) and p.alias.lower() == col.name.lower():
                        return _OwnAlias(p.this), scope
        scope = scope.parent
    return None, None


def _from_sources(select: exp.Select) -> dict[str, object]:
    out: dict[str, object] = {}
    items = []
    if select.args.get("from") or select.args.get("from_"):
        items.append((select.args.get("from") or select.args.get("from_")).this)
    items += [j.this for j in select.args.get("joins") or []]
    for item in items:
        alias = item.alias_or_name.lower()
        if isinstance(item, exp.Table):
            cte = _cte(select, item.name.lower())
            out[alias] = cte if cte is not None else item.name.lower()
        elif isinstance(item, exp.Subquery):
            out[alias] = item.this
        elif isinstance(item, exp.Values):
            out[alias] = item
    return out


def _cte(node: exp.Expression, name: str) -> exp.Expression | None:
    """The nearest enclosing WITH's definition of `name`, if any."""
    current: exp.Expression | None = node
    while current is not None:
        with_ = current.args.get("with") or current.args.get("with_") \
            if isinstance(current, exp.Query) else None
        if with_ is not None:
            for cte in with_.expressions:
                if cte.alias_or_name.lower() == name:
                    return cte.this
        current = current.parent
    return None
