"""Measure references in query SQL: `{{measure.<id>.numerator}}` and
`{{measure.<id>.denominator}}` expand to the conditions data/measures.yaml defines.

Why: a measure's definition used to be copied into every query file that showed it
(Home's headline figures, the annual series, the Compare funnels, the findings), and a
test checked the copies agreed. Now the SQL condition lives once, in data/measures.yaml,
and a query file names it; changing the definition there changes every KPI, chart,
finding and export that shows the measure (tests/test_measures.py proves it).

Expansion happens when the catalogue reads a file, before anything else looks at the SQL:
the parameter check, the one-SELECT check, the scope (relations) check and the keying
rewrite all see the expanded text, so a reference cannot smuggle anything past them, and
the SQL that runs is the SQL that was checked. A reference to an unknown measure or part
is refused with the file and line. Each expansion is one parenthesised line, so the
file's line numbers (in DuckDB's errors) are unchanged.

- `numerator` is the condition a row must meet to be counted in the numerator. For a rate
  it is the numerator's condition within the denominator's, so
  `count(*) filter (where {{measure.x.numerator}})` is never more than the base.
- `denominator` is the base's condition (a rate, or the cases a quantile is taken over).
- `value` (a quantile measure only) is the value whose quantile is taken, and
  `statistic` the whole aggregate, `quantile_cont((days_to_intake), 0.5) filter (where
  ...)`: the quantile, how it is read and the cases it is over are part of the definition.

- `label` is the measure's label as a SQL string literal, for a chart that names several
  measures in a column (the annual series of headline measures), so the name a reader
  sees is the registry's too.

Period and relation are not part of the expansion: a query picks its own period (a
selected period, five financial years) on the relation the measure names.
"""

from __future__ import annotations

import re

from service_insights.catalogue import measures as _registry

PARTS = ("numerator", "denominator", "label")
QUANTILE_PARTS = ("value", "statistic", "denominator", "label")
_ANY = re.compile(r"\{\{(.*?)\}\}", re.S)
_REF = re.compile(r"^\s*measure\.([A-Za-z0-9_]+)\.([A-Za-z_]+)\s*$")


class MeasureRefError(ValueError):
    """A bad reference: `offset` is the 0-based line within the SQL it was found on."""

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset
        self.message = message


def condition(m: _registry.Measure, part: str) -> str:
    """The SQL for one part of a measure, parenthesised, on one line."""
    num, den = _one_line(m.numerator_sql), _one_line(m.denominator_sql)
    if part == "label":
        return "'" + m.label.replace("'", "''") + "'"
    if part == "value":
        return f"({_one_line(m.value_sql)})"
    if part == "statistic":
        return f"({m.statistic_sql()})"
    if part == "numerator":
        if m.is_rate and den.lower() != "true":
            return f"(({den}) and ({num}))"
        return f"({num})"
    return f"({den})"


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


def references(sql: str) -> set[tuple[str, str]]:
    """(measure id, part) of each well-formed reference in `sql`."""
    out = set()
    for found in _ANY.finditer(sql):
        ref = _REF.match(found.group(1))
        if ref:
            out.add((ref.group(1), ref.group(2)))
    return out


def expand(sql: str) -> str:
    """`sql` with every `{{measure.<id>.<part>}}` replaced by its SQL. Raises
    MeasureRefError naming the line for a malformed or unknown reference, or when
    data/measures.yaml itself cannot be read."""
    if "{{" not in sql:
        return sql
    try:
        known = _registry.load()
    except _registry.MeasureError as exc:
        raise MeasureRefError(sql[:sql.index("{{")].count("\n"), str(exc)) from None

    def one(found: re.Match) -> str:
        offset = sql[:found.start()].count("\n")
        ref = _REF.match(found.group(1))
        if ref is None:
            raise MeasureRefError(offset, f"'{{{{{found.group(1).strip()}}}}}' is not a "
                                          "measure reference; write {{measure.<id>.numerator}}"
                                          " or {{measure.<id>.denominator}}")
        mid, part = ref.groups()
        m = known.get(mid)
        if m is None:
            raise MeasureRefError(offset, f"'{mid}' is not a measure in data/measures.yaml "
                                          f"(it has {', '.join(known)})")
        parts = QUANTILE_PARTS if m.is_quantile else PARTS
        if part not in parts:
            raise MeasureRefError(offset, f"measure '{mid}' has no part '{part}'; use "
                                          f"{', '.join(parts)}")
        if part == "denominator" and not m.denominator_sql:
            raise MeasureRefError(offset, f"measure '{mid}' is a count and has no "
                                          "denominator")
        return condition(m, part)

    return _ANY.sub(one, sql)
