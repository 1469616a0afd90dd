"""Every export works or says why: the headline-figure blocks (Home, both Marac blocks)
export as table images, and an export for a period with no records writes nothing and
says so. Real Kaleido and Chromium, real store."""

from __future__ import annotations

import datetime as dt
import io

import duckdb
import pytest
from pypdf import PdfReader

from service_insights import cli
from service_insights import settings as settings_mod
from service_insights.catalogue import catalog, results, selection
from service_insights.exports import chart_files, images
from service_insights.store import db

FY = "2024-25"
MARKING = "OFFICIAL-SENSITIVE"
HEADLINE_BLOCKS = ["home/headline_figures", "marac/partner_agency_share",
                   "marac/marac_volume_by_population"]


@pytest.fixture(scope="module", autouse=True)
def image_server():
    server = images.server()
    server.start()
    yield server


@pytest.fixture
def sample_env(sample_db, monkeypatch):
    monkeypatch.setenv("SI_DB_PATH", str(sample_db))
    return sample_db


def own_cases(path, service: str) -> int:
    """Cases the service took on in 2024-25, counted straight from the file."""
    con = duckdb.connect(str(path), read_only=True, config=db.read_only_config())
    try:
        return con.execute(
            "select count(*) from store.cases where service_id = $s "
            "and referral_date between $a and $b",
            {"s": service, "a": dt.date(2024, 4, 1), "b": dt.date(2025, 3, 31)}).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
@pytest.mark.parametrize("qid", HEADLINE_BLOCKS)
def test_headline_blocks_export_as_images(sample_env, qid, fmt):
    store = db.Store(sample_env)
    cfg = settings_mod.get()
    scope = selection.scope_for(store, services=["S01"])
    entry = catalog.get(cfg.queries_dir, qid)
    # The manager of S01: their own counts exact, so the image can be checked by hand.
    audience = results.Audience(visible=("S01",), own=("S01",))
    res = results.run(store, entry.spec, scope, selection.period_for(FY), cfg, audience)
    data = chart_files.export(res, fmt, MARKING)
    if fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    elif fmt == "pdf":
        assert data[:5] == b"%PDF-" and len(PdfReader(io.BytesIO(data)).pages) == 1
    else:
        text = data.decode()
        assert data.lstrip()[:4] == b"<svg" and MARKING in text
        for label in (entry.spec.label(c) for c in entry.spec.y):
            assert label.replace("'", "&#39;") in text or label in text, label
        if qid == "home/headline_figures":
            assert f">{own_cases(sample_env, 'S01'):,}<" in text, "the exact count, in a cell"


def test_headline_block_on_the_command_line(sample_env, tmp_path, capsys):
    out = tmp_path / "headline.png"
    rc = cli.main(["export", "--service", "S01", "--year", FY, "--query",
                   "home/headline_figures", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra", [[], ["--query", "home/headline_figures", "--format", "csv"]],
                         ids=["pack", "one-chart"])
def test_an_export_for_a_period_with_no_records_writes_nothing(sample_env, tmp_path, capsys,
                                                               extra):
    out = tmp_path / ("empty.csv" if extra else "empty.pdf")
    rc = cli.main(["export", "--service", "S01", "--year", "2031-32", "--out", str(out),
                   *extra])
    err = capsys.readouterr().err
    assert rc == 1
    lines = [line for line in err.splitlines() if not line.startswith("export: no --as")]
    assert lines == ["export: there are no records for Ashcombe Idva Service (S01) in "
                     "financial year 2031-32 (no case referred or closed, no Marac referral "
                     "heard); nothing was written."]
    assert list(tmp_path.iterdir()) == []
