"""The cell-key pass: a query file's SQL rewritten so each count comes with its cell key.

The cell key method (protection/cellkey.py) needs, for every count a chart shows, the
sum of the record keys of the records it counts. A query file's counts come from
arbitrary SQL (`count(*)`, `count(*) filter (where ...)`, `count(col)` after a left
join, `sum(cases) over ()` as a base), so the key cannot be worked out afterwards from
the result. Instead the SQL is rewritten (parsed with sqlglot) so that ONE run returns,
beside every count column, a sibling column `<name>__cell_key` holding the sum of the
counted records' keys:

- `count(*) filter (where c)` over rows of a record relation becomes
  `sum(r.record_key) filter (where c)`; `count(x)` becomes
  `sum(r.record_key) filter (where x is not null)`, `r` being the relation `x` comes from;
- a row-level select from a record relation carries `record_key` along, so a CTE that
  picks a few columns of `cases` still lets a later count reach the keys;
- columns built linearly from keyed counts (a plain reference, a cast, `coalesce(n, 0)`,
  `a + b`, `a - b`, `sum(n)` as an aggregate or a window such as `sum(cases) over ()`)
  get the same expression over the keys, so a base that is the total of a chart's bars
  has the total's key without a second query.

Every column is classified: KEYED (a count with its key), TAINTED (derived from record
counts but not a linear count, e.g. a rate, `count(distinct ...)`, `count(*) + 1`), RECORD
(another value of the records, e.g. a median) or PLAIN (no record in it, e.g. a
population). A count that is TAINTED or RECORD cannot be perturbed, so it is never shown
to a viewer who needs perturbation (results.py withholds it and says so).

`record_key` exists only in the keyed relations (store.cases_keyed and
store.marac_referrals_keyed) that this pass reads instead of main.cases and
main.marac_referrals: an analyst's query or the workbench never sees it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

RECORD_KEY = "record_key"
SUFFIX = "__cell_key"
RECORD_RELATIONS = frozenset({"cases", "marac_referrals"})


class _Kind:
    PLAIN, RECORD, TAINTED = "plain", "record", "tainted"


@dataclass
class _Value:
    kind: str
    key: exp.Expression | None = None  # set for KEYED values

    @property
    def keyed(self) -> bool:
        return self.key is not None


PLAIN = _Value(_Kind.PLAIN)
RECORD = _Value(_Kind.RECORD)
TAINTED = _Value(_Kind.TAINTED)


@dataclass
class _Rel:
    """What the rewrite knows about a relation's columns."""

    from_records: bool = False
    has_key: bool = False
    keyed: set[str] = field(default_factory=set)
    tainted: set[str] = field(default_factory=set)
    plain: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Keying:
    sql: str
    """The rewritten query (without the scope prefix)."""
    keys: dict[str, str]
    """Output column -> the column holding its cell-key sum."""
    kinds: dict[str, str]
    """Output column -> plain, record or tainted (for columns without a key)."""
    problem: str = ""
    """Why the query could not be rewritten at all (then nothing is keyed)."""
    decimals: dict[str, int] = field(default_factory=dict)
    """Output column -> the places its SQL rounds it to (a top-level round())."""
    scales_with: dict[str, str] = field(default_factory=dict)
    """Output column -> the one keyed count it is proportional to (only multiplied or
    divided by other figures, e.g. 10000 * referrals / population): when that count is
    perturbed, the column is scaled with it rather than giving the true count away."""

    def kind(self, column: str) -> str:
        if column in self.keys:
            return "keyed"
        return self.kinds.get(column, _Kind.TAINTED)


def _name(e: exp.Expression) -> str:
    return e.alias_or_name


def _combine(values: list[_Value]) -> _Value:
    if any(v.keyed or v.kind == _Kind.TAINTED for v in values):
        return TAINTED
    if any(v.kind == _Kind.RECORD for v in values):
        return RECORD
    return PLAIN


