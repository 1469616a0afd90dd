"""UK financial years (April to March) and their quarters, as date ranges for queries.

The SQL views carry the same rule (data/schema.sql); tests hold the two together.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_FY = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date
    """Inclusive: queries use `between $period_start and $period_end`."""
    label: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def slug(self) -> str:
        """A file-name-safe form of the label, for export names."""
        return re.sub(r"[^0-9A-Za-z]+", "-", self.label).strip("-").lower()


def fy_start_year(day: dt.date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def fy_label(start_year: int) -> str:
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def parse_fy(label: str) -> int:
    """'2024-25' -> 2024; anything else is an error naming the expected form."""
    m = _FY.match(label.strip())
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ValueError(f"financial year {label!r} should look like 2024-25")
    return int(m.group(1))


def financial_year(label_or_start: str | int) -> Period:
    y = parse_fy(label_or_start) if isinstance(label_or_start, str) else label_or_start
    return Period(dt.date(y, 4, 1), dt.date(y + 1, 3, 31), f"financial year {fy_label(y)}")


def quarter(fy: str | int, q: int) -> Period:
    """Quarter q (1 = April to June ... 4 = January to March) of a financial year."""
    if q not in (1, 2, 3, 4):
        raise ValueError(f"quarter {q!r} should be 1, 2, 3 or 4")
    y = parse_fy(fy) if isinstance(fy, str) else fy
    month = 4 + 3 * (q - 1)
    year = y + (month > 12)
    month = (month - 1) % 12 + 1
    start = dt.date(year, month, 1)
    next_start = dt.date(year + (month == 10), (month + 2) % 12 + 1, 1)
    return Period(start, next_start - dt.timedelta(days=1), f"{fy_label(y)} Q{q}")


def custom(start: dt.date, end: dt.date) -> Period:
    return Period(start, end, f"{start:%d %b %Y} to {end:%d %b %Y}")


def financial_years_between(first: dt.date, last: dt.date) -> list[str]:
    """Labels of every financial year touching [first, last], newest first."""
    return [fy_label(y) for y in range(fy_start_year(last), fy_start_year(first) - 1, -1)]
