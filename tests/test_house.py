"""The house rule that holds the layout together: the core runs without Streamlit.

Checked in a fresh interpreter, because this test process has already imported Streamlit
for the page tests."""

import os
import subprocess
import sys

from service_insights import settings


def _fresh(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=settings.ROOT, capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_cli_and_report_pack_import_without_streamlit():
    code = ("import sys\n"
            "import service_insights.cli, service_insights.exports.report_pack\n"
            "print('streamlit' in sys.modules)\n")
    assert _fresh(code) == "False"


def test_a_cli_report_pack_is_built_without_streamlit(sample_db, tmp_path):
    out = tmp_path / "pack.pdf"
    code = ("import sys\n"
            "from service_insights import cli\n"
            f"rc = cli.main(['export', '--service', 'S01', '--year', '2024-25', "
            f"'--pages', 'overview', '--out', {str(out)!r}])\n"
            "print(rc, 'streamlit' in sys.modules)\n")
    last = _fresh(code, SI_DB_PATH=str(sample_db), SI_AUDIT_LOG=str(tmp_path / "audit.log"))
    assert last == "0 False"
    assert out.read_bytes().startswith(b"%PDF")