class _Select:
    """One SELECT's sources, for resolving columns and finding whose key a count sums."""

    def __init__(self, sources: dict[str, _Rel], nullable: set[str], rewriter: _Rewriter):
        self.sources = sources
        self.nullable = nullable
        self.rewriter = rewriter

    @property
    def from_records(self) -> bool:
        return any(r.from_records for r in self.sources.values())

    def keyed_sources(self) -> list[str]:
        return [a for a, r in self.sources.items() if r.has_key]

    def resolve(self, col: exp.Column) -> tuple[str | None, _Rel | None]:
        table = col.table
        if table:
            return table, self.sources.get(table)
        name = col.name
        hits = [(a, r) for a, r in self.sources.items()
                if name in r.keyed or name in r.tainted or (name == RECORD_KEY and r.has_key)]
        if len(hits) == 1:
            return hits[0]
        if len(self.sources) == 1:
            return next(iter(self.sources.items()))
        return None, None

    def column(self, col: exp.Column) -> _Value:
        alias, rel = self.resolve(col)
        if rel is None:
            return RECORD if self.from_records else PLAIN
        name = col.name
        if name in rel.keyed:
            return _Value("keyed", exp.column(name + SUFFIX, table=col.table or None))
        if name in rel.tainted or name == RECORD_KEY:
            return TAINTED
        if name in rel.plain:
            return PLAIN
        return RECORD if rel.from_records else PLAIN


_LINEAR_AGG = (exp.Sum,)
_VALUE_AGG = (exp.Min, exp.Max, exp.AnyValue, exp.First, exp.Last)


def _value(e: exp.Expression, sel: _Select, aggregate: bool) -> _Value:
    """Classify `e` (a projection of `sel`) and build its key expression if it is a count."""
    if isinstance(e, exp.Alias):
        return _value(e.this, sel, aggregate)
    if isinstance(e, exp.Column):
        return sel.column(e)
    if isinstance(e, (exp.Literal, exp.Parameter, exp.Placeholder, exp.Null, exp.Boolean)):
        return PLAIN
    if isinstance(e, exp.Paren):
        v = _value(e.this, sel, aggregate)
        return _Value("keyed", exp.Paren(this=v.key)) if v.keyed else v
    if isinstance(e, exp.Filter) and isinstance(e.this, exp.AggFunc):
        return _aggregate(e.this, sel, e.expression.this)
    if isinstance(e, exp.AggFunc) and not isinstance(e.parent, exp.Window):
        return _aggregate(e, sel, None)
    if isinstance(e, exp.Window):
        inner = e.this
        if isinstance(inner, exp.Sum) and not isinstance(inner.this, exp.Distinct):
            v = _value(inner.this, sel, aggregate)
            if v.keyed:
                w = e.copy()
                w.set("this", exp.Sum(this=v.key))
                return _Value("keyed", w)
            if v.kind == _Kind.PLAIN and sel.from_records:
                return RECORD
            return v
        args = [_value(a, sel, aggregate) for a in inner.iter_expressions()]
        v = _combine(args)
        return RECORD if v.kind == _Kind.PLAIN and sel.from_records else v
    if isinstance(e, exp.Cast):
        v = _value(e.this, sel, aggregate)
        if v.keyed:
            if e.to.is_type(*exp.DataType.INTEGER_TYPES, *exp.DataType.REAL_TYPES):
                c = e.copy()
                c.set("this", v.key)
                return _Value("keyed", c)
            return TAINTED
        return v
    if isinstance(e, (exp.Add, exp.Sub)):
        a, b = _value(e.this, sel, aggregate), _value(e.expression, sel, aggregate)
        if a.keyed and b.keyed:
            return _Value("keyed", type(e)(this=a.key, expression=b.key))
        return _combine([a, b])
    if isinstance(e, exp.Coalesce):
        first = _value(e.this, sel, aggregate)
        rest = list(e.expressions)
        zero = len(rest) == 1 and isinstance(rest[0], exp.Literal) and rest[0].this == "0"
        if first.keyed and zero:
            return _Value("keyed", exp.Coalesce(this=first.key,
                                                expressions=[exp.Literal.number(0)]))
        return _combine([first, *(_value(r, sel, aggregate) for r in rest)])
    if isinstance(e, exp.Subquery) and isinstance(e.this, exp.Select) \
            and len(e.this.expressions) == 1:
        # A scalar subquery such as (select count(*) from cases): its own key pass.
        inner = e.this.copy()
        _, values = sel.rewriter.query(inner, top=True)
        v = next(iter(values.values()), TAINTED)
        if v.keyed:
            inner.set("expressions", [v.key])
            return _Value("keyed", exp.Subquery(this=inner))
        return v
    if isinstance(e, (exp.Subquery, exp.Query)):
        return TAINTED if sel.from_records or _mentions_records(e) else PLAIN
    children = [c for c in e.iter_expressions() if not isinstance(c, exp.DataType)]
    return _combine([_value(c, sel, aggregate) for c in children])


