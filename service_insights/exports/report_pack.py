"""The commissioner's report pack: one PDF for a scope and period, safe to share.

Cover, headline figures, every chart of the chosen pages in catalogue order with its
description and caption, services side by side when several are in the selection, the
findings, and an "Omitted" section naming whatever could not be included (a broken query,
no Chromium for images). Every number comes from results.run, so the pack shows what the
screen shows after disclosure control; chart titles and captions are real text, not only
pixels, so the pack can be searched and read aloud. The images are rendered in one batch
on the process's one browser.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go

from service_insights.catalogue import catalog, coverage, results, selection
from service_insights.catalogue.periods import Period
from service_insights.catalogue.results import ChartResult
from service_insights.catalogue.scope import Scope
from service_insights.exports import chart_files, images
from service_insights.presentation import captions, charts
from service_insights.protection import disclosure
from service_insights.settings import Settings
from service_insights.store import db

PAGE_TITLES = {
    "home": "Home",
    "overview": "Overview",
    "children": "Children and families",
    "marac": "Marac",
    "risk": "Risk and outcomes",
    "needs": "Complex needs",
    "equality": "Equality and access",
}
"""Pages in the dashboard's order; a page only the catalogue knows comes after these."""
HEADLINE = "home/headline_figures"
MAX_SIDE_BY_SIDE = 8
"""More services than this are not drawn as separate bars (the palette has eight colours)."""
IMAGE_WIDTH = 1100
IMAGE_SCALE = 2.0
PACK_WORKERS = 3
"""Charts prepared at once (query, then figure); the images are drawn in parallel tabs of
the one browser (images.TABS)."""

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Omitted:
    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


@dataclass
class Pack:
    pdf: bytes
    file_name: str
    charts: int
    """Charts included (as an image or, for figures and tables, as a table)."""
    omitted: list[Omitted] = field(default_factory=list)


@dataclass
class _Chart:
    res: ChartResult
    figure: go.Figure | None = None
    image: bytes | None = None
    comparison: go.Figure | None = None
    comparison_image: bytes | None = None
    coverage: str = ""
    """For an outcome chart, the exit coverage sentence (catalogue/coverage.py)."""


def pages_in(queries_dir: Path) -> list[str]:
    """Every page the catalogue has charts for, in the dashboard's order."""
    found = {e.spec.page if e.spec else e.id.split("/")[0]
             for e in catalog.discover(queries_dir) if not e.id.startswith("findings/")}
    return [p for p in PAGE_TITLES if p in found] + sorted(found - set(PAGE_TITLES))


def page_title(page: str) -> str:
    return PAGE_TITLES.get(page, page.replace("_", " ").replace("-", " ").capitalize())


def file_name(scope: Scope, period: Period) -> str:
    return f"report-pack_{scope.slug or 'selection'}_{period.slug}.pdf"


