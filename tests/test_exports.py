"""Exports with the real Kaleido and Chromium: valid files, the same disclosure control as
the screen, neutralised formulas, and a report pack that says what it left out."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import struct
from types import SimpleNamespace

import openpyxl
import polars as pl
import pytest
from pypdf import PdfReader

from service_insights import cli
from service_insights import settings as settings_mod
from service_insights.catalogue import catalog, results, selection
from service_insights.exports import chart_files, images, report_pack
from service_insights.store import db
from tests import by_hand, handmade

FY = "2024-25"
MARKING = "OFFICIAL-SENSITIVE"
EVIL = '=HYPERLINK("http://evil","x")'


@pytest.fixture(scope="session", autouse=True)
def image_server():
    """One browser for the whole session, as in the app (one per process)."""
    server = images.server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sample_env(sample_db, monkeypatch):
    monkeypatch.setenv("SI_DB_PATH", str(sample_db))
    return sample_db


def run(store, qid, scope, year=FY, audience=results.EVERYONE):
    cfg = settings_mod.get()
    entry = catalog.get(cfg.queries_dir, qid)
    assert entry.error is None, entry.error
    return results.run(store, entry.spec, scope, selection.period_for(year), cfg, audience)


def manager(*services):
    """The manager of these services: their own counts exact (the others perturbed), so
    suppression can be checked on numbers chosen by hand."""
    return results.Audience(visible=services, own=services)


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in reader.pages))


def csv_sections(data: bytes) -> tuple[dict[str, str], list[list[str]]]:
    """The stamp lines as a dict, then the data table (header first)."""
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    blank = rows.index([])
    return {r[0]: r[1] for r in rows[:blank]}, rows[blank + 1:]


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_chart_images_are_valid_files(sample_env, fmt):
    store = db.Store(sample_env)
    scope = selection.scope_for(store, services=["S03"])
    res = run(store, "children/whole_family_support_by_social_care", scope)
    data = chart_files.export(res, fmt, MARKING)
    assert len(data) > 5_000
    if fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert width == 2 * 1100 and height > 800  # scale 2
    elif fmt == "svg":
        assert data.lstrip()[:4] == b"<svg"
        text = data.decode()
        # The stamp is in the image itself, as text.
        assert res.spec.title in text.replace("&#39;", "'")
        assert MARKING in text and "data as of 2025-03-31" in text
        assert "children/whole_family_support_by_social_care" in text
    else:
        assert data[:5] == b"%PDF-"
        assert len(PdfReader(io.BytesIO(data)).pages) == 1


def test_no_chromium_is_a_clear_error_not_a_hang():
    server = images.ImageServer(browser_path="/nonexistent/chromium")
    fig = chart_files.go.Figure(chart_files.go.Bar(x=["a"], y=[1]))
    with pytest.raises(images.ImagesUnavailable, match="Chromium"):
        server.render(images.ImageJob(fig, "png"))
    assert "CSV, XLSX" in server.failure


# ---------------------------------------------------------------- data and disclosure


def _small_counts_store(tmp_path, name_s1="Service 1"):
    day = dt.date(2024, 6, 1)
    cases = ([handmade.case(service_id="S1", gender="female", referral_date=day)
              for _ in range(30)]
             + [handmade.case(service_id="S1", gender="male", referral_date=day)
                for _ in range(2)]
             + [handmade.case(service_id="S1", gender="non_binary", referral_date=day)
                for _ in range(8)])
    for sid in ("S2", "S3", "S4", "S5", "S6"):
        cases += [handmade.case(service_id=sid, gender="female", referral_date=day)
                  for _ in range(20)]
        cases += [handmade.case(service_id=sid, gender="male", referral_date=day)
                  for _ in range(6)]
    services = [dict(s, name=name_s1) if s["service_id"] == "S1" else s
                for s in handmade.SERVICES]
    return handmade.build(tmp_path / "small.duckdb", cases, services=services)


def test_csv_shows_no_count_from_1_to_4(tmp_path):
    store = db.Store(_small_counts_store(tmp_path))
    scope = selection.scope_for(store, services=["S1"])
    res = run(store, "equality/cases_by_gender", scope, audience=manager("S1"))
    stamp, table = csv_sections(chart_files.to_csv(res, MARKING))

    header, rows = table[0], table[1:]
    by_gender = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    # By hand: 30 female, 2 male, 8 non-binary, 0 not recorded, 40 in all. Male is under
    # 5 (shown "<5"); non-binary, the next smallest, is withheld so 40 - 30 cannot give it.
    assert by_gender["Female"]["Cases"] == "30"
    assert by_gender["Male"]["Cases"] == "<5"
    assert by_gender["Non-binary"]["Cases"] == "–"
    assert by_gender["Male"]["Share of cases"] == "–"
    assert by_gender["Female"]["Share of cases"] == "75.0"
    assert {r["All cases referred"] for r in by_gender.values()} == {"40"}
    # All services: 30 + 5*20 female of 40 + 5*26 = 170 cases, each count perturbed
    # (applied by hand): the benchmark spans other services.
    female = by_hand.perturb(*by_hand.truth(
        store.path, "select count(*), sum(record_key) from store.cases where gender = 'female'"))
    total = by_hand.perturb(*by_hand.truth(
        store.path, "select count(*), sum(record_key) from store.cases"))
    assert by_gender["Female"]["Share of cases: All services"] == str(
        round(female / total * 100, 1))
    for row in rows:
        for cell in row:
            if re.fullmatch(r"\d+", cell):
                assert not 1 <= int(cell) <= 4, f"small count {cell} in {row}"
    assert stamp["Suppression"].startswith("Small numbers withheld (4 values)")
    assert stamp["Protective marking"] == MARKING
    assert stamp["Query"] == "equality/cases_by_gender"
    assert stamp["Scope"] == "Service 1 (S1)"
    assert stamp["Data as of"] == "2025-03-31"
    assert stamp["Period"].startswith("financial year 2024-25")
    assert "Synthetic" in stamp["Warning"]


def test_xlsx_carries_the_same_suppression_and_an_about_sheet(tmp_path):
    store = db.Store(_small_counts_store(tmp_path))
    scope = selection.scope_for(store, services=["S1"])
    res = run(store, "equality/cases_by_gender", scope, audience=manager("S1"))
    wb = openpyxl.load_workbook(io.BytesIO(chart_files.to_xlsx(res, MARKING)))
    data = wb["Data"]
    rows = list(data.iter_rows(values_only=True))
    header = rows[0]
    cases = {r[0]: r[header.index("Cases")] for r in rows[1:]}
    assert cases == {"Female": 30, "Male": "<5", "Non-binary": "–", "Not recorded": 0}
    about = {r[0]: r[1] for r in wb["About"].iter_rows(values_only=True)}
    assert about["Protective marking"] == MARKING
    assert about["Title"] == "Gender of clients"
    assert about["Suppression"].startswith("Small numbers withheld")


def _service_names_query(tmp_path, monkeypatch):
    queries = tmp_path / "queries"
    shutil.copytree(settings_mod.ROOT / "queries", queries)
    (queries / "overview" / "cases_by_service.sql").write_text(
        "/*---\ntitle: Cases by service\ndescription: Cases at each service.\n"
        "page: overview\nchart: table\ncounts: [cases]\n"
        "labels:\n  service_name: '@Service'\nbenchmark: false\n---*/\n"
        "select s.name as service_name, count(*) as cases\n"
        "from cases c join services s using (service_id)\ngroup by all\n")
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))


def test_formulas_in_service_names_are_neutralised_in_csv(tmp_path, monkeypatch):
    _service_names_query(tmp_path, monkeypatch)
    store = db.Store(_small_counts_store(tmp_path, name_s1=EVIL))
    scope = selection.scope_for(store, services=["S1"])
    assert scope.label == EVIL + " (S1)"
    res = run(store, "overview/cases_by_service", scope, audience=manager("S1"))
    stamp, table = csv_sections(chart_files.to_csv(res, MARKING))
    assert stamp["Scope"] == "'" + EVIL + " (S1)"
    assert table[0][0] == "'@Service"  # a header cell from the query's labels
    assert table[1] == ["'" + EVIL, "40"]
    text = chart_files.to_csv(res, MARKING).decode("utf-8-sig")
    assert not re.search(r'(^|,)"?=', text, re.M), "a cell opens with ="


def test_formulas_in_service_names_are_neutralised_in_xlsx(tmp_path, monkeypatch):
    _service_names_query(tmp_path, monkeypatch)
    store = db.Store(_small_counts_store(tmp_path, name_s1=EVIL))
    scope = selection.scope_for(store, services=["S1"])
    res = run(store, "overview/cases_by_service", scope)
    wb = openpyxl.load_workbook(io.BytesIO(chart_files.to_xlsx(res, MARKING)))
    cell = wb["Data"]["A2"]
    assert cell.data_type == "s" and cell.value == "'" + EVIL
    assert wb["Data"]["A1"].value == "'@Service"
    scope_cell = next(r[1] for r in wb["About"].iter_rows() if r[0].value == "Scope")
    assert scope_cell.data_type == "s" and not scope_cell.value.startswith("=")
    for sheet in wb:
        for row in sheet.iter_rows():
            for c in row:
                assert c.data_type != "f", f"formula in {sheet.title}!{c.coordinate}"


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_safe_cell_neutralises_every_formula_opener(value):
    assert chart_files.safe_cell(value) == "'" + value
    assert chart_files.safe_cell("plain") == "plain"
    assert chart_files.safe_cell(-3) == -3  # our own numbers stay numbers


# ---------------------------------------------------------------- the report pack


def _cases_in(store, services, year_start=2024) -> int:
    """Counted straight from the stored table, not through the app's query files, and
    perturbed by hand (a commissioner's pack shows every count perturbed)."""
    frame = store.query(
        "select count(*) as n, sum(record_key) as k from store.cases "
        "where list_contains($s, service_id) and referral_date between $a and $b",
        {"s": services, "a": dt.date(year_start, 4, 1),
         "b": dt.date(year_start + 1, 3, 31)}).frame
    return by_hand.perturb(int(frame["n"][0]), int(frame["k"][0]))


def test_pack_has_every_chosen_chart_the_headline_and_services_side_by_side(sample_env):
    store = db.Store(sample_env)
    cfg = settings_mod.get()
    scope = selection.scope_for(store, services=["S03", "S07"])
    findings = [SimpleNamespace(title="Offer whole-family support",
                                message="Most families are known to social care.",
                                recommendation="Work with the whole family.",
                                evidence="61% of clients had children.", confidence="high")]
    pack = report_pack.build(store, scope, selection.period_for(FY), cfg,
                             pages=["children", "marac"], findings=findings)
    assert pack.omitted == []
    text = pdf_text(pack.pdf)
    titles = [e.spec.title for p in ("children", "marac")
              for e in catalog.for_page(cfg.queries_dir, p)]
    assert len(titles) >= 8
    for title in titles:
        assert re.sub(r"\s+", " ", title) in text, title
    assert "Headline figures" in text and "Cases referred" in text
    names = selection.services_table(store).filter(
        pl.col("service_id").is_in(["S03", "S07"]))["name"].to_list()
    assert "Services side by side" in text
    for name in names:
        assert name in text
    for sid in (["S03", "S07"], ["S03"], ["S07"]):
        assert f"{_cases_in(store, sid):,}" in text
    assert MARKING in text and "Synthetic sample data" in text
    assert "Data as of: 2025-03-31" in text
    assert "Offer whole-family support" in text and "Recommendation: Work with" in text
    assert "Omitted" not in text
    assert len(PdfReader(io.BytesIO(pack.pdf)).pages) >= 5


def test_pack_lists_a_broken_chart_and_still_builds(sample_env, tmp_path, monkeypatch):
    queries = tmp_path / "queries"
    shutil.copytree(settings_mod.ROOT / "queries", queries)
    broken = queries / "children" / "families_by_social_care.sql"
    # A run-time failure (an unknown column); an unknown table is refused at load.
    broken.write_text(broken.read_text().replace("and {{measure.with_children.numerator}}",
                                              "and no_such_column", 1))
    (queries / "children" / "zz_unreadable.sql").write_text("select 1\n")
    monkeypatch.setenv("SI_QUERIES_DIR", str(queries))
    cfg = settings_mod.get()
    store = db.Store(sample_env)
    scope = selection.scope_for(store, areas=["E06000001"])
    pack = report_pack.build(store, scope, selection.period_for(FY), cfg,
                             pages=["children"])
    omitted = {o.item: o.reason for o in pack.omitted}
    broken_title = catalog.get(queries, "children/families_by_social_care").spec.title
    assert set(omitted) == {broken_title, "queries/children/zz_unreadable.sql"}
    assert "no_such_column" in omitted[broken_title]
    text = pdf_text(pack.pdf)
    assert "Omitted" in text and "zz_unreadable.sql" in text
    others = [e.spec.title for e in catalog.for_page(queries, "children")
              if e.spec and e.id != "children/families_by_social_care"]
    for title in others:
        assert title in text


def test_pack_without_chromium_keeps_the_text_and_lists_the_images(sample_env):
    store = db.Store(sample_env)
    cfg = settings_mod.get()
    scope = selection.scope_for(store, services=["S03"])
    pack = report_pack.build(store, scope, selection.period_for(FY), cfg, pages=["risk"],
                             image_server=images.ImageServer(browser_path="/nonexistent"))
    titles = [e.spec.title for e in catalog.for_page(cfg.queries_dir, "risk")]
    assert len(pack.omitted) == len(titles)
    assert all("(image)" in o.item and "Chromium" in o.reason for o in pack.omitted)
    text = pdf_text(pack.pdf)
    for title in titles:
        assert title in text


def test_services_side_by_side_hide_a_lone_small_count(tmp_path):
    # S1 has 2 cases, S2 30, S3 12 (area A): beside the area's total of 44, "<5" for S1
    # alone would give 44 - 30 - 12 = 2, so S3 (the next smallest) is withheld too.
    day = dt.date(2024, 6, 1)
    cases = ([handmade.case(service_id="S1", referral_date=day) for _ in range(2)]
             + [handmade.case(service_id="S2", referral_date=day) for _ in range(30)]
             + [handmade.case(service_id="S3", referral_date=day) for _ in range(12)]
             + [handmade.case(service_id="S4", referral_date=day) for _ in range(20)])
    store = db.Store(handmade.build(tmp_path / "s.duckdb", cases))
    area = selection.scope_for(store, areas=["E0000000A"])
    own = manager("S1", "S2", "S3")
    each = [run(store, "home/headline_figures", s, audience=own)
            for s in selection.each_service(store, area)]
    extra = report_pack.across_services(each, "cases")
    assert extra == [set(), set(), {None}]
    header, rows = report_pack._side_by_side_table(each)
    cases_row = next(r for r in rows if r[0] == "Cases referred")
    assert cases_row[1:] == ["<5", "30", "–"]


# ---------------------------------------------------------------- the command line


def test_cli_export_writes_a_pack(sample_env, tmp_path, capsys):
    out = tmp_path / "monthly" / "pack.pdf"
    rc = cli.main(["export", "--area", "E06000001", "--year", FY, "--pages", "overview",
                   "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    reader = PdfReader(out)
    assert len(reader.pages) >= 3
    assert "Headline figures" in pdf_text(out.read_bytes())
    assert not list(out.parent.glob(".*part"))


def test_cli_exports_one_chart(sample_env, tmp_path, capsys):
    out = tmp_path / "chart.xlsx"
    rc = cli.main(["export", "--service", "S01", "--year", FY, "--query",
                   "children/whole_family_support_by_social_care", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Data", "About"]


def test_cli_refuses_unknown_codes_and_writes_nothing(sample_env, tmp_path, capsys):
    out = tmp_path / "pack.pdf"
    rc = cli.main(["export", "--area", "E09999999", "--year", FY, "--out", str(out)])
    assert rc == 1 and not out.exists()
    assert "unknown area code E09999999" in capsys.readouterr().err


def test_the_pack_page_gives_the_command_for_the_same_selection():
    from service_insights.catalogue import periods, selection
    from service_insights.catalogue.scope import Scope
    from service_insights.ui import downloads

    one = selection.Selection(Scope(("S03",), ("E06000002",), True, "x"),
                               periods.quarter("2024-25", 2))
    assert downloads.cli_hint(one) == (
        "service-insights export --service S03 --year 2024-25 --quarter 2 --out pack.pdf")
    area = selection.Selection(Scope(("S01", "S02"), ("E06000001",), False, "a"),
                                periods.financial_year("2023-24"))
    assert downloads.cli_hint(area) == (
        "service-insights export --area E06000001 --year 2023-24 --out pack.pdf")
    custom = selection.Selection(area.scope, periods.custom(dt.date(2024, 5, 1),
                                                             dt.date(2024, 6, 1)))
    assert "not custom dates" in downloads.cli_hint(custom)