def _mentions_records(e: exp.Expression) -> bool:
    return any(t.name in RECORD_RELATIONS for t in e.find_all(exp.Table))


def _aggregate(agg: exp.AggFunc, sel: _Select, condition: exp.Expression | None) -> _Value:
    if isinstance(agg, exp.Count):
        return _count(agg, sel, condition)
    args = [_value(a, sel, True) for a in agg.iter_expressions()]
    cond = _value(condition, sel, True) if condition is not None else PLAIN
    if (isinstance(agg, _LINEAR_AGG) and len(args) == 1 and args[0].keyed
            and not cond.keyed and cond.kind != _Kind.TAINTED):
        key = exp.Sum(this=args[0].key)
        if condition is not None:
            key = exp.Filter(this=key, expression=exp.Where(this=condition.copy()))
        return _Value("keyed", key)
    v = _combine([*args, cond])
    if v.kind == _Kind.PLAIN and sel.from_records and not isinstance(agg, _VALUE_AGG):
        return RECORD  # sum(1), avg(...) over records: a disguised count or a record value
    return v


def _count(agg: exp.Count, sel: _Select, condition: exp.Expression | None) -> _Value:
    arg = agg.this
    if isinstance(arg, exp.Distinct):
        return TAINTED if sel.from_records else PLAIN
    cond_value = _value(condition, sel, True) if condition is not None else PLAIN
    if cond_value.keyed or cond_value.kind == _Kind.TAINTED:
        return TAINTED
    if arg is None or isinstance(arg, exp.Star):
        keyed = sel.keyed_sources()
        if len(keyed) != 1 or keyed[0] in sel.nullable:
            return TAINTED if sel.from_records else PLAIN
        alias, extra = keyed[0], None
    else:
        columns = list(arg.find_all(exp.Column))
        owners = {sel.resolve(c)[0] for c in columns}
        if not isinstance(arg, exp.Column) or len(owners) != 1 or None in owners:
            return TAINTED if sel.from_records else PLAIN
        alias = owners.pop()
        rel = sel.sources.get(alias)
        if rel is None or not rel.has_key:
            return TAINTED if sel.from_records else PLAIN
        extra = exp.Not(this=exp.Is(this=arg.copy(), expression=exp.Null()))
    key = exp.Sum(this=exp.column(RECORD_KEY, table=alias))
    parts = [p for p in (condition.copy() if condition is not None else None, extra) if p]
    if not parts:
        return _Value("keyed", key)
    where = parts[0] if len(parts) == 1 else exp.and_(*(exp.Paren(this=p) for p in parts))
    return _Value("keyed", exp.Filter(this=key, expression=exp.Where(this=where)))


def _is_aggregate(select: exp.Select) -> bool:
    if select.args.get("group"):
        return True
    for proj in select.expressions:
        for node in proj.find_all(exp.AggFunc):
            if not isinstance(node.parent, exp.Window) and not _inside_subquery(node, proj):
                return True
    return False


