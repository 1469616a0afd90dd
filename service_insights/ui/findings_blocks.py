"""The findings blocks: the full list with numbers, recommendation and evidence (Findings
page), and the short teaser on Home. Cached like charts, by store, rules, scope, period
and audience."""

from __future__ import annotations

import streamlit as st

from service_insights import settings
from service_insights.access import grants
from service_insights.catalogue.periods import Period
from service_insights.catalogue.results import Audience
from service_insights.catalogue.scope import Scope
from service_insights.catalogue.selection import Selection
from service_insights.findings import evaluation
from service_insights.ui import lifecycle, signin
from service_insights.ui.chart_blocks import show_error
from service_insights.ui.filters import current_selection


@st.cache_data(ttl=3600, max_entries=200, show_spinner=False)
def _cached_findings(store_key: tuple, rules_digest: str, scope: Scope,
                     period: Period, audience: Audience,
                     comparator: str = "all") -> evaluation.Report:
    return evaluation.evaluate(lifecycle.store(), scope, period, settings.get(), audience,
                               comparator)


def findings_report(selection: Selection | None = None) -> evaluation.Report:
    selection = selection or current_selection()
    root = settings.get().queries_dir
    viewer = signin.current()
    scope = grants.clamp(selection.scope, viewer)
    return _cached_findings(lifecycle.store_key(), evaluation.rules_digest(root), scope,
                            selection.period, grants.audience(viewer),
                            selection.comparator)


_LEVEL_BADGE = {"high": ("High confidence", "green"), "moderate": ("Moderate confidence",
                "orange"), "low": ("Low confidence", "gray")}


def render_findings(selection: Selection | None = None) -> None:
    """The findings for the selection: each with its numbers, what to do, and why."""
    selection = selection or current_selection()
    report = findings_report(selection)
    n = len(report.findings)
    st.markdown(f"**{n} finding{'s' if n != 1 else ''}** for {selection.scope.label}, "
                f"{selection.period.label}, from {report.rules} rules.")
    if not n:
        st.info("No rule found a difference large enough to be sure of for this selection. "
                "That is not proof that nothing needs to change: small services and short "
                "periods give wide intervals.")
    for f in report.findings:
        label, colour = _LEVEL_BADGE[f.level]
        with st.container(border=True):
            st.markdown(f"#### {f.title}")
            st.badge(f"{label} · {f.subject}", color=colour)
            st.markdown(f.message)
            st.markdown(f"**What to do.** {f.recommendation}")
            st.markdown(f"**Evidence.** {f.evidence}")
            st.caption(f"{f.confidence} Source: {f.source}.")
    for error in report.errors:
        show_error(error, "This finding rule could not be checked")
    if report.withheld:
        st.caption(f"Possible findings not reported because the numbers behind them are "
                   f"too small to show: {report.withheld}.")
    for note in report.not_judged:
        st.caption(note)
    st.caption("A finding is reported only when the 95% confidence interval, not just the "
               "figure itself, is beyond the threshold, so chance variation in a small "
               "service is not mistaken for a difference. Thresholds and national figures "
               "are listed in data/reference.yaml.")


SHOWN_IN_TEASER = 3


def teaser_text(findings: list) -> str:
    """"11 findings on where to adapt, among them:" and a short list of the first three
    (title, then whom it is about), then how many more the Findings page has."""
    n = len(findings)
    head = (f"**{n} finding{'s' if n != 1 else ''} on where to adapt**"
            + (", among them:" if n > SHOWN_IN_TEASER else ":"))
    items = [f"- {f.title}: {f.subject}" for f in findings[:SHOWN_IN_TEASER]]
    rest = n - len(items)
    tail = [f"\n{rest} more on the Findings page."] if rest > 0 else []
    return "\n".join([head, "", *items, *tail])


def findings_teaser(selection: Selection | None = None) -> None:
    """On the home page: how many findings hold, with the first titles and a link."""
    report = findings_report(selection)
    n = len(report.findings)
    if not n:
        st.caption("No finding holds for this selection and period.")
        return
    st.info(teaser_text(report.findings), icon=":material/lightbulb:")
    st.page_link("app_pages/findings.py", label="Read the findings, with the evidence",
                 icon=":material/arrow_forward:")
