"""The query catalogue: every chart is one .sql file under queries/, described by a header.

The header is YAML inside a leading `/*--- ... ---*/` block comment, so the file stays
plain DuckDB SQL. Parsing is strict, because a chart that silently shows the wrong thing
is worse than one that says what is wrong: unknown keys, missing keys, bad values and
undeclared parameters are errors that name the file and line, and a broken file breaks
only its own chart. Files are re-read when they change, so an analyst's new file shows up
without a restart.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from service_insights.catalogue import measures as _registry
from service_insights.catalogue import reference
from service_insights.catalogue.scope import SCOPE_PARAMS, check_relations
from service_insights.store import db

CHART_TYPES = ("bar", "grouped_bar", "stacked_bar", "line", "kpi", "table", "funnel", "finding")
QUERY_PARAMS = frozenset({"period_start", "period_end", "trend_start"})
"""Parameters a query may declare: the selected period, and the start of the trend
window (two years before the period ends) for charts that show change over time. Any
reference figure in data/reference.yaml (e.g. $marac_repeat_low) may be used as well."""
FINDING_KEYS = ("subject", "message", "recommendation", "evidence", "confidence")
"""A finding's header: whom the row is about (a column), the message (a template filled
from the row's columns, like "{pct_known}%"), what to do, the evidence for doing it, and
the rate whose interval and base say how confident the finding is."""
FINDING_OPTIONAL_KEYS = ("compare", "title")
"""`compare`: the rate set against the comparator's figure in the message, when it is not
the `confidence` rate (whole-family support: confident in the social care share, but the
point is the offer: "8.2% against 40.1% at other Idva services"). `title`: the finding's
heading, a template filled from the row like the message, for a rule whose rows say
different things (complex needs: "engage less" or "have their risk reduced less often",
not two cards headed alike); the file's title when absent."""
REFERENCE_KEYS = ("line", "band", "points")

REQUIRED_KEYS = ("title", "description", "page", "chart")
OPTIONAL_KEYS = (
    "order", "x", "y", "series", "unit", "x_label", "y_label", "labels", "counts", "rates",
    "measures", "params", "benchmark", "source", "notes", "x_order", "series_order", "finding",
    "reference", "applies_to", "measure", "lookback",
)
OPTIONAL_KEYS += ("quantiles",)  # issue 15: which measures are quantiles (see _quantiles)
_HEADER_START = re.compile(r"^\s*/\*---\s*$")
_HEADER_END = re.compile(r"^\s*---\*/\s*$")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_STRIP = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.S)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class QueryError:
    """What is wrong with a query file, and where: shown in place of its chart."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}: {self.message}"


class QueryFileError(Exception):
    def __init__(self, error: QueryError):
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Rate:
    count: str
    base: str


@dataclass(frozen=True)
class QuerySpec:
    id: str
    path: str
    sql: str
    body_line: int
    """File line where the SQL after the header starts, to map DuckDB's errors back."""
    digest: str
    title: str
    description: str
    page: str
    chart: str
    order: int = 100
    x: str | None = None
    y: tuple[str, ...] = ()
    series: str | None = None
    unit: str = ""
    x_label: str | None = None
    y_label: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    counts: tuple[str, ...] = ()
    rates: dict[str, Rate] = field(default_factory=dict)
    measures: dict[str, str] = field(default_factory=dict)
    params: tuple[str, ...] = ()
    benchmark: bool = True
    source: str = ""
    notes: str = ""
    x_order: tuple[str, ...] = ()
    series_order: tuple[str, ...] = ()
    finding: dict[str, str] | None = None
    reference: dict | None = None
    """Reference figures to draw: a horizontal `line`, an expected `band` [low, high], or
    `points` for x categories, each naming a key of data/reference.yaml."""
    key_lines: dict[str, int] = field(default_factory=dict)
    quantiles: dict[str, float | tuple[str, dict[str, float]]] = field(default_factory=dict)
    """Measures that are quantiles (a median, a 90th percentile): the quantile, or the
    column whose value names it on each row with each value's quantile. Disclosure
    control needs enough cases on each side of a quantile (disclosure.quantile_base)."""
    measure_ids: dict[str, str] = field(default_factory=dict)
    """Column to the id of the measure in data/measures.yaml it shows (header `measure:`);
    the column takes the measure's label (catalogue/measures.py)."""
    lookback: str = ""
    """`marac`: the chart is a Marac repeat rate whose 12-month look-back is checked and
    flagged (catalogue/lookback.py)."""

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(c for c in (self.x, self.series) if c)

    def declared_columns(self) -> dict[str, str]:
        """Every column the header names, with the header key that names it."""
        cols: dict[str, str] = {}
        for key in ("x", "series"):
            if getattr(self, key):
                cols[getattr(self, key)] = key
        for c in self.y:
            cols.setdefault(c, "y")
        for c in self.counts:
            cols.setdefault(c, "counts")
        for r, spec in self.rates.items():
            cols.setdefault(r, "rates")
            cols.setdefault(spec.count, "rates")
            cols.setdefault(spec.base, "rates")
        for m, base in self.measures.items():
            cols.setdefault(m, "measures")
            cols.setdefault(base, "measures")
        return cols

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.key_lines.get("__header__", 1))

    def label(self, column: str) -> str:
        return self.labels.get(column) or column.replace("_", " ").capitalize()


