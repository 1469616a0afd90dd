"""The sentences under a chart, the same on screen, in exports and in the report pack:
what it shows, the period, the base, the benchmark, whether differences are real, and
what disclosure control hid."""

from __future__ import annotations

from service_insights.catalogue.results import ChartResult, base_text, shown_period
from service_insights.findings import significance
from service_insights.presentation import charts


def suppression_note(res: ChartResult, *, why_no_benchmark: bool = True) -> str:
    """The rule, and what it hid here (in the selection and in the benchmark)."""
    if res.data is None:
        return ""
    text = res.data.note()
    if res.benchmark is not None and res.benchmark.perturbed and not res.data.perturbed:
        text += (f" The {res.benchmark_label.lower() or 'comparator'} figures are perturbed "
                 "(the cell key method); your own service's counts are exact.")
    if res.benchmark is not None and res.benchmark.any_hidden:
        hidden = res.benchmark.primary + res.benchmark.secondary + res.benchmark.withheld
        text += (f" In the {res.benchmark_label.lower() or 'benchmark'} figures, {hidden} "
                 f"value{'s' if hidden != 1 else ''} withheld.")
    if res.benchmark_note and why_no_benchmark:
        text += f" {res.benchmark_note}"
    return text


def caption(res: ChartResult, *, always_note_rules: bool = False) -> str:
    """Exports always state the suppression rule; the screen states it when it hid
    something or the counts are perturbed (the rule is in every chart's footnote anyway)."""
    spec = res.spec
    parts = [spec.description, f"Period: {shown_period(res)}.", base_text(res)]
    if res.benchmark is not None:
        parts.append(f"Benchmark: {res.count_benchmark_label or res.benchmark_label}.")
    elif spec.chart == "funnel" and res.overall and res.benchmark_label:
        parts.append(f"Centre line: {res.benchmark_label[0].lower()}"
                     f"{res.benchmark_label[1:]}.")
    elif res.benchmark_note:
        parts.append(res.benchmark_note)
    if res.benchmark is not None:
        parts.append(significance.summary(res))
    if spec.chart == "funnel" and res.data is not None:
        parts.append(charts.funnel_summary(res))
    if spec.rates and spec.chart in ("bar", "grouped_bar", "line"):
        parts.append("Error bars show 95% confidence intervals.")
    if res.data is not None and (always_note_rules or res.data.any_hidden or res.perturbed
                                 or (res.benchmark is not None and res.benchmark.any_hidden)):
        parts.append(suppression_note(res, why_no_benchmark=False))
    if res.truncated:
        parts.append("The result was cut at the row limit.")
    parts.append(res.lookback_note)
    return " ".join(p for p in parts if p)