def build(store: db.Store, scope: Scope, period: Period, settings: Settings, *,
          pages: Sequence[str] | None = None, findings: list | None = None,
          progress: Progress | None = None, image_server: images.ImageServer | None = None,
          now: dt.datetime | None = None,
          audience: results.Audience = results.EVERYONE,
          comparator: str = "all") -> Pack:
    """Build the pack. Nothing here raises for one bad chart: it is listed in `omitted`.

    `findings` are objects with `title`, `message`, `recommendation`, `evidence` and
    `confidence`; None leaves the findings section out. `audience` is the viewer's (see
    results.Audience): counts are perturbed unless they hold the records. `comparator`
    is what each chart is set against (catalogue/comparators.py), as on screen.
    """
    now = now or dt.datetime.now()
    say = progress or (lambda fraction, message: None)
    marking = settings.protective_marking
    known = pages_in(settings.queries_dir)
    chosen = list(pages) if pages else known
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ValueError(f"unknown page {', '.join(unknown)}; pages are {', '.join(known)}")
    omitted: list[Omitted] = []

    say(0.02, "Headline figures")
    viewer = (audience, comparator)
    headline = _run(store, settings, viewer, HEADLINE, scope, period, omitted)
    side_by_side = selection.each_service(store, scope) if _several(scope) else []
    per_service_headline = [r for r in (_run(store, settings, viewer, HEADLINE, s, period,
                                             [])
                                        for s in side_by_side) if r is not None]

    entries = [(page, e) for page in chosen
               for e in catalog.for_page(settings.queries_dir, page) if e.id != HEADLINE]

    def prepare(entry: catalog.Entry) -> tuple[_Chart | None, list[Omitted]]:
        """One chart's data and figure (no Streamlit, no shared state: runs on a worker)."""
        left_out: list[Omitted] = []
        if entry.error:
            return None, [Omitted(entry.path, str(entry.error))]
        res = _run(store, settings, viewer, entry.id, scope, period, left_out)
        if res is None:
            return None, left_out
        chart = _Chart(res)
        if coverage.is_outcome_chart(entry.spec):
            chart.coverage = coverage.sentence(_run(store, settings, viewer,
                                                    coverage.COVERAGE_QUERY, scope, period, []))
        if entry.spec.chart not in ("kpi", "table"):
            chart.figure = _figure(lambda: chart_files.export_figure(res, marking, now),
                                   res.spec.title, left_out)
            if side_by_side and entry.spec.chart == "bar":
                each = [r for r in (_run(store, settings, viewer, entry.id, s, period, [])
                                    for s in side_by_side) if r is not None]
                if len(each) >= 2:
                    chart.comparison = _figure(
                        lambda: comparison_figure(each, marking, now),
                        f"{res.spec.title} (services side by side)", left_out)
        return chart, left_out

    # The queries release the GIL inside DuckDB, so a few run at once while others build
    # their figures; results are put back in catalogue order, and progress is reported
    # from this thread only (a Streamlit progress bar cannot be drawn from a worker).
    prepared: list[tuple[_Chart | None, list[Omitted]] | None] = [None] * len(entries)
    with ThreadPoolExecutor(max_workers=PACK_WORKERS, thread_name_prefix="pack") as pool:
        futures = {pool.submit(prepare, entry): i for i, (_, entry) in enumerate(entries)}
        for done, future in enumerate(as_completed(futures), start=1):
            i = futures[future]
            prepared[i] = future.result()
            say(0.05 + 0.45 * done / max(len(entries), 1), f"Ran {entries[i][1].id}")
    sections: list[tuple[str, list[_Chart]]] = []
    for (page, _), (chart, left_out) in zip(entries, prepared, strict=True):
        omitted.extend(left_out)
        if not sections or sections[-1][0] != page:
            sections.append((page, []))
        if chart is not None:
            sections[-1][1].append(chart)
    sections = [(page, items) for page, items in sections if items]

    say(0.5, "Drawing the charts")
    _render_images(sections, image_server or images.server(), omitted)

    say(0.9, "Writing the PDF")
    included = sum(len(items) for _, items in sections) + (headline is not None)
    pdf = _write_pdf(scope, period, settings, store.meta, now, chosen, headline,
                     per_service_headline, sections, findings, omitted)
    say(1.0, "Done")
    return Pack(pdf, file_name(scope, period), included, omitted)


def _several(scope: Scope) -> bool:
    return scope.services is not None and 2 <= len(scope.services) <= MAX_SIDE_BY_SIDE


def _run(store, settings, viewer, qid, scope, period, omitted) -> ChartResult | None:
    audience, comparator = viewer
    entry = catalog.get(settings.queries_dir, qid)
    if entry.error:
        omitted.append(Omitted(entry.path, str(entry.error)))
        return None
    try:
        res = results.run(store, entry.spec, scope, period, settings, audience, comparator)
    except db.StoreError:
        raise  # a damaged store is not one chart's problem: no pack at all
    except Exception as exc:  # noqa: BLE001 - one chart must not stop the pack
        omitted.append(Omitted(entry.spec.title, f"{type(exc).__name__}: {exc}"))
        return None
    if res.error:
        omitted.append(Omitted(entry.spec.title, str(res.error)))
        return None
    return res


def _figure(make, title, omitted) -> go.Figure | None:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001
        omitted.append(Omitted(title, f"the chart could not be built: {exc}"))
        return None