def _inside_subquery(node: exp.Expression, top: exp.Expression) -> bool:
    p = node.parent
    while p is not None and p is not top:
        if isinstance(p, (exp.Subquery, exp.Query)):
            return True
        p = p.parent
    return False


class _Unsafe(Exception):
    """The query could see whole rows of a keyed relation (and so the record keys)."""


def _hide_key(star: exp.Star) -> None:
    """`*` over a keyed relation must not hand `record_key` to the analyst's SQL."""
    hidden = list(star.args.get("except_") or [])
    if not any(c.name == RECORD_KEY for c in hidden):
        star.set("except_", [*hidden, exp.column(RECORD_KEY)])


class _Rewriter:
    def __init__(self):
        self.env: list[dict[str, _Rel]] = [{}]
        self.top_ctes: dict[str, _Rel] = {}
        """What is known about each WITH query of the top-level query, by name."""

    def lookup(self, name: str) -> _Rel | None:
        for scope in reversed(self.env):
            if name in scope:
                return scope[name]
        return None

    def query(self, q: exp.Expression, top: bool = False) -> tuple[_Rel, dict[str, _Value]]:
        """Rewrite `q` in place; its relation facts and (for the top) each output's value."""
        with_ = q.args.get("with_") or q.args.get("with")
        self.env.append({})
        try:
            if with_:
                for cte in with_.expressions:
                    rel, _ = self.query(cte.this)
                    self.env[-1][cte.alias_or_name] = rel
                    if len(self.env) == 2:
                        self.top_ctes[cte.alias_or_name] = rel
            if isinstance(q, exp.Select):
                return self.select(q, top)
            if isinstance(q, exp.Union) and q.args.get("distinct") is False:
                return self.union(q, top)
            if isinstance(q, exp.Subquery):
                return self.query(q.this, top)
            # Other set operations: nothing is keyed, counts in them are tainted.
            rel = _Rel(from_records=_mentions_records(q))
            return rel, {}
        finally:
            self.env.pop()

    def _branches(self, q: exp.Expression) -> list[exp.Select] | None:
        if isinstance(q, exp.Union) and q.args.get("distinct") is False:
            left, right = self._branches(q.this), self._branches(q.expression)
            return None if left is None or right is None else left + right
        if isinstance(q, exp.Subquery):
            return self._branches(q.this)
        return [q] if isinstance(q, exp.Select) and not q.args.get("with_") else None

    def union(self, q: exp.Union, top: bool) -> tuple[_Rel, dict[str, _Value]]:
        branches = self._branches(q)
        if not branches:
            return _Rel(from_records=_mentions_records(q)), {}
        plans = [self.plan(b) for b in branches]
        names = [_name(p) for p in branches[0].expressions]
        rel = _Rel(from_records=any(p[0].from_records for p in plans))
        values: dict[str, _Value] = {}
        star = any(isinstance(p, exp.Star) for b in branches for p in b.expressions)
        if star or any(len(b.expressions) != len(names) for b in branches):
            for n in names:
                values[n] = TAINTED if rel.from_records else PLAIN
            rel.tainted |= {n for n, v in values.items() if v.kind == _Kind.TAINTED}
            return rel, values
        additions: list[list[exp.Expression]] = [[] for _ in branches]
        for i, n in enumerate(names):
            vs = [p[2][i] for p in plans]
            if all(v.keyed for v in vs):
                values[n] = vs[0]
                for j, v in enumerate(vs):
                    additions[j].append(exp.alias_(v.key, n + SUFFIX))
                rel.keyed.add(n)
            else:
                values[n] = _combine(vs)
                if values[n].kind == _Kind.TAINTED:
                    rel.tainted.add(n)
                elif values[n].kind == _Kind.PLAIN:
                    rel.plain.add(n)
        if not top and all(p[3] is not None for p in plans):
            for j, p in enumerate(plans):
                additions[j].append(p[3])
            rel.has_key = True
        for b, add in zip(branches, additions, strict=True):
            b.set("expressions", [*b.expressions, *add])
        return rel, values

    def plan(self, select: exp.Select):
        """The sources, each projection's value, and the record_key projection to add
        (None when this select cannot carry keys at row level)."""
        sources: dict[str, _Rel] = {}
        nullable: set[str] = set()
        from_ = select.args.get("from_") or select.args.get("from")
        items = [from_.this] if from_ else []
        joins = select.args.get("joins") or []
        for item in items + [j.this for j in joins]:
            alias, rel = self.source(item)
            sources[alias] = rel
        for j in joins:
            side = (j.args.get("side") or "").upper()
            alias = j.this.alias_or_name
            if side in ("LEFT", "FULL"):
                nullable.add(alias)
            if side in ("RIGHT", "FULL"):
                nullable |= set(sources) - {alias}
        sel = _Select(sources, nullable, self)
        # A keyed relation's alias used as a value packs its whole row, record_key
        # included (to_json(c), list(c)): such a query gets no key pass at all.
        for col in select.find_all(exp.Column):
            src = sources.get(col.name) if not col.table else None
            if src is not None and (src.has_key or src.keyed):
                raise _Unsafe(col.name)
        aggregate = _is_aggregate(select)
        values = [_value(p, sel, aggregate) for p in select.expressions]
        key_proj = None
        keyed = sel.keyed_sources()
        if not aggregate and not select.args.get("distinct") and len(keyed) == 1:
            key_proj = exp.alias_(exp.column(RECORD_KEY, table=keyed[0]), RECORD_KEY)
        return sel, aggregate, values, key_proj

    def source(self, item: exp.Expression) -> tuple[str, _Rel]:
        alias = item.alias_or_name
        if isinstance(item, exp.Table):
            rel = self.lookup(item.name) if not item.db else None
            if rel is None:
                records = item.name in RECORD_RELATIONS
                rel = _Rel(from_records=records, has_key=records and not item.db)
            return alias, rel
        if isinstance(item, exp.Subquery):
            rel, _ = self.query(item.this)
            return alias, rel
        return alias, _Rel(from_records=_mentions_records(item))

    def select(self, select: exp.Select, top: bool) -> tuple[_Rel, dict[str, _Value]]:
        sel, aggregate, values, key_proj = self.plan(select)
        rel = _Rel(from_records=sel.from_records)
        out: dict[str, _Value] = {}
        additions: list[exp.Expression] = []
        distinct = bool(select.args.get("distinct"))
        names = {_name(p) for p in select.expressions}
        for proj, v in zip(select.expressions, values, strict=True):
            if isinstance(proj, exp.Star) or (isinstance(proj, exp.Column)
                                              and isinstance(proj.this, exp.Star)):
                table = proj.table if isinstance(proj, exp.Column) else ""
                star = proj if isinstance(proj, exp.Star) else proj.this
                if any(src.has_key for alias, src in sel.sources.items()
                       if not table or alias == table):
                    _hide_key(star)  # and carried on below, explicitly, if needed
                for alias, src in sel.sources.items():
                    if table and alias != table:
                        continue
                    rel.keyed |= src.keyed
                    rel.tainted |= src.tainted
                    rel.plain |= src.plain
                    for k in src.keyed:
                        out[k] = _Value("keyed", exp.column(k + SUFFIX))
                    for t in src.tainted:
                        out[t] = TAINTED
                continue
            n = _name(proj)
            if v.keyed and not distinct and n + SUFFIX not in names:
                additions.append(exp.alias_(v.key, n + SUFFIX))
                rel.keyed.add(n)
                out[n] = v
            else:
                out[n] = TAINTED if v.keyed else v
                if out[n].kind == _Kind.TAINTED:
                    rel.tainted.add(n)
                elif out[n].kind == _Kind.PLAIN:
                    rel.plain.add(n)
        if key_proj is not None and not top and not rel.has_key and RECORD_KEY not in names:
            additions.append(key_proj)
            rel.has_key = True
        if additions:
            select.set("expressions", [*select.expressions, *additions])
        return rel, out


