"""Exports name what they show, and the command line acts as someone (issue 13, items 5-6).

The service names and ids below are the sample's own (store/synth.py registers them);
expected scopes are written out by hand, never read back from the exporter.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

import openpyxl
import pytest
import yaml
from pypdf import PdfReader

from service_insights import cli, settings
from service_insights.access import accounts, acting, audit, grants
from service_insights.catalogue import catalog, periods, results, selection
from service_insights.exports import chart_files, report_pack
from service_insights.store import db
from tests.conftest import app_test

FY = "2024-25"
QUERY = "equality/cases_by_gender"
S01 = "Ashcombe Idva Service (S01)"
AREA_2 = "Brindlehurst (E06000002)"


@pytest.fixture
def users(tmp_path, monkeypatch, sample_db):
    """A service manager for S01, a commissioner for Brindlehurst (S03, S04)."""
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {
        "sam": {"role": "service_manager", "services": ["S01"]},
        "cat": {"role": "commissioner", "areas": ["E06000002"]},
    }}))
    monkeypatch.setenv("SI_USERS_FILE", str(path))
    monkeypatch.setenv("SI_DB_PATH", str(sample_db))
    return path


def csv_stamp(path) -> dict[str, str]:
    return csv_text_stamp(path.read_bytes())


def pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)


# ---------------------------------------------------------------- exports name what they show


def test_a_service_managers_dashboard_selection_names_the_service(app_env):
    sam = grants.Viewer("sam", "service_manager", ("S01",), ("E06000001",))
    at = app_test()
    at.session_state["viewer"] = sam  # signed in, nothing chosen in the sidebar
    at.run()
    assert not at.exception
    scope = at.session_state["selection"].scope
    assert scope.label == S01
    assert (scope.services, scope.by_service) == (("S01",), True)

    store = db.Store(app_env)
    cfg = settings.get()
    spec = catalog.get(cfg.queries_dir, QUERY).spec
    res = results.run(store, spec, scope, periods.financial_year(FY), cfg)
    assert csv_text_stamp(chart_files.to_csv(res, "OFFICIAL"))["Scope"] == S01
    assert chart_files.file_name(res, "csv") == (
        "equality-cases_by_gender_ashcombe-idva-service-s01_financial-year-2024-25.csv")
    figure = chart_files.export_figure(res, "OFFICIAL")
    assert S01 in figure.layout.title.subtitle.text, "the image's subtitle"
    assert figure.data[0].name == S01, "the image's legend"
    assert "Your service" not in json.dumps(figure.to_plotly_json())
    image_pdf = pdf_text(chart_files.to_image(res, "pdf", "OFFICIAL"))  # drawn by Chromium
    assert f"{S01} · financial year 2024-25" in image_pdf, "subtitle"
    assert f"{S01} All services" in image_pdf, "legend"

    book = openpyxl.load_workbook(io.BytesIO(chart_files.to_xlsx(res, "OFFICIAL")))
    about = {r[0].value: r[1].value for r in book["About"].iter_rows()}
    assert about["Scope"] == S01

    pack = report_pack.build(store, scope, periods.financial_year(FY), cfg,
                             pages=["equality"])
    assert "s01" in pack.file_name and pack.file_name.startswith("report-pack_")
    cover = PdfReader(io.BytesIO(pack.pdf)).pages[0].extract_text()
    assert "Ashcombe Idva Service (S01)" in cover
    assert "Your service" not in pdf_text(pack.pdf)


def csv_text_stamp(data: bytes) -> dict[str, str]:
    """The `Field,Value` lines before the first empty line."""
    stamp = {}
    for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))):
        if not row:
            break
        stamp[row[0]] = row[1]
    return stamp



def test_a_commissioners_default_scope_names_the_area(app_env):
    cat = grants.Viewer("cat", "commissioner", ("S03", "S04"), ("E06000002",))
    at = app_test()
    at.session_state["viewer"] = cat
    at.run()
    assert not at.exception
    scope = at.session_state["selection"].scope
    assert (scope.label, scope.services, scope.by_service) == (AREA_2, ("S03", "S04"), False)


def test_a_clamped_scope_never_says_your_service():
    sam = grants.Viewer("sam", "service_manager", ("S01",), ("E06000001",))
    assert grants.clamp(selection.ALL_SERVICES, sam).label == "Service S01"
    asked = selection.Scope(("S01", "S02"), ("E06000001",), True, "Two services")
    narrowed = grants.clamp(asked, sam)
    assert (narrowed.services, narrowed.label) == (("S01",), "Service S01")
    cat = grants.Viewer("cat", "commissioner", ("S03", "S04"), ("E06000002",))
    assert grants.clamp(selection.ALL_SERVICES, cat).label == "Area E06000002"


def test_many_services_are_named_by_id(sample_db):
    store = db.Store(sample_db)
    four = selection.scope_for(store, services=["S04", "S01", "S02", "S03"])
    assert four.label == "4 services: S01, S02, S03, S04"
    two = selection.scope_for(store, areas=["E06000002", "E06000001"])
    assert two.label == "Ashcombe (E06000001), Brindlehurst (E06000002)"


# ---------------------------------------------------------------- the command line acts as someone


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["export", "--year", FY, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_service_manager_asking_for_another_service_is_refused(users, tmp_path, capsys):
    out = tmp_path / "attack.csv"
    code, _, err = run_cli(capsys, "--as", "sam", "--service", "S02", "--query", QUERY,
                           "--out", str(out))
    assert code == 1
    assert one_sentence(err) == ("export: sam (service manager) may export S01 only, not S02; "
                                 "nothing was exported.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.log", "users.yaml"], (
        "no file, not even a partial one")
    event = audit.read()[-1]
    assert (event["action"], event["as_user"], event["services"]) == (
        "export_refused", "sam", ["S02"])


@pytest.mark.parametrize("asked", [["--service", "S01", "--service", "S02"],
                                   ["--area", "E06000001"], ["--area", "E06000002"]],
                         ids=["own-and-another", "own-area", "other-area"])
def test_a_service_manager_gets_nothing_beyond_their_service(users, tmp_path, capsys, asked):
    out = tmp_path / "pack.pdf"
    code, _, err = run_cli(capsys, "--as", "sam", *asked, "--out", str(out))
    assert code == 1 and not out.exists()
    assert one_sentence(err).startswith("export: sam (service manager) may export S01 only")


def test_a_service_manager_with_no_scope_exports_their_own_service(users, tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "--as", "SAM", "--query", QUERY, "--format", "csv")
    assert code == 0, err
    assert "administrator" not in err
    written = (tmp_path /
               "equality-cases_by_gender_ashcombe-idva-service-s01_financial-year-2024-25.csv")
    assert csv_stamp(written)["Scope"] == S01
    event = audit.read()[-1]
    assert (event["action"], event["acting_as"], event["acting_role"], event["scope"]) == (
        "export", "sam", "service_manager", S01)
    assert event["os_user"] == event["who"] and event["os_user"]


def test_a_commissioner_exports_their_area(users, tmp_path, capsys):
    out = tmp_path / "area.csv"
    code, _, err = run_cli(capsys, "--as", "cat", "--area", "E06000002", "--query", QUERY,
                           "--out", str(out))
    assert code == 0, err
    assert csv_stamp(out)["Scope"] == AREA_2
    out = tmp_path / "s03.csv"
    code, _, err = run_cli(capsys, "--as", "cat", "--service", "S03", "--query", QUERY,
                           "--out", str(out))
    assert code == 0, err
    assert csv_stamp(out)["Scope"] == "Brindlehurst Family Idva (S03)"


def test_a_commissioners_pack_without_a_scope_is_their_area(users, tmp_path, capsys):
    out = tmp_path / "pack.pdf"
    code, stdout, err = run_cli(capsys, "--as", "cat", "--pages", "equality", "--out", str(out))
    assert code in (0, 2), err
    assert f"report pack for {AREA_2}" in stdout
    assert AREA_2 in PdfReader(out).pages[0].extract_text()


@pytest.mark.parametrize("asked", [["--area", "E06000001"], ["--service", "S01"],
                                   ["--area", "E06000001", "--area", "E06000002"]],
                         ids=["other-area", "other-service", "own-and-other-area"])
def test_a_commissioner_is_limited_to_their_areas(users, tmp_path, capsys, asked):
    out = tmp_path / "x.csv"
    code, _, err = run_cli(capsys, "--as", "cat", *asked, "--query", QUERY, "--out", str(out))
    assert code == 1 and not out.exists()
    assert one_sentence(err).startswith(
        "export: cat (commissioner) may export the services in E06000002 only, not ")


def test_an_unknown_user_is_refused(users, tmp_path, capsys):
    out = tmp_path / "x.csv"
    code, _, err = run_cli(capsys, "--as", "mallory", "--query", QUERY, "--out", str(out))
    assert code == 1 and not out.exists()
    assert re.fullmatch(r"export: there is no user 'mallory' in .*users\.yaml \(see "
                        r"`service-insights users list`\); nothing was exported\.",
                        one_sentence(err))


def test_a_disabled_user_is_refused(users, tmp_path, capsys, monkeypatch):
    """Where accounts.User has a `disabled` flag it is honoured; until then the hook is
    exercised with a user record that carries one."""
    if "disabled" in {f.name for f in dataclasses.fields(accounts.User)}:
        sam = dataclasses.replace(accounts.load_users()["sam"], disabled=True)
    else:
        @dataclasses.dataclass(frozen=True)
        class WithFlag(accounts.User):
            disabled: bool = False

        sam = WithFlag("sam", "service_manager", ("S01",), disabled=True)
    monkeypatch.setattr(accounts, "load_users", lambda path=None: {"sam": sam})
    out = tmp_path / "x.csv"
    code, _, err = run_cli(capsys, "--as", "sam", "--query", QUERY, "--out", str(out))
    assert code == 1 and not out.exists()
    assert one_sentence(err) == ("export: user 'sam' is disabled, so nothing is exported as "
                                 "them; nothing was exported.")


def test_without_as_it_says_it_runs_as_an_administrator(users, tmp_path, capsys):
    out = tmp_path / "admin.csv"
    code, _, err = run_cli(capsys, "--service", "S02", "--query", QUERY, "--out", str(out))
    assert code == 0
    assert one_sentence(err) == (
        "export: no --as USER given, so this runs as an administrator and may export every "
        "service; give --as NAME to export with that user's access.")
    assert csv_stamp(out)["Scope"] == "Ashcombe Community Outreach (S02)"
    event = audit.read()[-1]
    assert event["acting_as"] == "administrator (no --as given)"
    assert event["acting_role"] == "admin" and event["os_user"] == event["who"]


def test_viewer_for_uses_the_dashboards_grants(users, sample_db):
    table = selection.services_table(db.Store(sample_db))
    cat = acting.viewer_for("cat", table)
    assert (cat.role, cat.services, cat.areas) == ("commissioner", ("S03", "S04"),
                                                   ("E06000002",))
    assert acting.viewer_for(None, table) is grants.SYSTEM
