"""Which of a chart's rates differ from the all-services benchmark by more than chance.

A rate is marked higher or lower only when its 95% Wilson interval excludes the
benchmark rate (as Fingertips compares an area with England); everything else is
"similar", however far apart the two points look. Suppressed or withheld cells get no
verdict. Used by the chart captions, the KPI tiles and the figures' error bars.
"""

from __future__ import annotations

from dataclasses import dataclass

from service_insights.catalogue.results import ChartResult
from service_insights.findings import stats


@dataclass(frozen=True)
class Verdict:
    key: tuple
    """The row's x (and series) values."""
    rate: str
    value: float
    interval: stats.Interval
    benchmark: float | None
    verdict: str | None
    """higher, lower, similar, or None without a benchmark."""


def intervals(result: ChartResult, rate: str) -> dict[tuple, stats.Interval]:
    """The 95% interval for each shown row of a rate column, keyed by its dimensions."""
    spec = result.spec
    if result.data is None or rate not in spec.rates:
        return {}
    frame = result.data.frame
    hidden = result.data.hidden.get(rate, [False] * frame.height)
    count, base = spec.rates[rate].count, spec.rates[rate].base
    dims = list(spec.dims)
    out = {}
    for i, row in enumerate(frame.iter_rows(named=True)):
        if hidden[i]:
            continue
        if row.get(count) is None or row.get(base) is None or row.get(rate) is None:
            continue
        ci = stats.wilson(int(row[count]), int(row[base]))
        if ci is not None:
            out[tuple(row[d] for d in dims)] = ci
    return out


def verdicts(result: ChartResult) -> list[Verdict]:
    spec = result.spec
    out: list[Verdict] = []
    dims = list(spec.dims)
    for rate in (c for c in spec.y if c in spec.rates):
        cis = intervals(result, rate)
        bench: dict[tuple, float | None] = {}
        if result.benchmark is not None:
            for row in result.benchmark.frame.iter_rows(named=True):
                bench[tuple(row[d] for d in dims)] = row.get(rate)
        for row in result.data.frame.iter_rows(named=True):
            key = tuple(row[d] for d in dims)
            if key not in cis:
                continue
            b = bench.get(key)
            verdict = None if b is None else stats.verdict(cis[key], b)
            out.append(Verdict(key, rate, row[rate], cis[key], b, verdict))
    return out


def summary(result: ChartResult) -> str:
    """One sentence for the caption: where the selection differs from its comparator."""
    found = [v for v in verdicts(result) if v.verdict is not None]
    if not found:
        return ""
    spec = result.spec

    def name(v: Verdict) -> str:
        if not v.key:
            return spec.label(v.rate)
        return ", ".join(str(k) for k in v.key)

    label = result.benchmark_label or "All services"
    against = label[0].lower() + label[1:]
    higher = [name(v) for v in found if v.verdict == stats.HIGHER]
    lower = [name(v) for v in found if v.verdict == stats.LOWER]
    if not higher and not lower:
        return (f"No difference from {against} is larger than chance would explain "
                "(95% intervals).")
    parts = []
    if higher:
        parts.append(f"significantly higher than {against} for {'; '.join(higher)}")
    if lower:
        parts.append(f"significantly lower for {'; '.join(lower)}")
    text = " and ".join(parts)
    return f"{text[0].upper()}{text[1:]} (95% intervals); other differences may be chance."
