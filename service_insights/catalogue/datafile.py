"""The editable YAML files under data/ (reference figures, measures), read once per
version of the file.

Charts and findings ask for these on every run, so each file is parsed only when its
modification time changes; an edit takes effect at the next run without a restart. A
missing or malformed file is one plain sentence naming it, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

T = TypeVar("T")

_cache: dict[str, tuple[tuple[str, int], object]] = {}
"""Per kind of file: the (path, mtime) last read and what it parsed to."""


def load(p: Path, what: str, parse: Callable[[dict, Path], T],
         error: type[Exception]) -> T:
    """`parse(data, p)` of the YAML at `p`, from the cache while the file is unchanged.
    `what` names the file in messages ("reference figures", "measures") and keys the
    cache; `parse` raises `error` for a bad entry."""
    try:
        stamp = (str(p), p.stat().st_mtime_ns)
    except FileNotFoundError as exc:
        raise error(f"the {what} file {p} does not exist") from exc
    hit = _cache.get(what)
    if hit is not None and hit[0] == stamp:
        return hit[1]  # type: ignore[return-value]
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise error(f"{p} is not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise error(f"{p} must be a list of named entries (key: block), not "
                    f"{type(data).__name__}")
    out = parse(data, p)
    _cache[what] = (stamp, out)
    return out
