"""Where a rerun's time goes under concurrency: server-side wall time and CPU of every
script run, per session, written as JSON lines when SI_RUN_LOG names a file.

The load test (benchmarks/load.py) reads this file to report server-side rerun p50/p95
and CPU per run, separately from what its clients wait for end to end: a client's wait
includes queueing behind other sessions (one process runs Python one thread at a time),
a script run's own time does not. CPU is the script thread's own (time.thread_time), so
another session's work on another thread is not counted in this one.

Off (no file, no cost beyond two clock reads) unless SI_RUN_LOG is set.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from streamlit.runtime.scriptrunner import get_script_run_ctx

_LOCK = threading.Lock()


def log_path() -> str | None:
    return os.environ.get("SI_RUN_LOG") or None


def _session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


@contextmanager
def timed_run(page: str = "") -> Iterator[dict]:
    """Time one script run (the router wraps itself in this). The yielded dict may be
    given more fields (the page that ran); it is written even when the run ends by
    st.stop or st.rerun (both raise through here)."""
    record: dict = {"page": page}
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    outcome = "finished"
    try:
        yield record
    except BaseException as exc:
        # st.rerun and st.stop end a run by raising; they are not errors.
        name = type(exc).__name__
        outcome = {"RerunException": "rerun", "StopException": "stopped"}.get(name, name)
        raise
    finally:
        path = log_path()
        if path:
            record.update(ts=time.time(), pid=os.getpid(), session=_session_id(),
                          wall_s=round(time.perf_counter() - wall0, 4),
                          cpu_s=round(time.thread_time() - cpu0, 4), outcome=outcome)
            line = json.dumps(record) + "\n"
            with _LOCK:  # one line per run, whole, whatever the other sessions write
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)


def read(path: str) -> list[dict]:
    """The records in a run log (a torn last line from a killed server is skipped)."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        return []
    return out