def _render_images(sections, server: images.ImageServer, omitted: list[Omitted]) -> None:
    slots: list[tuple[_Chart, str, str]] = []
    jobs: list[images.ImageJob] = []
    for _, items in sections:
        for chart in items:
            for attr, fig, title in (
                    ("image", chart.figure, chart.res.spec.title),
                    ("comparison_image", chart.comparison,
                     f"{chart.res.spec.title} (services side by side)")):
                if fig is not None:
                    slots.append((chart, attr, title))
                    jobs.append(images.ImageJob(fig, images.PAGE_FORMAT, width=IMAGE_WIDTH,
                                                scale=IMAGE_SCALE))
    if not jobs:
        return
    try:
        rendered = server.render_many(jobs)
    except images.ImagesUnavailable as exc:
        rendered = [exc] * len(jobs)
    for (chart, attr, title), out in zip(slots, rendered, strict=True):
        if isinstance(out, bytes):
            setattr(chart, attr, out)
        else:
            omitted.append(Omitted(f"{title} (image)", str(out) or type(out).__name__))


# ---------------------------------------------------------------- services side by side


def comparison_figure(each: list[ChartResult], marking: str,
                      now: dt.datetime | None = None) -> go.Figure:
    """One bar per service for each category of a bar chart; hidden values stay hidden."""
    first = each[0]
    spec = first.spec
    x, y = spec.x, spec.y[0]
    seen: list = []
    for r in each:
        for v in r.data.frame[x].to_list():
            if v not in seen:
                seen.append(v)
    cats = [v for v in spec.x_order if v in seen] + [v for v in seen if v not in spec.x_order]
    fig = go.Figure()
    hidden = 0
    extra = across_services(each, y, x)
    for i, r in enumerate(each):
        values = dict(zip(r.data.frame[x].to_list(), r.data.frame[y].to_list(), strict=True))
        values.update({k: None for k in extra[i]})
        hidden += sum(r.data.hidden.get(y, [])) + len(extra[i])
        fig.add_bar(name=_plain(r.scope.label), x=[str(c) for c in cats],
                    y=[values.get(c) for c in cats],
                    marker_color=charts.PALETTE[i % len(charts.PALETTE)])
    kind = "synthetic sample" if first.data_kind == "synthetic" else "service records"
    rules = first.data.rules
    note = (f"Source: {spec.source or 'Service Insights'} ({kind}; data as of "
            f"{first.data_as_of or 'unknown'}). Counts from 1 to {rules.threshold - 1} are "
            f"shown as <{rules.threshold}; rates and averages need a base of at least "
            f"{rules.min_base}.")
    if hidden:
        note += (f" {hidden} bar{'s' if hidden != 1 else ''} withheld as small numbers "
                 "(no bar drawn).")
    note += f" {marking}. Query: {spec.id}. Exported {(now or dt.datetime.now()):%Y-%m-%d %H:%M}."
    lines = _wrap(note, 150)
    bottom = 110 + 16 * len(lines)
    fig.update_layout(
        template="plotly_white", barmode="group", bargap=0.2,
        font=dict(family=charts.FONT, size=13, color="#1F1F1F"),
        title=dict(text=f"<b>{_plain(spec.title)}</b>", x=0, xanchor="left", font=dict(size=17),
                   subtitle=dict(text=f"Services side by side · {first.period.label}",
                                 font=dict(size=13, color="#444"))),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        margin=dict(l=70, r=30, t=110, b=bottom),
        height=460 + 16 * len(lines),
        annotations=[
            dict(text="<br>".join(lines), xref="paper", yref="paper", x=0, y=0,
                 yshift=-(bottom - 20), xanchor="left", yanchor="top", showarrow=False,
                 align="left", font=dict(size=11, color="#555")),
            dict(text=f"<b>{_plain(marking)}</b>", xref="paper", yref="paper", x=1, y=1,
                 yshift=90, xanchor="right", yanchor="bottom", showarrow=False,
                 font=dict(size=12, color="#000")),
        ],
    )
    fig.update_xaxes(title_text=spec.x_label or spec.label(x), type="category",
                     showline=True, linecolor="#888")
    fig.update_yaxes(title_text=charts.axis_title(first, y), gridcolor="#E5E5E5",
                     rangemode="tozero")
    return fig