def _refused(tree: exp.Expression) -> bool:
    return (any(i.name.lower() == RECORD_KEY or i.name.lower().endswith(SUFFIX)
                for i in tree.find_all(exp.Identifier))
            or any(True for _ in tree.find_all(exp.Columns))
            or not all(_plain_star(star) for star in tree.find_all(exp.Star)))


_REFUSED = (f"the query names {RECORD_KEY} or a key column, or uses COLUMNS() or * inside "
            "an expression, which the cell-key pass does not allow")

PERTURB_FUNCTION = "si_perturbed_count"
"""The DuckDB function (results.py registers it) that adds the ptable's noise to a count
given its record-key sum and the ptable's path: si_perturbed_count(count, key_sum, path)."""

PTABLE_PARAM = "si_ptable"
"""The bound parameter holding the ptable's path in a judged query."""


@dataclass(frozen=True)
class Judged:
    sql: str
    """The query with every count of the WITH queries it judges perturbed in place."""
    problem: str = ""
    inputs: tuple[str, ...] = ()
    """The WITH queries whose counts were perturbed."""


@functools.lru_cache(maxsize=128)
def judged(sql: str) -> Judged:
    """A finding rule's SQL with its counts perturbed *before* the rule judges them.

    A rule counts records in WITH queries and judges the counts in its outer SELECT
    (`where wilson_lower(k, n) > $threshold`). Perturbing the rule's output afterwards
    is not enough: whether a row appears at all would still follow the exact counts, and
    tell a viewer who sees only perturbed figures which side of the threshold the exact
    ones fall. So each WITH query the outer SELECT reads that counts records has every
    keyed count replaced, in place, by the count plus its cell-key noise (the same ptable
    lookup as a chart's, run inside DuckDB by PERTURB_FUNCTION); a count the pass cannot
    key becomes NULL. The outer SELECT then judges, words and orders exactly the numbers
    the viewer will see. The outer SELECT may read records only through such WITH
    queries."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        return Judged(sql, f"the query could not be parsed for the cell-key pass: {exc}")
    if _refused(tree):
        return Judged(sql, _REFUSED)
    with_ = tree.args.get("with_") or tree.args.get("with")
    if not isinstance(tree, exp.Select) or with_ is None:
        return Judged(sql, "it must count records in a WITH query and judge the counts in "
                           "one outer SELECT")
    outer = tree.copy()
    outer.set("with_", None)
    outer.set("with", None)
    names = {cte.alias_or_name for cte in with_.expressions}
    read = {t.name for t in outer.find_all(exp.Table) if not t.db}
    if any(t.db for t in outer.find_all(exp.Table)) or (read - names) & RECORD_RELATIONS:
        return Judged(sql, "its outer SELECT reads records directly, not through a WITH "
                           "query that counts them")
    rewriter = _Rewriter()
    try:
        rewriter.query(tree, top=True)
    except _Unsafe as exc:
        return Judged(sql, f"the query uses the whole row of '{exc}' as a value, which the "
                           "cell-key pass does not allow")
    except Exception as exc:  # noqa: BLE001 - an unusual shape is not judged at all
        return Judged(sql, f"the query's shape is not one the cell-key pass knows "
                           f"({type(exc).__name__})")
    with_ = tree.args.get("with_") or tree.args.get("with")
    inputs = []
    for cte in with_.expressions:
        name = cte.alias_or_name
        rel = rewriter.top_ctes.get(name)
        if name not in read or rel is None or not rel.from_records:
            continue
        select = cte.this
        if rel.has_key or not isinstance(select, exp.Select) or not _is_aggregate(select):
            return Judged(sql, f"the WITH query '{name}' that the outer SELECT reads must "
                               "count records (one row per group), not list them")
        keys = {p.alias_or_name.removesuffix(SUFFIX): p.this for p in select.expressions
                if isinstance(p, exp.Alias) and p.alias_or_name.endswith(SUFFIX)}
        projections = []
        for p in select.expressions:
            n = p.alias_or_name
            if n.endswith(SUFFIX) or isinstance(p, exp.Star):
                projections.append(p)
                continue
            body = p.this if isinstance(p, exp.Alias) else p
            if n in keys:
                body = exp.Anonymous(this=PERTURB_FUNCTION, expressions=[
                    exp.cast(body.copy(), "BIGINT"), exp.cast(keys[n].copy(), "BIGINT"),
                    exp.Parameter(this=exp.var(PTABLE_PARAM))])
            elif n in rel.tainted:
                body = exp.cast(exp.Null(), "BIGINT")
            else:
                projections.append(p)
                continue
            projections.append(exp.alias_(body, n))
        select.set("expressions", projections)
        inputs.append(name)
    if not inputs:
        return Judged(sql, "its outer SELECT reads no WITH query that counts records")
    return Judged(tree.sql(dialect="duckdb"), "", tuple(inputs))


@functools.lru_cache(maxsize=512)
def rewrite(sql: str) -> Keying:
    """The keyed form of a query file's SQL body (cached by its text)."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        return Keying(sql, {}, {}, f"the query could not be parsed for the cell-key pass: {exc}")
    if _refused(tree):
        return Keying(sql, {}, {}, _REFUSED)
    try:
        _, values = _Rewriter().query(tree, top=True)
    except _Unsafe as exc:
        return Keying(sql, {}, {}, f"the query uses the whole row of '{exc}' as a value, "
                                   "which the cell-key pass does not allow")
    except Exception as exc:  # noqa: BLE001 - an unusual shape leaves counts unkeyed
        return Keying(sql, {}, {}, f"the query's shape is not one the cell-key pass knows "
                                   f"({type(exc).__name__})")
    keys = {n: n + SUFFIX for n, v in values.items() if v.keyed}
    kinds = {n: v.kind for n, v in values.items() if not v.keyed}
    decimals, scales = {}, {}
    if isinstance(tree, exp.Select):
        for proj in tree.expressions:
            body = proj.this if isinstance(proj, exp.Alias) else proj
            name = _name(proj)
            inner = body.this if isinstance(body, exp.Cast) else body
            if isinstance(inner, exp.Round):
                places = inner.args.get("decimals")
                if places is None or isinstance(places, exp.Literal):
                    decimals[name] = int(places.this) if places is not None else 0
            count = _proportional_to(body, set(keys))
            if count and name not in keys:
                scales[name] = count
    return Keying(tree.sql(dialect="duckdb"), keys, kinds, "", decimals, scales)


def _plain_star(star: exp.Star) -> bool:
    """`*` as a projection (`select *`, `select t.*`) or in count(*), nowhere else: inside
    an expression it would hand whole rows, keys included, to the analyst's SQL."""
    parent = star.parent
    if isinstance(parent, exp.Column):
        parent = parent.parent
    return isinstance(parent, (exp.Select, exp.Count))


def _proportional_to(e: exp.Expression, counts: set[str]) -> str | None:
    """The one count `e` is a multiple of, or None (it uses none, several, or uses one in
    any way but multiplying or dividing by it as a numerator)."""
    refs = [c for c in e.find_all(exp.Column) if c.name in counts]
    if len(refs) != 1:
        return None
    node = refs[0]
    while node is not e:
        parent = node.parent
        if isinstance(parent, exp.Div) and node is not parent.this:
            return None
        if not isinstance(parent, (exp.Mul, exp.Div, exp.Round, exp.Cast, exp.Paren)):
            return None
        node = parent
    return refs[0].name
