"""No lazy imports on session threads (issue 16: a session got "partially initialized
module 'pandas' has no attribute 'Series'" when Query health imported pandas while two
other sessions built charts). After serving.preload(), drawing every page imports no
further module of the libraries the pages use: checked in a fresh interpreter, by the
modules Python has loaded before and after."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

WATCHED = ("pandas", "pyarrow", "plotly", "polars", "numpy", "kaleido", "fpdf", "openpyxl",
           "duckdb", "sqlglot", "yaml", "service_insights")

_SCRIPT = """
import json, sys
from service_insights import serving
serving.preload()
before = set(sys.modules)
from streamlit.testing.v1 import AppTest
loaded_by_testing = set(sys.modules) - before
pages = ["home", "overview", "children", "marac", "risk", "needs", "equality", "findings",
         "compare", "report_pack", "query_health"]
errors = []
for page in pages:
    at = AppTest.from_file("dashboard.py", default_timeout=120)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    errors += [f"{page}: {e.value}" for e in at.exception]
new = sorted(set(sys.modules) - before - loaded_by_testing)
print(json.dumps({"new": new, "errors": errors}))
"""


def test_after_preload_no_page_imports_a_library_module(app_env, tmp_path):
    env = {**os.environ, "SI_DB_PATH": str(app_env), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    late = [m for m in report["new"] if m.split(".")[0] in WATCHED]
    assert late == [], f"imported during a page run, not at start: {late}"