def query_id(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _split_header(text: str, rel: str) -> tuple[str, int, int, str]:
    """Return (yaml text, line of the first yaml line, line where SQL starts, sql)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise QueryFileError(QueryError(rel, 1, "the file is empty"))
    if not _HEADER_START.match(lines[start]):
        raise QueryFileError(QueryError(
            rel, start + 1, "the file must open with a header block: a line '/*---', "
            "YAML keys, then a line '---*/' (see queries/README.md)"))
    end = next((i for i in range(start + 1, len(lines)) if _HEADER_END.match(lines[i])), None)
    if end is None:
        raise QueryFileError(QueryError(rel, start + 1, "the header opened with '/*---' "
                                        "is never closed with a line '---*/'"))
    return "\n".join(lines[start + 1:end]), start + 2, end + 2, "\n".join(lines[end + 1:])


def _str(value, key, line, rel) -> str:
    if not isinstance(value, str) or not value.strip():
        raise QueryFileError(QueryError(rel, line, f"'{key}' must be a non-empty text"))
    return value.strip()


def _column(value, key, line, rel) -> str:
    value = _str(value, key, line, rel)
    if not _NAME.match(value):
        raise QueryFileError(QueryError(rel, line, f"'{key}': {value!r} is not a column name "
                                        "(lowercase letters, digits and _)"))
    return value


def _columns(value, key, line, rel) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(_column(v, key, line, rel) for v in items)


def used_params(sql: str) -> set[str]:
    """The $names a SQL text uses, ignoring comments and quoted strings."""
    return set(_PARAM.findall(_STRIP.sub(" ", sql)))


class _Header:
    """A parsed header with the file line of each key, so every complaint names its line."""

    def __init__(self, text: str, rel: str):
        header_text, self.line, self.body_line, self.sql = _split_header(text, rel)
        self.rel = rel
        try:
            node = yaml.compose(header_text)
            data = yaml.safe_load(header_text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
            line = self.line + (mark.line if mark else 0)
            raise QueryFileError(QueryError(rel, line, f"the header is not valid YAML: "
                                            f"{getattr(exc, 'problem', exc)}")) from exc
        if not isinstance(data, dict):
            raise QueryFileError(QueryError(rel, self.line, "the header must be YAML keys "
                                            "like 'title: ...'"))
        self.data = data
        self.lines = {"__header__": self.line - 1}
        for key_node, _ in node.value:
            self.lines[str(key_node.value)] = self.line + key_node.start_mark.line

    def ln(self, key: str) -> int:
        return self.lines.get(key, self.line)

    def fail(self, key: str, message: str) -> QueryFileError:
        return QueryFileError(QueryError(self.rel, self.ln(key), message))

    def text(self, key: str) -> str:
        return _str(self.data[key], key, self.ln(key), self.rel)

    def column(self, key: str) -> str | None:
        return _column(self.data[key], key, self.ln(key), self.rel) if key in self.data else None

    def columns(self, key: str) -> tuple[str, ...]:
        return _columns(self.data[key], key, self.ln(key), self.rel) if key in self.data else ()


def parse(text: str, rel: str) -> QuerySpec:
    """Parse one query file's text; `rel` is its id-path for messages (queries/x/y.sql).

    Read top to bottom: the header's keys, what is drawn and where, the columns and what
    disclosure control must know of each, whether the chart type has what it needs, the
    parameters, and that the SQL is one SELECT."""
    h = _Header(text, rel)
    _expand_measures(h)
    _check_keys(h)
    chart, page, order = _placement(h)
    x, series, y, counts = h.column("x"), h.column("series"), h.columns("y"), h.columns("counts")
    rates, measures = _rates(h), _measures(h)
    _check_chart_needs(h, chart, y, counts, rates, measures)
    quantiles = _quantiles(h, measures)
    params = _params(h)
    _check_one_select(h)
    _check_scope(h)
    benchmark, labels = _display_options(h)
    measure_ids = _measure_ids(h, y, counts, rates, measures, quantiles)
    labels = {**labels, **{c: _registry.get(m).label for c, m in measure_ids.items()}}
    data = h.data
    return QuerySpec(
        id=rel.removeprefix("queries/").removesuffix(".sql"),
        path=rel,
        sql=h.sql,
        body_line=h.body_line,
        digest=hashlib.sha256((text + "\0" + h.sql).encode()).hexdigest()[:16],
        title=h.text("title"),
        description=h.text("description"),
        page=page,
        chart=chart,
        order=order,
        x=x,
        y=y,
        series=series,
        unit=str(data.get("unit") or ""),
        x_label=data.get("x_label"),
        y_label=data.get("y_label"),
        labels={str(k): str(v) for k, v in labels.items()},
        counts=counts,
        rates=rates,
        measures=measures,
        params=params,
        benchmark=benchmark,
        source=str(data.get("source") or ""),
        notes=str(data.get("notes") or ""),
        x_order=tuple(str(v) for v in data.get("x_order") or ()),
        series_order=tuple(str(v) for v in data.get("series_order") or ()),
        finding=_finding(data, rel, h.ln, chart, counts, rates, measures),
        reference=_reference(data.get("reference"), rel, h.ln("reference"), chart),
        key_lines=h.lines,
        quantiles=quantiles,
        measure_ids=measure_ids,
        lookback=_lookback(h),
    )


def _expand_measures(h: _Header) -> None:
    """Replace `{{measure.<id>.numerator}}` / `.denominator` in the SQL with the condition
    data/measures.yaml defines (catalogue/measure_sql.py), before every other check, so
    the checks, the keying rewrite and the run all see the one definition."""
    from service_insights.catalogue import measure_sql

    try:
        h.sql = measure_sql.expand(h.sql)
    except measure_sql.MeasureRefError as exc:
        raise QueryFileError(QueryError(h.rel, h.body_line + exc.offset, exc.message)) from None


def _measure_ids(h: _Header, y, counts, rates, measures=None, quantiles=None) -> dict[str, str]:
    """`measure: <id>` (for the one y column) or `measure: {column: id}`: each id a
    measure of data/measures.yaml, each column a declared count or rate (or, for a
    quantile measure, a measure column declared with the same quantile)."""
    raw = h.data.get("measure")
    if raw is None:
        return {}
    if isinstance(raw, str):
        if len(y) != 1:
            raise h.fail("measure", "'measure: <id>' names the one y column's measure; with "
                                    "several, map each column: {column: id}")
        raw = {y[0]: raw}
    if not isinstance(raw, dict):
        raise h.fail("measure", "'measure' is a measure id or {column: id}")
    try:
        known = _registry.load()
    except _registry.MeasureError as exc:
        raise h.fail("measure", str(exc)) from None
    out = {}
    for col, mid in raw.items():
        col = _column(col, "measure", h.ln("measure"), h.rel)
        if mid not in known:
            raise h.fail("measure", f"'{mid}' is not a measure in data/measures.yaml (it has "
                                    f"{', '.join(known)})")
        if known[mid].is_quantile:
            if (quantiles or {}).get(col) != known[mid].quantile or col not in (measures or {}):
                raise h.fail("measure", f"'{mid}' is the {known[mid].quantile} quantile: "
                                        f"declare column '{col}' under 'measures' and under "
                                        f"'quantiles' as {known[mid].quantile}")
            out[col] = str(mid)
            continue
        if col not in counts and col not in rates:
            raise h.fail("measure", f"column '{col}' must be declared under 'counts' or "
                                    "'rates' to show a measure")
        if known[mid].is_rate != (col in rates):
            raise h.fail("measure", f"'{mid}' is a {'rate' if known[mid].is_rate else 'count'}"
                                    f" but column '{col}' is not")
        out[col] = str(mid)
    return out


def _lookback(h: _Header) -> str:
    from service_insights.catalogue.lookback import KINDS

    value = h.data.get("lookback")
    if value is None:
        return ""
    if value not in KINDS:
        raise h.fail("lookback", f"'lookback' is {' or '.join(KINDS)} (found: {value!r})")
    return str(value)


def _check_keys(h: _Header) -> None:
    """Every key is known (a typo is not silently ignored) and the required ones are there."""
    known = set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
    for key in h.data:
        if key not in known:
            raise h.fail(str(key), f"unknown header key '{key}'; known keys are "
                                   f"{', '.join(sorted(known))}")
    for key in REQUIRED_KEYS:
        if key not in h.data:
            raise QueryFileError(QueryError(h.rel, h.line - 1,
                                            f"the header is missing the required key '{key}'"))


def _placement(h: _Header) -> tuple[str, str, int]:
    """The chart type, the page it is drawn on, and its order there."""
    chart = h.text("chart")
    if chart not in CHART_TYPES:
        raise h.fail("chart", f"chart '{chart}' is not one of {', '.join(CHART_TYPES)}")
    page = h.text("page")
    if not all(_SEGMENT.match(p) for p in page.split("/")):
        raise h.fail("page", f"page {page!r} should be a page name like 'overview' or "
                             "'children'")
    order = h.data.get("order", 100)
    if not isinstance(order, int) or isinstance(order, bool):
        raise h.fail("order", "'order' must be a whole number")
    return chart, page, order


def _rates(h: _Header) -> dict[str, Rate]:
    """Each rate column with the count and base it is computed from."""
    raw = h.data.get("rates") or {}
    if not isinstance(raw, dict):
        raise h.fail("rates", "'rates' maps each rate column to "
                              "{count: <column>, base: <column>}")
    rates: dict[str, Rate] = {}
    line = h.ln("rates")
    for name, spec in raw.items():
        if not isinstance(spec, dict) or set(spec) != {"count", "base"}:
            raise h.fail("rates", f"rate '{name}' needs exactly 'count' and 'base' columns")
        rates[_column(name, "rates", line, h.rel)] = Rate(
            _column(spec["count"], "rates", line, h.rel),
            _column(spec["base"], "rates", line, h.rel))
    return rates


def _measures(h: _Header) -> dict[str, str]:
    """Each measure column (an average, a median) with the base column it rests on."""
    raw = h.data.get("measures") or {}
    if not isinstance(raw, dict):
        raise h.fail("measures", "'measures' maps each measure column (an average, a median) "
                                 "to its base column")
    line = h.ln("measures")
    return {_column(name, "measures", line, h.rel): _column(base, "measures", line, h.rel)
            for name, base in raw.items()}


def _quantiles(h: _Header, measures: dict[str, str]) -> dict:
    """`quantiles: {median_days: 0.5}` or, for one column holding several statistics,
    `quantiles: {days: {by: statistic, values: {Median: 0.5, 90th percentile: 0.9}}}`.
    Each must be a declared measure: its base is what the quantile rule judges."""
    raw = h.data.get("quantiles") or {}
    if not isinstance(raw, dict):
        raise h.fail("quantiles", "'quantiles' maps each quantile measure to its quantile "
                                  "(0.5 for a median) or to {by: <column>, values: {...}}")
    line = h.ln("quantiles")

    def q_of(name, value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise h.fail("quantiles", f"quantile for '{name}' must be a number between 0 "
                                      "and 1, such as 0.5 for a median")
        return float(value)

    out: dict = {}
    for name, value in raw.items():
        col = _column(name, "quantiles", line, h.rel)
        if col not in measures:
            raise h.fail("quantiles", f"'{col}' must also be declared under 'measures' "
                                      "with its base")
        if isinstance(value, dict):
            if set(value) != {"by", "values"} or not isinstance(value["values"], dict):
                raise h.fail("quantiles", f"'{col}' needs exactly 'by' and 'values'")
            out[col] = (_column(value["by"], "quantiles", line, h.rel),
                        {str(k): q_of(col, v) for k, v in value["values"].items()})
        else:
            out[col] = q_of(col, value)
    return out


_CHART_NEEDS = {"bar": ("x", "y"), "grouped_bar": ("x", "y", "series"),
                "stacked_bar": ("x", "y", "series"), "line": ("x", "y"), "kpi": ("y",),
                "table": (), "funnel": ("x", "y"), "finding": ("finding",)}


def _check_chart_needs(h: _Header, chart: str, y, counts, rates, measures) -> None:
    """The chart type has the columns it draws, and every drawn value is declared as a
    count, rate or measure, so disclosure control knows what to check."""
    for key in _CHART_NEEDS[chart]:
        if key not in h.data:
            raise h.fail("chart", f"a {chart} chart needs '{key}'")
    if chart not in ("kpi", "table", "finding") and len(y) != 1:
        raise h.fail("y", f"a {chart} chart takes one 'y' column")
    for col in y:
        if col not in counts and col not in rates and col not in measures:
            raise h.fail("y", f"y column '{col}' must be declared under 'counts', 'rates' or "
                              "'measures' so that disclosure control can check it")


def _params(h: _Header) -> tuple[str, ...]:
    """The declared parameters: each one known, none reserved for the data layer's scope,
    and exactly the set the SQL uses."""
    params = tuple(h.data.get("params") or ())
    allowed = QUERY_PARAMS | reference.names()
    for p in params:
        if p not in allowed:
            raise h.fail("params", f"unknown parameter '{p}'; queries may use "
                                   f"{', '.join(sorted(QUERY_PARAMS))} or a figure in "
                                   f"{reference.path().name}")
    used = used_params(h.sql)
    reserved = used & SCOPE_PARAMS
    if reserved:
        raise QueryFileError(QueryError(h.rel, h.body_line, f"${sorted(reserved)[0]} is set by "
                                        "the data layer; queries read the scoped relations "
                                        "(cases, marac_referrals, ...) instead"))
    if used != set(params):
        missing, extra = sorted(used - set(params)), sorted(set(params) - used)
        what = (f"the SQL uses ${', $'.join(missing)} but 'params' does not declare it"
                if missing else f"'params' declares {', '.join(extra)} but the SQL never uses it")
        raise QueryFileError(QueryError(h.rel, h.ln("params") if "params" in h.data
                                        else h.body_line, what))
    return params


def _check_one_select(h: _Header) -> None:
    """The SQL parses (DuckDB's own parser) and is exactly one SELECT."""
    try:
        kinds = db.statement_types(h.sql)
    except db.QueryFailed as exc:
        raise QueryFileError(QueryError(h.rel, h.body_line,
                                        f"the SQL does not parse: {exc.detail}")) from None
    if kinds != ["SELECT"]:
        raise QueryFileError(QueryError(h.rel, h.body_line, "a query file holds exactly one "
                                        f"SELECT statement (found: {', '.join(kinds) or 'none'})"))


def _check_scope(h: _Header) -> None:
    """The SQL reads only the scoped relations (cases, marac_referrals, services, areas),
    its own CTEs and VALUES lists: never main.cases, a table function or a file, which
    would reach past the viewer's scope. Such a file is refused and its chart not run."""
    escape = check_relations(h.sql)
    if escape:
        raise QueryFileError(QueryError(h.rel, h.body_line + escape.line - 1, escape.message))


def _display_options(h: _Header) -> tuple[bool, dict]:
    benchmark = h.data.get("benchmark", True)
    if not isinstance(benchmark, bool):
        raise h.fail("benchmark", "'benchmark' is true or false")
    labels = h.data.get("labels") or {}
    if not isinstance(labels, dict):
        raise h.fail("labels", "'labels' maps columns to labels")
    return benchmark, labels


def _finding(data: dict, rel: str, ln, chart: str, counts, rates, measures) -> dict | None:
    raw = data.get("finding")
    if raw is None:
        return None
    line = ln("finding")
    if chart != "finding":
        raise QueryFileError(QueryError(rel, line, "'finding' belongs to a file with "
                                        "'chart: finding' (in queries/findings/)"))
    if not isinstance(raw, dict) or set(raw) - set(FINDING_OPTIONAL_KEYS) != set(FINDING_KEYS):
        got = ", ".join(sorted(raw)) if isinstance(raw, dict) else type(raw).__name__
        raise QueryFileError(QueryError(rel, line, "'finding' needs exactly the keys "
                                        f"{', '.join(FINDING_KEYS)}, and may have "
                                        f"{', '.join(FINDING_OPTIONAL_KEYS)} (found: {got})"))
    out = {k: _str(raw[k], f"finding.{k}", line, rel) for k in FINDING_KEYS}
    compare = _str(raw.get("compare", out["confidence"]), "finding.compare", line, rel)
    if compare not in rates and compare not in measures:
        raise QueryFileError(QueryError(rel, line, f"finding.compare '{compare}' must be a "
                                        "column declared under 'rates' or 'measures'"))
    out["compare"] = compare
    out["title"] = _str(raw["title"], "finding.title", line, rel) if "title" in raw else ""
    _column(out["subject"], "finding.subject", line, rel)
    if out["confidence"] not in rates and out["confidence"] not in measures:
        raise QueryFileError(QueryError(rel, line, f"finding.confidence '{out['confidence']}' "
                                        "must be a column declared under 'rates' (or, for a "
                                        "figure proportional to a count, 'measures')"))
    for key in ("message", "recommendation", "title"):
        try:
            template_fields(out[key])
        except ValueError as exc:
            raise QueryFileError(QueryError(rel, line, f"finding.{key}: {exc}")) from None
    applies = raw_applies if (raw_applies := data.get("applies_to")) else "services"
    if applies not in ("services", "areas"):
        raise QueryFileError(QueryError(rel, ln("applies_to"), "'applies_to' is services or "
                                        "areas"))
    out["applies_to"] = applies
    return out


def template_fields(text: str) -> set[str]:
    """The {names} a finding's message uses; the row's columns and reference figures
    fill them when the finding fires."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def _reference(raw, rel: str, line: int, chart: str) -> dict | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not set(raw) <= set(REFERENCE_KEYS):
        raise QueryFileError(QueryError(rel, line, "'reference' takes "
                                        f"{', '.join(REFERENCE_KEYS)}"))
    names = reference.names()

    def check(key) -> str:
        if not isinstance(key, str) or key not in names:
            raise QueryFileError(QueryError(rel, line, f"reference figure {key!r} is not in "
                                            f"{reference.path().name}"))
        return key

    out: dict = {}
    if "line" in raw:
        out["line"] = check(raw["line"])
    if "band" in raw:
        band = raw["band"]
        if not isinstance(band, list) or len(band) != 2:
            raise QueryFileError(QueryError(rel, line, "'band' is [low figure, high figure]"))
        out["band"] = (check(band[0]), check(band[1]))
    if "points" in raw:
        if chart not in ("bar", "grouped_bar") or not isinstance(raw["points"], dict):
            raise QueryFileError(QueryError(rel, line, "'points' maps x categories of a bar "
                                            "chart to reference figures"))
        out["points"] = {str(k): check(v) for k, v in raw["points"].items()}
    return out


@dataclass(frozen=True)
class Entry:
    """One file in the catalogue: its spec, or the error that stands in for its chart."""

    id: str
    path: str
    spec: QuerySpec | None
    error: QueryError | None


_cache: dict[Path, tuple[tuple, int, Entry]] = {}


def load_file(path: Path, root: Path) -> Entry:
    """Parse one file, re-reading it only when its size or modification time changed."""
    st = path.stat()
    stamp = (st.st_mtime_ns, _measures_stamp())
    hit = _cache.get(path)
    if hit and hit[0] == stamp and hit[1] == st.st_size:
        return hit[2]
    rel = f"{root.name}/{path.relative_to(root).as_posix()}"
    qid = query_id(path, root)
    try:
        text = path.read_text(encoding="utf-8")
        entry = Entry(qid, rel, parse(text, rel), None)
    except UnicodeDecodeError:
        entry = Entry(qid, rel, None, QueryError(rel, 1, "the file is not UTF-8 text"))
    except QueryFileError as exc:
        entry = Entry(qid, rel, None, exc.error)
    _cache[path] = (stamp, st.st_size, entry)
    return entry


def _measures_stamp() -> tuple[str, int]:
    """Which data/measures.yaml (and which version of it) the files were expanded with:
    a query file that references a measure is re-read when the definition changes."""
    p = _registry.path()
    try:
        return (str(p), p.stat().st_mtime_ns)
    except OSError:
        return (str(p), -1)


def discover(root: Path) -> list[Entry]:
    """Every .sql file under `root`, in page then order then id."""
    entries = [load_file(p, root) for p in sorted(root.rglob("*.sql"))]

    def key(e: Entry):
        return (e.spec.page, e.spec.order, e.id) if e.spec else ("~", 0, e.id)

    return sorted(entries, key=key)


def for_page(root: Path, page: str) -> list[Entry]:
    """Charts for a page; a broken file whose path says it belongs here is listed too."""
    out = []
    for e in discover(root):
        if e.id.startswith("findings/"):
            continue
        if (e.spec and e.spec.page == page) or (e.spec is None and e.id.split("/")[0] == page):
            out.append(e)
    return out


def get(root: Path, qid: str) -> Entry:
    path = root / f"{qid}.sql"
    if not path.exists():
        rel = f"{root.name}/{qid}.sql"
        return Entry(qid, rel, None, QueryError(rel, 1, "no such query file"))
    return load_file(path, root)
