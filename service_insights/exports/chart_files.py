"""One chart's exports: its image (PNG, SVG, PDF) and its data (CSV, XLSX), each stamped.

Everything here starts from a ChartResult, so an export carries exactly the protected
numbers the screen shows (disclosure control has already run). Every file says what it
is, whose data, which period, as of when, from which query, under which suppression rule
and protective marking, so it stands on its own once it leaves the dashboard. Text cells
that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import textwrap
from dataclasses import dataclass

import plotly.graph_objects as go
import polars as pl

from service_insights.catalogue import lookback
from service_insights.catalogue.results import ChartResult
from service_insights.exports import images
from service_insights.presentation import captions, charts
from service_insights.protection.disclosure import Protected

DATA_FORMATS = ("csv", "xlsx")
FORMATS = (*images.FORMATS, *DATA_FORMATS)
MIME = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL_XLSX = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


class ExportError(Exception):
    """An export that cannot be made; the message is for the person who asked for it."""


@dataclass(frozen=True)
class Stamp:
    """What every export says about itself, in the order it says it."""

    title: str
    scope: str
    period: str
    data_as_of: str
    query: str
    source: str
    suppression: str
    marking: str
    generated: str
    data_kind: str = ""
    lookback: str = ""

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("Title", self.title),
            ("Scope", self.scope),
            ("Period", self.period),
            ("Data as of", self.data_as_of),
            ("Query", self.query),
            ("Source", self.source),
            ("Suppression", self.suppression),
            ("Protective marking", self.marking),
            ("Generated", self.generated),
        ]
        if self.lookback:
            rows.append(("Look-back", self.lookback))
        if self.data_kind == "synthetic":
            rows.append(("Warning", "Synthetic sample data: not real services or people."))
        return rows


def stamp(res: ChartResult, marking: str, now: dt.datetime | None = None) -> Stamp:
    spec = res.spec
    kind = "synthetic sample" if res.data_kind == "synthetic" else "service records"
    period = res.period
    return Stamp(
        title=spec.title,
        scope=res.scope.label,
        period=f"{period.label} ({period.start:%d/%m/%Y} to {period.end:%d/%m/%Y})",
        data_as_of=res.data_as_of or "unknown",
        query=spec.id,
        source=f"{spec.source or 'Service Insights'} ({kind})",
        suppression=captions.suppression_note(res),
        marking=marking,
        generated=f"{(now or dt.datetime.now()):%Y-%m-%d %H:%M}",
        data_kind=res.data_kind,
        lookback=res.lookback_note,
    )



def file_name(res: ChartResult, ext: str) -> str:
    """`<query-id>_<scope>_<period>.<ext>`, safe on any file system."""
    qid = res.spec.id.replace("/", "-")
    return f"{qid}_{res.scope.slug or 'selection'}_{res.period.slug}.{ext}"


def _require_data(res: ChartResult) -> None:
    if res.error is not None or res.data is None:
        raise ExportError(f"'{res.spec.title}' cannot be exported: "
                          f"{res.error or 'it has no data'}")


# ---------------------------------------------------------------- data


def safe_cell(value: object) -> object:
    """Numbers pass; text that a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def data_table(res: ChartResult) -> tuple[list[str], list[list[object]]]:
    """The protected data as header + rows: the selection's columns, then the benchmark's.

    A value hidden by disclosure control is its display text ("<5" or "–"); every other
    number stays a number (rates and averages to one decimal place). Benchmark columns
    sit beside the y columns they compare with, matched on the chart's categories.
    """
    _require_data(res)
    spec = res.spec
    dims = [d for d in spec.dims if d in res.data.frame.columns]
    if spec.chart == "table":
        dims = [c for c, t in res.data.frame.schema.items() if not t.is_numeric()]
    own_cols = [c for c in res.data.frame.columns]
    own = _cells(res.data, own_cols)
    header = [spec.label(c) for c in own_cols]
    rows = [[own[c][i] for c in own_cols] for i in range(res.data.frame.height)]

    if res.benchmark is not None:
        ycols = [c for c in spec.y if c in res.benchmark.frame.columns]
        theirs = _cells(res.benchmark, ycols)
        keys = _keys(res.benchmark.frame, dims)
        index = {k: i for i, k in enumerate(keys)}
        header += [f"{spec.label(c)}: {res.benchmark_label_for(c)}" for c in ycols]
        own_keys = _keys(res.data.frame, dims)
        for row, key in zip(rows, own_keys, strict=True):
            j = index.get(key)
            row.extend(theirs[c][j] if j is not None else "" for c in ycols)
        # Categories only the benchmark has: show them, with the selection's cells empty.
        for key, j in index.items():
            if key in set(own_keys):
                continue
            row = ["" for _ in own_cols]
            for d, v in zip(dims, key, strict=True):
                row[own_cols.index(d)] = v
            row.extend(theirs[c][j] for c in ycols)
            rows.append(row)
    if res.lookback is not None:
        # A repeat rate's look-back, row by row: "look-back incomplete" or "complete".
        header.append("Look-back")
        x = spec.x if spec.x in own_cols else None
        for row in rows:
            row.append(lookback.row_flag(res, row[own_cols.index(x)] if x else None))
    return header, rows


