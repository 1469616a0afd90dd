"""National figures and expected ranges, read from one editable file.

Charts draw them as reference lines and finding rules bind them as parameters, so a
threshold such as the expected Marac repeat range is changed in one place
(data/reference.yaml, or the file SI_REFERENCE_FILE names) and every chart, finding and
note follows. Each figure keeps its source, which the product shows beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from service_insights.catalogue import datafile
from service_insights.settings import ROOT

DEFAULT_PATH = ROOT / "data" / "reference.yaml"


@dataclass(frozen=True)
class Figure:
    key: str
    value: float
    label: str
    source: str
    unit: str = "%"


class ReferenceError(ValueError):
    pass


def path() -> Path:
    return Path(os.environ.get("SI_REFERENCE_FILE", DEFAULT_PATH))


def _parse(data: dict, p: Path) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    for key, item in data.items():
        if not isinstance(item, dict) or not isinstance(item.get("value"), int | float):
            raise ReferenceError(f"{p}: '{key}' needs a numeric 'value'")
        out[str(key)] = Figure(str(key), float(item["value"]), str(item.get("label", key)),
                               str(item.get("source", "")), str(item.get("unit", "%")))
    return out


def figures() -> dict[str, Figure]:
    """Every reference figure by key; re-read when the file changes."""
    return datafile.load(path(), "reference figures", _parse, ReferenceError)


def version() -> tuple[str, int]:
    """Changes when the reference file does: part of cache keys."""
    p = path()
    try:
        return (str(p), p.stat().st_mtime_ns)
    except FileNotFoundError:
        return (str(p), 0)


def names() -> frozenset[str]:
    return frozenset(figures())


def get(key: str) -> Figure:
    try:
        return figures()[key]
    except KeyError as exc:
        raise ReferenceError(f"no reference figure '{key}' in {path()}") from exc