def _plain(text: str) -> str:
    """Names from the data must not become Plotly markup (links, bold) in an image."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


# ---------------------------------------------------------------- the PDF


_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),
              Path("/usr/share/fonts/truetype/liberation"))
_FONT_FILES = (("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
               ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"))


def _font_files() -> tuple[Path, Path] | None:
    for folder, (regular, bold) in zip(_FONT_DIRS, _FONT_FILES, strict=True):
        if (folder / regular).exists() and (folder / bold).exists():
            return folder / regular, folder / bold
    return None


def _latin1(text: str) -> str:
    """For the built-in PDF font (no Unicode font on the machine): keep what it can show."""
    swaps = {"–": "-", "—": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "≥": ">=",
             "≤": "<=", "…": "..."}
    for a, b in swaps.items():
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


class _Document:
    """A thin layer on fpdf2: fonts, headings, paragraphs, tables, images, marking."""

    def __init__(self, marking: str, footer: str):
        from fpdf import FPDF

        doc = self

        class _PDF(FPDF):
            def header(self):
                doc.font("B", 9)
                self.cell(0, 5, doc.text(marking), align="C", new_x="LMARGIN", new_y="NEXT")
                self.ln(3)

            def footer(self):
                self.set_y(-13)
                doc.font("", 8)
                self.cell(0, 4, doc.text(marking), align="C", new_x="LMARGIN", new_y="NEXT")
                self.cell(0, 4, doc.text(f"{footer} · page {self.page_no()} of {{nb}}"),
                          align="C")

        self.pdf = _PDF(orientation="portrait", unit="mm", format="A4")
        self.pdf.set_auto_page_break(True, margin=18)
        self.pdf.set_margins(15, 12, 15)
        files = _font_files()
        self.unicode = files is not None
        if files:
            self.pdf.add_font("pack", "", str(files[0]))
            self.pdf.add_font("pack", "B", str(files[1]))
            self.family = "pack"
        else:
            self.family = "helvetica"

    def text(self, value: object) -> str:
        value = "" if value is None else str(value)
        return value if self.unicode else _latin1(value)

    def font(self, style: str = "", size: float = 10) -> None:
        self.pdf.set_font(self.family, style, size)

    def heading(self, text: str, size: float = 16, space: float = 4) -> None:
        self.font("B", size)
        self.pdf.multi_cell(0, size * 0.5, self.text(text), align="L", new_x="LMARGIN",
                            new_y="NEXT")
        self.pdf.ln(space)

    def para(self, text: str, size: float = 10, style: str = "", gap: float = 2) -> None:
        self.font(style, size)
        self.pdf.multi_cell(0, size * 0.48, self.text(text), align="L", new_x="LMARGIN",
                            new_y="NEXT")
        self.pdf.ln(gap)

    def keep(self, height: float) -> None:
        """Start a new page unless `height` mm still fit on this one."""
        if self.pdf.get_y() + height > self.pdf.page_break_trigger:
            self.pdf.add_page()

    def table(self, header: list[str], rows: list[list[str]], widths=None,
              size: float = 9) -> None:
        self.font("", size)
        with self.pdf.table(col_widths=widths, text_align="LEFT", line_height=size * 0.55,
                            first_row_as_headings=True,
                            headings_style=_heading_style()) as table:
            for row in [header, *rows]:
                r = table.row()
                for cell in row:
                    r.cell(self.text(cell))
        self.pdf.ln(3)

    def image(self, picture: bytes, width_px: int, height_px: int) -> None:
        w = self.pdf.epw
        h = w * height_px / width_px
        self.keep(h)
        # A JPEG (images.PAGE_FORMAT) goes into the PDF as it is: no decoding, no alpha
        # mask, no second compression.
        self.pdf.image(io.BytesIO(picture), x=self.pdf.l_margin, w=w, h=h)
        self.pdf.ln(2)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def _heading_style():
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(232, 238, 244))


def _write_pdf(scope, period, settings, meta, now, pages, headline, per_service, sections,
               findings, omitted) -> bytes:
    marking = settings.protective_marking
    data_as_of = meta.get("data_as_of", "unknown")
    doc = _Document(marking, f"{scope.label}, {period.label} · data as of {data_as_of}")
    pdf = doc.pdf
    pdf.set_title(doc.text(f"Service Insights report pack: {scope.label}, {period.label}"))
    pdf.set_subject(doc.text(f"{scope.label}, {period.label}"))
    pdf.set_keywords(doc.text(marking))
    pdf.set_creator("Service Insights")
    pdf.set_creation_date(now if now.tzinfo else now.astimezone())

    # Cover
    pdf.add_page()
    pdf.ln(30)
    doc.heading("Service Insights report pack", size=24, space=6)
    doc.heading(scope.label, size=16, space=2)
    doc.para(f"Period: {period.label} ({period.start:%d/%m/%Y} to {period.end:%d/%m/%Y})",
             size=12)
    if scope.services is not None:
        doc.para(f"Services: {', '.join(scope.services)}", size=10)
    if scope.areas is not None:
        doc.para(f"Areas: {', '.join(scope.areas)}", size=10)
    doc.para(f"Data as of: {data_as_of}", size=12)
    doc.para(f"Generated: {now:%d %B %Y %H:%M}", size=12)
    doc.para(f"Protective marking: {marking}", size=12, style="B", gap=6)
    if meta.get("data_kind") == "synthetic":
        doc.para("Synthetic sample data: these are not real services or people. Do not use "
                 "these figures for decisions.", size=12, style="B", gap=6)
    doc.para("Contents: headline figures; " + "; ".join(page_title(p) for p in pages)
             + ("; findings" if findings is not None else "") + ".", size=10)
    doc.para("Every number has passed disclosure control: counts from 1 to "
             f"{settings.suppression_threshold - 1} are shown as "
             f"<{settings.suppression_threshold}, further cells are withheld where a small "
             "number could be worked out from a total, and rates and averages need a base "
             f"of at least {settings.min_rate_base}.", size=10)
    if omitted:
        doc.para(f"{len(omitted)} item{'s' if len(omitted) != 1 else ''} could not be "
                 "included; see 'Omitted' at the end.", size=10, style="B")

    # Headline figures
    pdf.add_page()
    doc.heading("Headline figures")
    if headline is not None:
        header, rows, note = _kpi_table(headline)
        doc.table(header, rows, widths=(3, 2, 2) if len(header) == 3 else None)
        doc.para(captions.caption(headline, always_note_rules=True), size=8)
        if note:
            doc.para(note, size=8)
    else:
        doc.para("The headline figures could not be produced; see 'Omitted'.")
    if len(per_service) >= 2:
        doc.heading("Services side by side", size=13, space=2)
        for chunk in _chunks(per_service, 4):
            header, rows = _side_by_side_table(chunk)
            doc.table(header, rows, widths=(3, *([2] * len(chunk))), size=8)
        doc.para("Each service's figures, after disclosure control for that service alone.",
                 size=8)

    # Charts, page by page
    for page, items in sections:
        pdf.add_page()
        doc.heading(page_title(page), size=18, space=3)
        for chart in items:
            _write_chart(doc, chart)

    if findings is not None:
        pdf.add_page()
        doc.heading("Findings")
        if not findings:
            doc.para("None of the findings holds for this selection and period.")
        for f in findings:
            doc.keep(40)
            subject = getattr(f, "subject", "")
            title = str(getattr(f, "title", ""))
            doc.heading(f"{title}: {subject}" if subject else title, size=12, space=1)
            doc.para(str(getattr(f, "message", "")))
            for label in ("recommendation", "evidence", "confidence"):
                value = getattr(f, label, "")
                if value:
                    doc.para(f"{label.capitalize()}: {value}", size=9)
            pdf.ln(2)

    if omitted:
        pdf.add_page()
        doc.heading("Omitted")
        doc.para("These could not be included in this pack, and why:")
        for o in omitted:
            doc.para(f"• {o.item}: {o.reason}", size=9)
    return doc.output()


def _write_chart(doc: _Document, chart: _Chart) -> None:
    res = chart.res
    spec = res.spec
    doc.keep(110 if chart.image else 40)
    doc.heading(spec.title, size=13, space=1)
    if spec.chart in ("kpi", "table"):
        header, rows, note = _kpi_table(res) if spec.chart == "kpi" else _data_rows(res)
        doc.table(header, rows)
        if note:
            doc.para(note, size=8)
    elif chart.image:
        doc.image(chart.image, IMAGE_WIDTH, int(chart.figure.layout.height or 500))
    else:
        doc.para("(The image of this chart could not be made; see 'Omitted'. Its data:)",
                 size=9)
        header, rows, _ = _data_rows(res)
        doc.table(header, rows, size=8)
    if chart.coverage:
        doc.para(chart.coverage, size=9, style="B", gap=1)
    doc.para(captions.caption(res, always_note_rules=True), size=9, gap=4)
    if chart.comparison_image:
        doc.keep(110)
        doc.para(f"{spec.title}: services side by side", size=10, style="B", gap=1)
        doc.image(chart.comparison_image, IMAGE_WIDTH,
                  int(chart.comparison.layout.height or 500))


def _kpi_table(res: ChartResult) -> tuple[list[str], list[list[str]], str]:
    spec = res.spec
    shown = res.data.display()
    bench = res.benchmark.display() if res.benchmark is not None else None
    header = ["Measure", res.scope.label]
    if bench is not None:
        header.append(res.benchmark_label)
    rows = []
    for col in spec.y:
        row = [spec.label(col), _with_unit(res, col, shown[col][0] if shown.height else "")]
        if bench is not None:
            row.append(_with_unit(res, col, bench[col][0] if bench.height else ""))
        rows.append(row)
    scaled = [spec.label(c) for c in spec.y if c in spec.counts and res.count_benchmark_label]
    note = ""
    if bench is not None and scaled:
        note = (f"In the {res.benchmark_label} column, {', '.join(scaled)} "
                f"{'is' if len(scaled) == 1 else 'are'} the "
                f"{res.count_benchmark_label[0].lower()}{res.count_benchmark_label[1:]}.")
    return header, rows, note


def _with_unit(res: ChartResult, col: str, value: str) -> str:
    if value in ("", "–") or value.startswith("<"):
        return value or "–"
    return f"{value}{charts.value_suffix(res, col)}"


def _data_rows(res: ChartResult) -> tuple[list[str], list[list[str]], str]:
    header, rows = chart_files.data_table(res)
    return [str(h) for h in header], [["" if v is None else str(v) for v in r]
                                       for r in rows], ""


def across_services(each: list[ChartResult], col: str, key: str | None = None
                    ) -> list[set]:
    """Secondary suppression across services shown side by side.

    Each service's counts were protected on their own, but beside the selection's total a
    lone "<5" could be recovered by subtraction. Where exactly one service's count in a
    category is hidden, the next-smallest other service's count is hidden too. Returns,
    per service, the categories (None for a single-row result) to withhold as well.
    """
    extra: list[set] = [set() for _ in each]
    if col not in each[0].spec.counts:
        return extra
    cells: dict = {}
    for i, r in enumerate(each):
        frame = r.data.frame
        keys = frame[key].to_list() if key else [None] * frame.height
        hidden = r.data.hidden.get(col, [False] * frame.height)
        for k, v, h in zip(keys, frame[col].to_list(), hidden, strict=True):
            cells.setdefault(k, []).append((i, v, h))
    for k, group in cells.items():
        if sum(h for _, _, h in group) != 1:
            continue
        visible = [(v, i) for i, v, h in group if not h and v]
        if visible:
            extra[min(visible)[1]].add(k)
    return extra


def _side_by_side_table(each: list[ChartResult]) -> tuple[list[str], list[list[str]]]:
    spec = each[0].spec
    shown = [r.data.display() for r in each]
    header = ["Measure", *[r.scope.label for r in each]]
    rows = []
    for col in spec.y:
        extra = across_services(each, col)
        cells = []
        for r, s, more in zip(each, shown, extra, strict=True):
            value = s[col][0] if s.height else ""
            cells.append(disclosure.WITHHELD_TEXT if None in more else _with_unit(r, col, value))
        rows.append([spec.label(col), *cells])
    return header, rows


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]
