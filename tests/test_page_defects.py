"""The page defects of issue 16, each checked against values worked out here by a second,
simple method: significance marks on grouped charts, every funnel point outside the limits
named, the Marac-volume interval per 10,000, the findings teaser, blank audit columns and
the viewer toolbar. tests/browser/test_fixed_pages.py checks the same pages in Chromium."""

from __future__ import annotations

import math
import tomllib
from types import SimpleNamespace

import pytest

from service_insights import settings
from service_insights.access import audit, grants
from service_insights.catalogue import catalog, results, selection
from service_insights.catalogue.scope import ALL_SERVICES
from service_insights.findings import evaluation
from service_insights.presentation import charts
from service_insights.store import db
from tests.conftest import app_test

FY = "2024-25"
Z95, Z998 = 1.959964, 3.090232


def wilson(count: int, base: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval in percent, written out again from its formula."""
    p = count / base
    centre = (p + z * z / (2 * base)) / (1 + z * z / base)
    half = z / (1 + z * z / base) * math.sqrt(p * (1 - p) / base + z * z / (4 * base ** 2))
    return 100 * max(centre - half, 0), 100 * min(centre + half, 1)


def run(store, qid, scope, audience=results.EVERYONE):
    cfg = settings.get()
    spec = catalog.get(cfg.queries_dir, qid).spec
    return results.run(store, spec, scope, selection.period_for(FY), cfg, audience)


def text_marks(fig) -> set[tuple[str, str, str]]:
    """(category, offset group, text) of every significance mark drawn."""
    return {(x, tr.offsetgroup or "", t) for tr in fig.data
            if tr.type == "scatter" and tr.mode == "text" and tr.name == "significance"
            for x, t in zip(tr.x, tr.text, strict=True)}


def test_grouped_charts_mark_what_their_caption_calls_significant(sample_db):
    """For each service, the ▲/▼ marks on the outcomes chart are exactly the bars whose
    95% interval (worked out here) lies wholly above or below the all-services rate."""
    store = db.Store(sample_db)
    marked = 0
    for service in [f"S{i:02d}" for i in range(1, 21)]:
        scope = selection.scope_for(store, services=[service])
        # As the service's own manager sees it: exact counts, so the interval can be
        # worked out by hand from the same numbers.
        own = results.Audience(visible=(service,), own=(service,))
        res = run(store, "risk/outcomes_by_risk_level", scope, own)
        spec = res.spec
        series = charts._categories(res, spec.series, spec.series_order)
        bench = {(r["outcome"], r["risk"]): r["pct_achieved"]
                 for r in res.benchmark.frame.iter_rows(named=True)}
        expected = set()
        for i, row in enumerate(res.data.frame.iter_rows(named=True)):
            if res.data.hidden["pct_achieved"][i] or not row["recorded_cases"]:
                continue
            b = bench.get((row["outcome"], row["risk"]))
            low, high = wilson(row["achieved_cases"], row["recorded_cases"])
            if b is None or low <= b <= high:
                continue
            expected.add((charts._cat(row["outcome"]), str(series.index(row["risk"])),
                          "▲ higher" if low > b else "▼ lower"))
        assert text_marks(charts.build(res)) == expected, service
        marked += len(expected)
    assert marked, "the sample has significant bars to mark"


def funnel_outside(res) -> set[str]:
    """Services outside the 95% limits, from the limits' formula written out here."""
    centre = res.overall["pct_high_risk"] / 100
    names = set()
    for row in res.data.frame.iter_rows(named=True):
        n, k = row["assessed_cases"], row["high_risk_cases"]
        if not n or n < 10:
            continue
        half = Z95 * math.sqrt(centre * (1 - centre) / n)
        if not centre - half <= k / n <= centre + half:
            names.add(row["service_name"])
    return names


def test_every_funnel_point_outside_the_limits_is_named(sample_db):
    store = db.Store(sample_db)
    res = run(store, "compare/funnel_high_risk", ALL_SERVICES)
    fig = charts.build(res)
    named = {a.text for a in fig.layout.annotations[1:]}  # [0] is the footnote
    outside = funnel_outside(res)
    assert outside and named == outside


def test_funnel_labels_stay_in_the_plot_and_apart():
    """Twenty services outside the limits, bunched together: each gets a label, inside
    the plot area, no two overlapping (the same box sizes the placement assumes)."""
    fig = charts.go.Figure()
    points = [(1000 + 40 * (i % 5), 60 + (i // 5) * 0.4, f"Service number {i:02d} Idva")
              for i in range(20)]
    charts._funnel_labels(fig, points, [900, 1400], [40, 70])
    assert len(fig.layout.annotations) == 20
    width, height = charts.FUNNEL_PLOT_PX
    boxes = []
    for a in fig.layout.annotations:
        cx = (a.x - 900) / 500 * width + (a.ax if a.showarrow else (a.xshift or 0))
        cy = (70 - a.y) / 30 * height + (a.ay if a.showarrow else -(a.yshift or 0))
        w, h = 6.4 * len(a.text) + 6, 15
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    for i, (l1, t1, r1, b1) in enumerate(boxes):
        assert l1 >= -0.5 and r1 <= width + 0.5, "inside the plot, never cut off"
        for l2, t2, r2, b2 in boxes[i + 1:]:
            assert not (l1 < r2 - 0.5 and l2 < r1 - 0.5 and t1 < b2 - 0.5 and t2 < b1 - 0.5)


def test_the_marac_volume_interval_is_per_10000(sample_db):
    cfg = settings.get()
    spec = catalog.get(cfg.queries_dir, "findings/marac_volume_below_expected").spec
    row = {"referrals": 120, "person_years": 41_000, "per_10000": 29.3}
    sentence, _, base = evaluation._confidence(spec, row)
    low, high = wilson(120, 41_000)
    assert base == 41_000
    assert sentence.endswith(f"the 95% interval is {low * 100:.1f} to {high * 100:.1f} cases "
                             "a year per 10,000 adult females.")
    assert "% to" not in sentence and "0.3%" not in sentence


def test_the_findings_teaser_reads_as_a_list():
    from service_insights.ui import findings_blocks

    found = [SimpleNamespace(title=f"Finding {c}", subject=f"Service {c}") for c in "ABCDEFGHIJK"]
    assert findings_blocks.teaser_text(found) == (
        "**11 findings on where to adapt**, among them:\n\n"
        "- Finding A: Service A\n- Finding B: Service B\n- Finding C: Service C\n"
        "\n8 more on the Findings page.")
    assert findings_blocks.teaser_text(found[:2]) == (
        "**2 findings on where to adapt**:\n\n- Finding A: Service A\n- Finding B: Service B")


def test_the_audit_log_leaves_unused_columns_blank(app_env, tmp_path, monkeypatch):
    users = tmp_path / "admin.yaml"
    monkeypatch.setenv("SI_USERS_FILE", str(users))
    audit.record("root", "sign_in", ok=True, method="password")
    audit.record("root", "export", format="png", query="home/headline_figures")
    at = app_test()
    at.session_state["viewer"] = grants.Viewer("root", "admin", None, None)
    at.run()
    at.switch_page("app_pages/audit_log.py").run()
    assert not at.exception
    table = at.dataframe[0].value if at.dataframe else at.table[0].value
    cells = table.astype(str).to_numpy().ravel().tolist()
    assert "None" not in cells and "nan" not in cells
    export = table[table["action"] == "export"].iloc[0]
    assert export["method"] == "" and export["format"] == "png"


def test_the_header_shows_the_viewer_toolbar_only():
    config = tomllib.loads((settings.ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer"


@pytest.mark.parametrize("qid", ["home/headline_figures"])
def test_kpi_comparisons_are_whole(app_env, qid):
    """The comparison under each figure is its own caption, whole (the metric's delta
    description was cut off at "vs all s…")."""
    at = app_test()
    at.session_state["services"] = ["S03"]
    at.run()
    # The default comparator: other services of the same type (S03 is an Idva service).
    about = [c.value for c in at.caption if c.value.startswith("vs other Idva services (")]
    assert len(about) == 4  # the four rates; the count gets the average service
    assert all("95% CI" in a or "too few to test" in a for a in about)
