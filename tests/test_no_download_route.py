"""Every download goes through the export path (issue 12, item 5): no table or figure on
screen offers Streamlit's or Plotly's own download. The browser proof is in
tests/browser/test_download_routes.py; these check the wiring that proof depends on."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit import file_util
from streamlit.testing.v1 import AppTest

from service_insights import settings
from service_insights.ui import tables

ROOT = settings.ROOT
BROWSER_CODE = [ROOT / "dashboard.py", *sorted((ROOT / "app_pages").glob("*.py")),
                *sorted((ROOT / "service_insights" / "ui").glob("*.py"))]
TABLE_CALLS = {"dataframe", "data_editor", "table"}


def test_the_dashboards_own_config_turns_streamlits_data_export_off():
    dashboard = ROOT / "dashboard.py"
    # Streamlit reads this file as the script-level config of dashboard.py, from any cwd.
    script_config = Path(file_util.get_main_script_streamlit_file_path(str(dashboard),
                                                                      "config.toml"))
    assert script_config == ROOT / ".streamlit" / "config.toml"
    assert tomllib.loads(script_config.read_text())["client"]["disableDataExport"] is True
    # The option exists under that name in the installed Streamlit (a rename would
    # otherwise be ignored with only a log warning).
    assert "client.disableDataExport" in st_config.get_config_options()


def _calls(path: Path) -> list[tuple[int, str, ast.Call]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.lineno, node.func.attr, node) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]


def test_no_page_draws_a_table_except_through_tables_show():
    found = [f"{p.relative_to(ROOT)}:{line} .{name}()" for p in BROWSER_CODE
             if p.name != "tables.py" for line, name, _ in _calls(p) if name in TABLE_CALLS]
    assert found == [], "draw tables with service_insights.ui.tables.show"


def test_every_figure_on_screen_goes_without_plotlys_image_download():
    charts = [(p, line, call) for p in BROWSER_CODE for line, name, call in _calls(p)
              if name == "plotly_chart"]
    assert charts, "the dashboard draws Plotly figures"
    for path, line, call in charts:
        config = {k.arg: ast.unparse(k.value) for k in call.keywords}.get("config")
        assert config == "tables.FIGURE_CONFIG", f"{path.name}:{line}"
    assert "toImage" in tables.FIGURE_CONFIG["modeBarButtonsToRemove"]


def _one_table():
    import polars as pl

    from service_insights.ui import tables

    tables.show(pl.DataFrame({"area": ["A", "B"], "cases": [12, 30]}))


@pytest.fixture
def export_option():
    before = st_config.get_option(tables.EXPORT_OPTION)
    yield
    st_config.set_option(tables.EXPORT_OPTION, before)


def test_with_the_option_on_a_table_is_an_interactive_table(export_option):
    st_config.set_option(tables.EXPORT_OPTION, True)
    at = AppTest.from_function(_one_table).run()
    assert not at.exception
    assert len(at.dataframe) == 1 and len(at.table) == 0


def test_with_the_option_turned_off_a_table_is_static_and_the_option_comes_back(
        export_option):
    """A deployment that turns the option off (a flag wins over the config file) still
    gets no toolbar: the table is static HTML, and the next run has the option on."""
    st_config.set_option(tables.EXPORT_OPTION, False)
    at = AppTest.from_function(_one_table).run()
    assert not at.exception
    assert len(at.dataframe) == 0 and len(at.table) == 1
    assert st_config.get_option(tables.EXPORT_OPTION) is True
    at.run()
    assert len(at.dataframe) == 1 and len(at.table) == 0
