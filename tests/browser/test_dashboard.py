"""The dashboard in a real browser: it starts, filters change the figures, every page draws.

Figures read off the screen are checked against SQL written independently of the app
(tests/test_home_page.py), not against the app's own output.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from service_insights import settings
from service_insights.catalogue import catalog, periods
from service_insights.presentation import capacity
from service_insights.store import synth
from tests.test_home_page import expected

PAGES = sorted(p.stem for p in (settings.ROOT / "app_pages").glob("*.py"))
ADMIN_PAGES = ("audit_log", "import_data", "users")
"""Never in the demo (test_accounts.py opens them as a signed-in administrator)."""
DEMO_PAGES = [p for p in PAGES if p not in ADMIN_PAGES]
SERVICE = next(s for s in synth.SERVICES if s.service_id == "S03")
HEADLINES = ["Cases referred", "High risk (DASH 14+)", "Clients with children",
             "Families known to children's social care", "Marac repeat rate"]


def independent_headlines(db_path, fy: str, service_id: str | None) -> dict[str, str]:
    period = periods.financial_year(fy)
    cases, hr, ch, sc, rep = expected(db_path, period.start, period.end, service_id)
    return dict(zip(HEADLINES, [f"{cases:,}", f"{hr:.1f}%", f"{ch:.1f}%", f"{sc:.1f}%",
                                f"{rep:.1f}%"], strict=True))


def expected_blocks(page: str) -> tuple[int, int, int] | None:
    """Plots, metrics and tables the catalogue says this page shows (None: the page
    draws no catalogue charts, e.g. a form or an admin table)."""
    entries = [e.spec for e in catalog.for_page(settings.get().queries_dir, page) if e.spec]
    if not entries:
        return None
    plots = metrics = tables = 0
    for spec in entries:
        if spec.chart == "kpi":
            metrics += len(spec.y)
        elif spec.chart == "table":
            tables += 1
            plots += spec.id == capacity.CAPACITY_QUERY  # drawn above its table
        elif spec.chart != "finding":
            plots += 1
    if page == "home":
        tables += 1  # the recent-trends table (ui/trend_blocks.py)
    return plots, metrics, tables


def test_starts_on_a_fresh_machine(tmp_path, start_server, new_app):
    """No store yet: the first visit builds the sample, then shows the home page."""
    db_path = tmp_path / "data" / "insights.duckdb"
    srv = start_server(db_path, SI_SAMPLE_CASES="4000", SI_SAMPLE_SEED="11")
    assert not db_path.exists()
    app = new_app(srv).open()
    main = app.page.get_by_test_id("stMain")
    expect(main).to_contain_text("building the bundled synthetic sample")
    expect(main).to_contain_text("Synthetic sample built.")
    expect(app.page.get_by_test_id("stMetric")).to_have_count(len(HEADLINES))
    assert app.errors() == []
    assert db_path.exists()
    assert app.metrics() == independent_headlines(db_path, "2024-25", None)


def test_first_choice_after_start_is_kept(sample_db, start_server, new_app):
    """The first choice in the first session after a start used to snap back: Streamlit
    routed that session through the old pages/ folder. The pages now live in app_pages/."""
    app = new_app(start_server(sample_db)).open()
    box = app.sidebar_widget("stMultiSelect", "Service")
    app.choose_option(box, SERVICE.name)
    assert SERVICE.name in box.get_by_test_id("stMultiSelectTagsContainer").inner_text()


def test_home_loads_on_the_sample(app, sample_db):
    app.open()
    assert app.errors() == []
    expect(app.page.get_by_test_id("stSidebar")).to_contain_text("Synthetic sample data")
    assert app.metrics() == independent_headlines(sample_db, "2024-25", None)


def test_sidebar_service_and_year_change_the_figures(app, sample_db):
    app.open()
    everyone = app.metrics()

    app.choose_service(SERVICE.name)
    one_service = app.metrics()
    assert one_service != everyone
    assert one_service == independent_headlines(sample_db, "2024-25", SERVICE.service_id)
    expect(app.page.get_by_test_id("stMain")).to_contain_text(
        f"{SERVICE.name} ({SERVICE.service_id}) · financial year 2024-25")

    app.choose_year("2022-23")
    earlier = app.metrics()
    assert earlier != one_service
    assert earlier == independent_headlines(sample_db, "2022-23", SERVICE.service_id)

    app.choose_year("2024-25")
    assert app.metrics() == one_service, "going back gives the same figures again"


@pytest.fixture(scope="module")
def one_service(tour):
    """The shared tab, on the home page with one service chosen (so benchmarks show)."""
    tour.open()
    tour.choose_service(SERVICE.name)
    return tour


def test_every_page_file_is_in_the_sidebar(one_service):
    assert sorted(one_service.nav_pages()) == DEMO_PAGES


@pytest.mark.parametrize("page", DEMO_PAGES)
def test_page_renders_without_errors(one_service, page):
    app = one_service
    app.goto_page(app.nav_pages()[page])
    try:
        # The path names the page; the query string holds the filters.
        path = urlparse(app.page.url).path.rstrip("/")
        assert path.endswith("" if page == "home" else f"/{page}")
        blocks = expected_blocks(page)
        if blocks is not None:
            plots, metrics, tables = blocks
            expect(app.plots()).to_have_count(plots)
            expect(app.page.get_by_test_id("stMetric")).to_have_count(metrics)
            expect(app.page.get_by_test_id("stDataFrame")).to_have_count(tables)
        else:
            expect(app.page.get_by_test_id("stMain").get_by_test_id("stHeading")
                   .first).to_be_visible()
        # Every chart is drawn (an svg with a title), not left as an empty frame.
        for plot in app.plots().all():
            expect(plot.locator(".main-svg").first).to_be_visible()
            expect(plot.locator(".gtitle")).not_to_have_count(0)
        assert app.errors() == []
        expect(app.page.get_by_test_id("stSidebar")).to_contain_text(SERVICE.name)
    finally:
        app.screenshot(page)


def test_chart_download_is_the_chosen_scope(one_service, tmp_path):
    """The harness's download path, end to end: the file names the service and year."""
    one_service.goto_page(one_service.nav_pages()["home"])
    path = one_service.chart_download("Headline figures", "csv", tmp_path)
    assert path.name.endswith(".csv") and "2024-25" in path.name
    text = path.read_text(encoding="utf-8-sig")
    assert f"Scope,{SERVICE.name}" in text


def test_chart_png_download_opens(one_service, tmp_path):
    """A chart image from the Download button is a real PNG of the chart."""
    one_service.goto_page(one_service.nav_pages()["children"])
    path = one_service.chart_download(
        "Whole-family support offered to families known to social care", "png", tmp_path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 1000 and height >= 400
