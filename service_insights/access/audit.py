"""The audit log: who signed in, exported or imported what, and when; never the data.

One JSON object per line, appended with O_APPEND so concurrent sessions do not
interleave, in a file outside the database (the store is opened read-only by the app,
and an audit trail must survive a store being rebuilt). Details hold identifiers of what
was done (query id, scope label, file name and hash, row counts), never values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from service_insights.settings import ROOT

FORBIDDEN_DETAIL_KEYS = frozenset({"password", "data", "rows", "frame", "values", "sql_result"})


def path() -> Path:
    return Path(os.environ.get("SI_AUDIT_LOG", ROOT / "data" / "audit.log"))


def record(who: str, action: str, **details: object) -> None:
    """Append one event. Values must be identifiers or counts, not case data."""
    bad = FORBIDDEN_DETAIL_KEYS & set(details)
    if bad:
        raise ValueError(f"audit details may not include {sorted(bad)}")
    event = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "who": who,
             "action": action, **{k: _plain(v) for k, v in details.items()}}
    line = (json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n").encode()
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def problem() -> str | None:
    """Why the audit log cannot be written right now, in one sentence, or None.

    Exports are refused when they could not be recorded, so the screen asks before
    offering one. The probe opens the log for appending as a write would (creating it
    empty if missing, writing nothing): a permission check alone would say yes to root on
    a read-only file system."""
    p = path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as exc:
        return (f"Downloads are off because every download is recorded in the audit log, "
                f"and {p} cannot be written ({exc.strerror or exc}): ask whoever runs "
                "Service Insights to make that folder writable.")
    return None


def _plain(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def read(limit: int | None = None) -> list[dict]:
    p = path()
    if not p.exists():
        return []
    lines = p.read_text(encoding="utf-8").splitlines()
    if limit:
        lines = lines[-limit:]
    return [json.loads(line) for line in lines if line.strip()]