def _keys(frame: pl.DataFrame, dims: list[str]) -> list[tuple]:
    cols = [frame[d].to_list() for d in dims]
    return [tuple(c[i] for c in cols) for i in range(frame.height)]


def _cells(protected: Protected, columns: list[str]) -> dict[str, list[object]]:
    shown = protected.display()
    out: dict[str, list[object]] = {}
    for col in columns:
        values = protected.frame[col].to_list()
        hidden = protected.hidden.get(col, [False] * len(values))
        cells: list[object] = []
        for value, hid, text in zip(values, hidden, shown[col].to_list(), strict=True):
            if hid or value is None:
                cells.append(text)
            elif isinstance(value, float):
                cells.append(round(value, 1))
            elif isinstance(value, dt.date):
                cells.append(value.isoformat())
            else:
                cells.append(value)
        out[col] = cells
    return out


def to_csv(res: ChartResult, marking: str, now: dt.datetime | None = None) -> bytes:
    """UTF-8 CSV (with BOM, so Excel reads it as UTF-8).

    Layout: one `Field,Value` line per stamp entry (Title, Scope, Period, Data as of, Query,
    Source, Suppression, Protective marking, Generated, and Warning for synthetic data),
    then one empty line, then the data's header line and its rows.
    """
    header, rows = data_table(res)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for key, value in stamp(res, marking, now).rows():
        writer.writerow([safe_cell(key), safe_cell(value)])
    writer.writerow([])
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(res: ChartResult, marking: str, now: dt.datetime | None = None) -> bytes:
    """A workbook: "Data" (the table) and "About" (the stamp); the marking in the header."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    header, rows = data_table(res)
    info = stamp(res, marking, now)
    wb = Workbook()
    data = wb.active
    data.title = "Data"
    data.append([_xlsx_cell(h) for h in header])
    for cell in data[1]:
        cell.font = Font(bold=True)
    for row in rows:
        data.append([_xlsx_cell(v) for v in row])
    data.freeze_panes = "A2"
    for i, h in enumerate(header, start=1):
        data.column_dimensions[data.cell(1, i).column_letter].width = min(
            max(12, len(str(h)) + 2), 50)
    about = wb.create_sheet("About")
    for key, value in info.rows():
        about.append([_xlsx_cell(key), _xlsx_cell(value)])
    about.column_dimensions["A"].width = 20
    about.column_dimensions["B"].width = 100
    for cell in about["A"]:
        cell.font = Font(bold=True)
    for sheet in (data, about):
        sheet.oddHeader.center.text = _xlsx_text(marking)
        sheet.oddFooter.center.text = _xlsx_text(marking)
    wb.properties.title = _xlsx_text(info.title)
    wb.properties.subject = _xlsx_text(f"{info.scope}, {info.period}")
    wb.properties.keywords = _xlsx_text(marking)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _xlsx_text(text: str) -> str:
    return _ILLEGAL_XLSX.sub("", str(text))


def _xlsx_cell(value: object) -> object:
    value = safe_cell(value)
    if isinstance(value, str):
        # openpyxl stores any text opening with "=" as a formula; safe_cell saw to that.
        return _ILLEGAL_XLSX.sub("", value)
    return value


# ---------------------------------------------------------------- images


def export_figure(res: ChartResult, marking: str, now: dt.datetime | None = None) -> go.Figure:
    """The screen's figure, with the marking, query and export date added to its footnote."""
    _require_data(res)
    info = stamp(res, marking, now)
    fig = charts.build(res)
    note = charts.footnote(res)
    extra = f"{marking}. Query: {info.query}. Exported {info.generated}."
    lines = textwrap.wrap(f"{note} {extra}", 150)
    old_lines = len(textwrap.wrap(note, 150))
    grow = 16 * max(len(lines) - old_lines, 0) + 10
    annotations = list(fig.layout.annotations)
    if annotations:
        annotations[0].update(text="<br>".join(lines))
    annotations.append(go.layout.Annotation(
        text=f"<b>{marking}</b>", xref="paper", yref="paper", x=1, y=1, yshift=72,
        xanchor="right", yanchor="bottom", showarrow=False, font=dict(size=12, color="#000")))
    margin = fig.layout.margin
    fig.update_layout(annotations=annotations, height=(fig.layout.height or 440) + grow,
                      margin=dict(b=(margin.b or 80) + grow))
    return fig


def to_image(res: ChartResult, fmt: str, marking: str, *, scale: float = 2.0,
             now: dt.datetime | None = None) -> bytes:
    if fmt not in images.FORMATS:
        raise ExportError(f"image format {fmt!r} is not one of {', '.join(images.FORMATS)}")
    fig = export_figure(res, marking, now)
    try:
        return images.render(fig, fmt, scale=scale if fmt == "png" else 1.0)
    except images.ImagesUnavailable as exc:
        raise ExportError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - the browser's own errors vary
        raise ExportError(f"'{res.spec.title}' could not be drawn as {fmt.upper()}: "
                          f"{exc}") from exc


def export(res: ChartResult, fmt: str, marking: str, now: dt.datetime | None = None) -> bytes:
    """Any of FORMATS for one chart result."""
    if fmt == "csv":
        return to_csv(res, marking, now)
    if fmt == "xlsx":
        return to_xlsx(res, marking, now)
    if fmt in images.FORMATS:
        return to_image(res, fmt, marking, now=now)
    raise ExportError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
