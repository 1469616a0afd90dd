"""Pages under AppTest: every page runs; a broken query file breaks only its own chart."""

import shutil

import pytest

from service_insights import settings
from service_insights.access import grants
from tests.conftest import app_test, query_health_row

PAGES = sorted(p.name for p in (settings.ROOT / "app_pages").glob("*.py"))
ADMIN = grants.Viewer("root", "admin", None, None)
"""Every page, the administrators' ones too (the demo never shows those)."""


@pytest.mark.parametrize("services", [None, ["S03"], ["S07", "S11"]],
                         ids=["all", "one-service", "two-services"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(app_env, page, services):
    at = app_test()
    at.session_state["viewer"] = ADMIN
    if services:
        at.session_state["services"] = services
    at.run()
    at.switch_page(f"app_pages/{page}").run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "could not be drawn" in e.value]


def test_broken_query_file_breaks_only_its_chart(app_env, tmp_path, monkeypatch):
    queries = tmp_path / "queries"
    shutil.copytree(settings.ROOT / "queries", queries)
    (queries / "home" / "zz_broken.sql").write_text(
        "/*---\ntitle: Broken\ndescription: x.\npage: home\nchart: bar\nwhat: 1\n---*/\n"
        "select 1 as n\n")
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))
    at = app_test()
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert "queries/home/zz_broken.sql" in errors[0] and "line 6" in errors[0]
    assert "unknown header key 'what'" in errors[0]
    assert len(at.metric) == 5, "the headline figures still show"

    row = query_health_row(at, "home/zz_broken")
    assert row["status"] == "does not parse" and "line 6" in row["problem"]


@pytest.fixture
def gappy_store(tmp_path, monkeypatch):
    """Cases in 2021-22 and 2024-25 only, so 2022-23 is an empty period."""
    import datetime as dt

    from tests.handmade import build, case, referral

    rows = [case(referral_date=dt.date(2021, 6, 1), children_in_household=1,
                 social_care="early_help", whole_family_support=True) for _ in range(30)]
    rows += [case(referral_date=dt.date(2024, 6, 1), service_id="S2") for _ in range(30)]
    refs = [referral(f"K{i}", dt.date(2021, 7, 1)) for i in range(12)]
    path = build(tmp_path / "gappy.duckdb", rows, refs)
    monkeypatch.setenv("SI_DB_PATH", str(path))
    return path


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_an_empty_period(gappy_store, page):
    at = app_test()
    at.session_state["viewer"] = ADMIN
    at.session_state["fy"] = "2022-23"
    at.run()
    at.switch_page(f"app_pages/{page}").run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "could not" in e.value]


def test_findings_page_lists_the_sample_findings(app_env):
    at = app_test()
    at.session_state["fy"] = "2024-25"
    at.session_state["services"] = ["S03"]
    at.run()
    at.switch_page("app_pages/findings.py").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Offer whole-family support" in text
    assert "What to do." in text and "Evidence." in text
    assert any("confidence" in c.value for c in at.caption)


def test_compare_page_draws_a_funnel_per_key_rate(app_env):
    at = app_test()
    at.session_state["fy"] = "2024-25"
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 5
