"""Findings: plain-language statements of where a service should adapt, with evidence.

Each rule is a file in queries/findings/ whose SQL returns a row only when the finding
holds (testing the 95% interval, not the point estimate, through the wilson_lower and
wilson_upper macros), one row per service or area it holds for. The rule runs through
the same path as a chart (scope, parameters, disclosure control), and a row whose
numbers were suppressed or withheld is dropped: a finding never rests on a base too small
to show. For a viewer who sees perturbed counts, the rule's counts are perturbed before its
SQL tests them (results.py, keying.judged), so whether it fires follows the numbers that
viewer sees; a service manager's own services are judged on the exact counts. Each
finding states its base and interval, so a reader can judge how far to trust it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service_insights.catalogue import (
    catalog,
    comparators,
    measures,
    reference,
    results,
    selection,
)
from service_insights.catalogue.catalog import QueryError, QuerySpec
from service_insights.catalogue.periods import Period
from service_insights.catalogue.scope import Scope
from service_insights.catalogue.selection import each_service
from service_insights.findings import stats
from service_insights.settings import Settings
from service_insights.store import db

FINDINGS_FOLDER = "findings"


@dataclass(frozen=True)
class Finding:
    rule: str
    """The query id of the rule, e.g. findings/whole_family_support."""
    title: str
    subject: str
    """The service or Marac area the finding is about."""
    message: str
    recommendation: str
    evidence: str
    confidence: str
    """A sentence: how confident, on what base, with the 95% interval."""
    level: str
    """high, moderate or low, from the base size."""
    base: int
    source: str = ""
    comparison: str = ""
    """The service's figure beside the comparator's ("8.2% against 34.7% at other Idva
    services"), or why the comparator's is not shown; also the message's last sentence."""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    errors: list[QueryError] = field(default_factory=list)
    withheld: int = 0
    """Rows a rule returned whose numbers were too small to show: not reported."""
    not_judged: list[str] = field(default_factory=list)
    """Rules that do not apply to this kind of selection, with why."""
    rules: int = 0


def rules(root) -> list[catalog.Entry]:
    return [e for e in catalog.discover(root) if e.id.startswith(f"{FINDINGS_FOLDER}/")]


def rules_digest(root) -> str:
    """Changes when any rule file changes, so cached findings follow the files."""
    return "|".join(f"{e.id}:{e.spec.digest if e.spec else e.error}" for e in rules(root))


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}".removesuffix(".0") if value.is_integer() else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _fill(template: str, row: dict) -> str:
    figures = reference.figures()
    values = {}
    for name in catalog.template_fields(template):
        if name in row:
            values[name] = _text(row[name])
        elif name in figures:
            values[name] = _text(figures[name].value)
        else:
            raise KeyError(name)
    return template.format(**values)


def _confidence(spec: QuerySpec, row: dict) -> tuple[str, str, int]:
    rate = spec.finding["confidence"]
    if rate in spec.measures:
        return _count_confidence(spec, row, rate)
    count_col, base_col = spec.rates[rate].count, spec.rates[rate].base
    count, base = int(row[count_col]), int(row[base_col])
    ci = stats.wilson(count, base)
    level = stats.confidence_level(base)
    rate_label = spec.label(rate)
    if ci.high < 1.0:
        # A rate per person (Marac cases per adult female) reads as "0.3% to 0.3%" in
        # percent; per 10,000, the unit the finding itself uses, it says something.
        per = next((spec.label(m) for m in spec.measures if "10000" in m), "per 10,000")
        interval = (f"the 95% interval is {ci.low * 100:,.1f} to {ci.high * 100:,.1f} "
                    f"{per}")
    else:
        interval = (f"the 95% interval for {rate_label[0].lower() + rate_label[1:]} is "
                    f"{ci.low:.1f}% to {ci.high:.1f}%")
    sentence = (f"{level.capitalize()} confidence: based on {base:,} "
                f"{spec.label(base_col)}; {interval}.")
    return sentence, level, base


def _count_confidence(spec: QuerySpec, row: dict, measure: str) -> tuple[str, str, int]:
    """For a figure proportional to a count (Idva FTE implied by Marac cases a year): the
    count's Byar 95% interval, scaled the same way, in the figure's own unit, so the
    interval reads "4.9 to 6.1 FTE", never as a percentage."""
    base_col = spec.measures[measure]
    count, value = int(row[base_col]), row[measure]
    level = stats.confidence_level(count)
    label = spec.label(measure)
    interval = ""
    ci = stats.byar(count)
    if ci is not None and count > 0 and value is not None:
        scale = float(value) / count
        name = label if label[:2].isupper() else label[0].lower() + label[1:]
        interval = (f"; the 95% interval for {name} is "
                    f"{ci[0] * scale:,.1f} to {ci[1] * scale:,.1f} {spec.unit}".rstrip())
    return (f"{level.capitalize()} confidence: based on {count:,} "
            f"{spec.label(base_col)}{interval}.", level, count)


