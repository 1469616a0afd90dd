"""The load test's short version (issue 16): five sessions for a minute, each switching
pages and filters, against two dashboard processes behind Debian's nginx; no errors.

It drives benchmarks/load.py's protocol client (no browsers), so it checks that many
sessions at once get every run they ask for, through the real proxy, without an exception
or an error box. Times and memory are printed, never asserted (benchmarks/ holds targets).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import load  # noqa: E402  benchmarks/load.py

pytestmark = [pytest.mark.load,
              pytest.mark.skipif(not Path("/usr/sbin/nginx").exists(),
                                 reason="needs Debian's nginx: apt-get install -y nginx")]

SESSIONS = 5
DURATION_S = 60


def test_five_sessions_for_a_minute_behind_nginx_have_no_errors(sample_db, tmp_path: Path):
    r = load.measure(sample_db, 2, SESSIONS, DURATION_S, "8k", tmp_path)
    load.print_rounds([r])
    assert r.errors == []
    # Every session kept clicking for the whole minute (about one click every 2 s each).
    assert r.actions >= SESSIONS * DURATION_S / 6
    # The servers' own log (each process appends one line per finished script run) has a
    # run for every click the clients saw finish: nothing was answered from nowhere.
    assert r.runs >= r.actions
    # Each session stayed on one process (nginx's si_route cookie), as its state needs.
    pid_of: dict[str, set[int]] = {}
    for rec in load.run_timing.read(str(tmp_path / "runs-2.jsonl")):
        pid_of.setdefault(rec["session"], set()).add(rec["pid"])
    assert len(pid_of) >= SESSIONS
    assert all(len(pids) == 1 for pids in pid_of.values())
