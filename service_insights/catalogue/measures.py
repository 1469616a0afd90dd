"""One definition per headline measure, read from data/measures.yaml (issue 15).

A manager quoting the dashboard must get the same number for the same label wherever it
appears: before this registry, "Families known to children's social care" had one base on
Home, Compare, the pack and the CSV and another on Findings. Now each measure is defined
once (label, numerator, denominator, exclusions and the SQL conditions for each), and:

- a query file names the measure's SQL instead of copying it
  (`{{measure.high_risk.numerator}}`, expanded at catalogue load by
  catalogue/measure_sql.py), so the definition here is the one every page runs;
- a query file that shows a measure declares it in its header (`measure:`, column to
  measure id); the catalogue refuses an unknown id and gives the column the measure's
  label, so the same label never names two definitions;
- tests/test_measures.py checks every declaring file's figures against this definition,
  computed independently with Polars, for a fixed selection, and that every place the
  label appears declares the measure;
- findings print the comparator's figure for the measure (`compute`), worked out from
  this definition through the same results.run path (perturbation, suppression);
- DICTIONARY.md lists each measure with its definition (checked by the same test).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from service_insights.catalogue import datafile
from service_insights.settings import ROOT

DEFAULT_PATH = ROOT / "data" / "measures.yaml"
RELATIONS = ("cases", "marac_referrals")
_KEYS = {"label", "relation", "period_field", "numerator", "numerator_sql", "denominator",
         "denominator_sql", "exclusions", "national"}
_KEYS |= {"value", "value_sql", "quantile", "interpolation"}  # quantile measures (waits)
_REQUIRED = {"label", "relation", "period_field", "numerator", "numerator_sql", "exclusions"}
_REQUIRED_QUANTILE = {"label", "relation", "period_field", "value", "value_sql", "quantile",
                      "denominator", "denominator_sql", "exclusions"}
INTERPOLATIONS = {"continuous": "quantile_cont", "discrete": "quantile_disc"}
"""How a quantile is read off the sorted values: `continuous` interpolates between the two
middle values (DuckDB's median), `discrete` is the smallest value with at least that share
of values at or below it (an observed value; used for the 90th percentile)."""


class MeasureError(ValueError):
    pass


@dataclass(frozen=True)
class Measure:
    id: str
    label: str
    relation: str
    period_field: str
    exclusions: str
    numerator: str = ""
    numerator_sql: str = ""
    denominator: str = ""
    denominator_sql: str = ""
    national: str = ""
    """A key of data/reference.yaml with the national figure, for the national comparator."""
    value: str = ""
    value_sql: str = ""
    quantile: float | None = None
    """A quantile measure (a median wait, the 90th-percentile wait): the quantile of
    `value_sql` over the denominator's rows, read as `interpolation` says."""
    interpolation: str = "continuous"

    @property
    def is_quantile(self) -> bool:
        return self.quantile is not None

    @property
    def is_rate(self) -> bool:
        return bool(self.denominator_sql) and not self.is_quantile

    def statistic_sql(self) -> str:
        """The quantile aggregate, over the denominator's rows only."""
        fn = INTERPOLATIONS[self.interpolation]
        value, base = " ".join(self.value_sql.split()), " ".join(self.denominator_sql.split())
        return f"{fn}(({value}), {self.quantile}) filter (where ({base}))"

    def query_text(self) -> str:
        """The measure as a one-row query file (header and SQL) over the scoped relations:
        the definition in runnable form, so it goes through results.run like any chart."""
        where = f"{self.period_field} between $period_start and $period_end"
        if self.is_quantile:
            header = (f"y: [value]\nmeasures:\n  value: denominator\n"
                      f"quantiles:\n  value: {self.quantile}\n")
            select = (f"count(*) filter (where {self.denominator_sql}) as denominator,\n"
                      f"    {self.statistic_sql()} as value")
        elif self.is_rate:
            num = f"({self.denominator_sql}) and ({self.numerator_sql})"
            header = ("y: [value]\nrates:\n  value: {count: numerator, base: denominator}\n")
            select = (f"count(*) filter (where {num}) as numerator,\n"
                      f"    count(*) filter (where {self.denominator_sql}) as denominator,\n"
                      f"    round(100.0 * count(*) filter (where {num})\n"
                      f"          / nullif(count(*) filter (where {self.denominator_sql}), 0), 1)"
                      " as value")
        else:
            header = "y: [value]\ncounts: [value]\n"
            select = f"count(*) filter (where {self.numerator_sql}) as value"
        figures = sorted(set(re.findall(r"\$([a-z_][a-z0-9_]*)",
                                        " ".join((self.numerator_sql, self.denominator_sql,
                                                  self.value_sql)))))
        params = ", ".join(["period_start", "period_end", *figures])
        return (f"/*---\ntitle: {self.label!r}\ndescription: {(self.numerator or self.value)!r}\n"
                f"page: measures\nchart: kpi\n{header}benchmark: false\n"
                f"params: [{params}]\n---*/\n"
                f"select\n    {select}\nfrom {self.relation}\nwhere {where}\n")


def path() -> Path:
    return Path(os.environ.get("SI_MEASURES_FILE", DEFAULT_PATH))


def _parse(data: dict, p: Path) -> dict[str, Measure]:
    out: dict[str, Measure] = {}
    for key, item in data.items():
        if not isinstance(item, dict):
            raise MeasureError(f"{p}: measure '{key}' must be a block of keys")
        unknown = set(item) - _KEYS
        missing = (_REQUIRED_QUANTILE if "quantile" in item else _REQUIRED) - set(item)
        if unknown or missing:
            raise MeasureError(f"{p}: measure '{key}' has unknown keys {sorted(unknown)} "
                               f"or lacks {sorted(missing)}")
        if item["relation"] not in RELATIONS:
            raise MeasureError(f"{p}: measure '{key}' reads {item['relation']!r}; use one of "
                               f"{', '.join(RELATIONS)}")
        fields = {k: str(v) for k, v in item.items() if k != "quantile"}
        if "quantile" in item:
            q = item["quantile"]
            if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
                raise MeasureError(f"{p}: measure '{key}' has quantile {q!r}; use a number "
                                   "between 0 and 1, such as 0.5 for a median")
            if fields.get("interpolation", "continuous") not in INTERPOLATIONS:
                raise MeasureError(f"{p}: measure '{key}' has interpolation "
                                   f"{fields['interpolation']!r}; use "
                                   f"{' or '.join(INTERPOLATIONS)}")
            fields["quantile"] = float(q)
        elif set(item) & {"value", "value_sql", "interpolation"}:
            raise MeasureError(f"{p}: measure '{key}' has a value but no quantile")
        out[str(key)] = Measure(id=str(key), **fields)
    return out


def load() -> dict[str, Measure]:
    """Every measure by id; re-read when the file changes. A malformed entry is named."""
    return datafile.load(path(), "measures", _parse, MeasureError)


def get(measure_id: str) -> Measure:
    found = load().get(measure_id)
    if found is None:
        raise MeasureError(f"unknown measure {measure_id!r}; data/measures.yaml defines "
                           f"{', '.join(load())}")
    return found


def spec(measure_id: str):
    """The measure's own query, parsed like any query file (catalog.parse)."""
    return _parsed(get(measure_id).query_text(), f"data/measures.yaml#{measure_id}")


@functools.lru_cache(maxsize=256)
def _parsed(text: str, rel: str):
    # Parsing and the relation check cost ~25 ms a measure, and every finding asked for
    # its comparator's figure parsed it again; keyed by the text, an edited definition is
    # parsed afresh.
    from service_insights.catalogue import catalog

    return catalog.parse(text, rel)


def compute(store, measure_id: str, scope, period, settings, audience=None):
    """The measure for `scope` and `period` as `audience` sees it (a ChartResult whose
    `value` column is the figure; perturbed unless the audience holds the records)."""
    from service_insights.catalogue import results

    return results.run(store, spec(measure_id), scope, period, settings,
                       audience or results.EVERYONE)


DICTIONARY_START = "<!-- measures: generated from data/measures.yaml; tests check it -->"
DICTIONARY_END = "<!-- end of measures -->"


def dictionary_section() -> str:
    """The "Measures" section of data/DICTIONARY.md, from the registry, so the dictionary
    cannot drift from the definitions the dashboard uses (tests/test_measures.py)."""
    lines = [DICTIONARY_START, "## Measures (one definition each)", "",
             "Every headline measure is defined once, in `data/measures.yaml`; each chart, "
             "KPI, finding and export that shows it declares it (`measure:` in the query "
             "header) and is checked against this definition. Rates are 100 x numerator / "
             "denominator, from perturbed counts where the figure spans other services. A "
             "quantile measure (a median wait) is that quantile of a value over the "
             "denominator's cases; for such measures the numerator column gives the value.",
             "",
             "The SQL below is not copied into query files: a file names it, "
             "`count(*) filter (where {{measure.high_risk.numerator}})` and "
             "`{{measure.high_risk.denominator}}`, and the catalogue puts the definition in "
             "when it reads the file (catalogue/measure_sql.py), so changing a definition here "
             "changes every page, finding and export that shows it. A rate's numerator is "
             "counted within its denominator. A file that spells a registered condition by "
             "hand fails tests/test_measure_sql.py.", "",
             "| id | label | numerator | denominator | excluded | SQL (numerator; denominator) |",
             "|---|---|---|---|---|---|"]
    for m in load().values():
        if m.is_quantile:
            lines.append(f"| `{m.id}` | {m.label} | {m.value} | {m.denominator} | "
                         f"{m.exclusions} | `{m.statistic_sql()}` on `{m.relation}`, by "
                         f"`{m.period_field}` |")
            continue
        sql = f"`{m.numerator_sql}`" + (f"; `{m.denominator_sql}`" if m.is_rate else "")
        lines.append(f"| `{m.id}` | {m.label} | {m.numerator} | "
                     f"{m.denominator or '(a count)'} | {m.exclusions} | "
                     f"{sql} on `{m.relation}`, by `{m.period_field}` |")
    lines += ["", DICTIONARY_END]
    return "\n".join(lines)