def evaluate_rule(store: db.Store, entry: catalog.Entry, scope: Scope, period: Period,
                  settings: Settings, report: Report,
                  audience: results.Audience = results.EVERYONE,
                  comparator: str = "all") -> None:
    if entry.error:
        report.errors.append(entry.error)
        return
    spec = entry.spec
    report.rules += 1
    if spec.finding["applies_to"] == "areas" and scope.by_service:
        report.not_judged.append(f"{spec.title}: judged for whole Marac areas; choose an area "
                                 "rather than single services to see it.")
        return
    res = results.run(store, spec, scope, period, settings, audience)
    if res.error:
        report.errors.append(res.error)
        return
    protected = res.data
    compare = _Comparison(store, spec, scope, period, settings, audience, comparator)
    for i, row in enumerate(protected.frame.iter_rows(named=True)):
        if any(hidden[i] or row[c] is None for c, hidden in protected.hidden.items()):
            report.withheld += 1
            continue
        try:
            message = _fill(spec.finding["message"], row)
            recommendation = _fill(spec.finding["recommendation"], row)
            title = _fill(spec.finding["title"], row) if spec.finding["title"] else spec.title
            sentence, level, base = _confidence(spec, row)
        except KeyError as exc:
            report.errors.append(QueryError(
                spec.path, spec.line_of("finding"), f"the message uses {{{exc.args[0]}}}, "
                "which is neither a column of the result nor a reference figure"))
            return
        subject = str(row[spec.finding["subject"]])
        comparison = compare.sentence(subject, row)
        report.findings.append(Finding(
            rule=spec.id, title=title, subject=subject,
            message=f"{message} {comparison}".strip(), recommendation=recommendation,
            evidence=spec.finding["evidence"], confidence=sentence, level=level, base=base,
            source=spec.source, comparison=comparison))


def evaluate(store: db.Store, scope: Scope, period: Period, settings: Settings,
             audience: results.Audience = results.EVERYONE,
             comparator: str = "all") -> Report:
    """Every rule in queries/findings/ for this scope and period, with the numbers this
    audience sees on the charts (perturbed unless they hold the records), each finding
    set against `comparator`'s figure (catalogue/comparators.py)."""
    report = Report()
    for entry in rules(settings.queries_dir):
        evaluate_rule(store, entry, scope, period, settings, report, audience, comparator)
    order = {"high": 0, "moderate": 1, "low": 2}
    report.findings.sort(key=lambda f: (order[f.level], f.subject, f.rule))
    return report


AREA_FIGURES: dict[str, tuple[str, str, str, str]] = {
    "findings/marac_volume_below_expected": (
        "per_10000", "marac/marac_volume_by_population", "cases_per_10000",
        "marac_per_10k_national"),
}
"""A rule about whole Marac areas whose figure is per population, not a registered rate:
the rule's column, the query file that computes the same figure for any set of areas
(Marac cases a year per 10,000 adult females, the Marac page's KPI), its column, and the
data/reference.yaml key of the national figure. The comparator's figure is that query run
over the comparator's areas (comparators.area_pool), through results.run like any other."""


WITHOUT_COMPARATOR: dict[str, str] = {
    "findings/complex_needs_worse_outcomes": (
        "the comparison is within the service, between its clients with complex needs and "
        "its other clients, so another service's figure would not show the gap."),
    "findings/idva_capacity_below_guidance": (
        "capacity is judged against SafeLives guidance (cases a year per full-time Idva), "
        "not against other areas, whose registered Idva posts may be as short."),
}
"""Rules that print why no comparator figure is shown, in one sentence each: every
finding either sets the comparator's figure beside its own or says why not."""


