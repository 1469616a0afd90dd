"""Exit coverage: what share of closed cases have outcomes recorded, said beside every
outcome chart (on screen and in the report pack).

Why: an outcome rate ("72% felt safer") describes only the closed cases whose outcomes
were recorded. A service that records outcomes for 45% of its closed cases may be
describing its most settled clients; the reader needs the coverage beside the rate to
judge it. The coverage itself is defined once, in the cases view (`has_exit_outcomes`,
data/schema.sql) and counted by COVERAGE_QUERY, whose protected result (perturbed like
any other figure) gives the sentence.
"""

from __future__ import annotations

import re

from service_insights.catalogue.catalog import QuerySpec

COVERAGE_QUERY = "overview/waits_and_support"
"""The KPI query whose pct_exit_coverage, closed_with_outcomes and closed_cases say it."""
COVERAGE_CHARTS = frozenset({COVERAGE_QUERY, "risk/exit_coverage_by_risk_level"})
_OUTCOMES = re.compile(r"\b(abuse_ceased|risk_reduced|feels_safer|quality_of_life_improved)\b")


def is_outcome_chart(spec: QuerySpec) -> bool:
    """A chart of outcomes at exit: its SQL reads an outcome field (and it is not one of
    the coverage charts themselves)."""
    return spec.id not in COVERAGE_CHARTS and bool(_OUTCOMES.search(spec.sql))


def sentence(result) -> str:
    """One sentence from COVERAGE_QUERY's result (catalogue/results.ChartResult), with the
    figures as protected for this viewer; never a suppressed figure."""
    if result is None or result.error or result.data is None or not result.data.frame.height:
        return "Exit coverage: could not be worked out for this selection."
    row = result.data.frame.row(0, named=True)
    pct, shown, closed = (row.get("pct_exit_coverage"), row.get("closed_with_outcomes"),
                          row.get("closed_cases"))
    if closed is None or pct is None:
        return ("Exit coverage: withheld (too few cases closed in the period to show the "
                "share with outcomes recorded).")
    of = f" ({shown:,} of {closed:,})" if shown is not None else ""
    text = (f"Exit coverage: {pct:.1f}% of the cases closed in the period have outcomes "
            f"recorded{of}; outcome rates describe only these.")
    if pct < 70:
        text += " With so few recorded, the rates may not describe the service's clients."
    return text