class _Comparison:
    """The comparator's figure for a finding's measure, beside the service's.

    The figure is the measure as data/measures.yaml defines it (catalogue/measures.py),
    run over the comparator's pool through results.run, so it is perturbed and suppressed
    like any benchmark, and the pool must have enough services outside what the viewer
    sees (comparators.pool). A rule about one service is compared with that service's
    comparator (other services of its type, or its region). A rule whose rate is a
    different measure on each row (under-represented groups) names it in a `measure_id`
    column; a rule about whole Marac areas per population is compared with other Marac
    areas (AREA_FIGURES). Any other rule says in one sentence why no figure is shown.
    """

    def __init__(self, store, spec: QuerySpec, scope: Scope, period: Period,
                 settings: Settings, audience: results.Audience, comparator: str):
        self.store, self.spec, self.scope, self.period = store, spec, scope, period
        self.settings, self.audience, self.kind = settings, audience, comparator
        rate = spec.finding["compare"]  # the confidence rate unless the rule names one
        self.rate = rate
        self.measure = spec.measure_ids.get(rate)
        self.area = AREA_FIGURES.get(spec.id)
        self._services = None
        self._figures: dict[tuple, tuple[str | None, comparators.Pool]] = {}

    def _scope_for(self, subject: str) -> Scope:
        """The one service (or, for a rule about areas, the one Marac area) a row is about,
        by name, else the whole selection."""
        if self._services is None:
            if self.area:
                table = selection.services_table(self.store)
                names = dict(zip(table["area_name"].to_list(), table["area_code"].to_list(),
                                 strict=True))
                self._services = {name: selection.scope_for(self.store, areas=[code])
                                  for name, code in names.items()}
            else:
                self._services = {s.label.rsplit(" (", 1)[0]: s
                                  for s in each_service(self.store, self.scope)}
        return self._services.get(subject, self.scope)

    def _pool(self, subject_scope: Scope) -> comparators.Pool:
        choose = comparators.area_pool if self.area else comparators.pool
        return choose(self.store, subject_scope, self.kind, self.settings.min_other_services,
                      self.audience.visible)

    def _figure(self, measure: str, subject_scope: Scope) -> tuple[str | None,
                                                                  comparators.Pool]:
        chosen = self._pool(subject_scope)
        key = (measure, chosen.kind, chosen.scope, chosen.label)
        if key in self._figures:
            return self._figures[key]
        value = None
        if chosen.kind == "national":
            national = self.area[3] if self.area else measures.get(measure).national
            if national:
                value = _text(reference.figures()[national].value)
        elif chosen.scope is not None:
            if self.area:
                entry = catalog.get(self.settings.queries_dir, self.area[1])
                res = (results.run(self.store, entry.spec, chosen.scope, self.period,
                                   self.settings, results.EVERYONE) if entry.spec else None)
                column = self.area[2]
            else:
                res = measures.compute(self.store, measure, chosen.scope, self.period,
                                       self.settings, results.EVERYONE)
                column = "value"
            if res is not None and res.data is not None and res.data.frame.height:
                shown = res.data.display()[column][0]
                value = shown if shown and shown[0].isdigit() else None
        self._figures[key] = (value, chosen)
        return value, chosen

    def sentence(self, subject: str, row: dict) -> str:
        if self.spec.id in WITHOUT_COMPARATOR:
            return f"No comparator figure: {WITHOUT_COMPARATOR[self.spec.id]}"
        if self.area:
            measure, column, unit = self.spec.id, self.area[0], ""
        else:
            measure, column, unit = self.measure or row.get("measure_id"), self.rate, "%"
        if not measure or measure not in measures.load() and not self.area:
            # A new rule whose rate is not a registered measure still says why no
            # comparator is shown, so every finding does one or the other.
            return (f"No comparator figure: {self.spec.label(self.rate)[0].lower()}"
                    f"{self.spec.label(self.rate)[1:]} is not a measure in "
                    "data/measures.yaml, so there is no one definition to run over other "
                    "services.")
        value, chosen = self._figure(measure, self._scope_for(subject))
        ours = _text(row[column])
        label = self.spec.label(column)
        label = label[0].upper() + label[1:]
        if self.area is None and row.get("measure_id"):
            label = measures.get(measure).label
        if value is None:
            if chosen.kind == "national":
                why = "there is no national figure for this measure in data/reference.yaml."
            elif chosen.note:
                why = chosen.note[0].lower() + chosen.note[1:]
            else:
                why = f"the figure {chosen.phrase} is too small to show."
            return f"{label}: {ours}{unit}; no comparator figure: {why}"
        why = (" (a Marac area is compared with other Marac areas, whatever its services' "
               "type)" if self.area and chosen.kind == "same_type" else "")
        return f"{label}: {ours}{unit} against {value}{unit} {chosen.phrase}{why}."
