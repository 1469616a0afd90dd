"""Figure builders: a protected chart result in, a Plotly figure out.

Pure functions (no Streamlit) so tests and exports use exactly what the screen shows.
Every figure carries its title, a subtitle with scope and period, axis titles with
units, and a footnote with the source and the suppression note, so an exported image
stands on its own. The palette is Okabe-Ito (safe for colour-blind readers); the
benchmark is always grey and hatched or dashed, never a series colour.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from service_insights.catalogue import lookback, reference
from service_insights.catalogue.results import ChartResult
from service_insights.findings import significance, stats

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000"]
SCOPE_COLOUR = PALETTE[0]
BENCHMARK_COLOUR = "#6E6E6E"
REFERENCE_COLOUR = "#D55E00"
"""National figures and expected ranges: vermillion, distinct from the selection (blue)
and the benchmark (grey) for colour-blind readers too."""
BAND_COLOUR = "rgba(0, 158, 115, 0.12)"
FONT = "Arial, Helvetica, sans-serif"

# Every figure of the product uses plotly_white. Set as Plotly's default template, a new
# Figure takes it without validation (Plotly trusts its own default); naming it in
# update_layout instead validated and deep-copied the whole template for every figure,
# a third of a figure's build time (19 ms a chart; benchmarks/load.py's server profile).
# Only this package builds figures in the dashboard and export processes.
pio.templates.default = "plotly_white"


def _t(value) -> str:
    """Text from the data (service names, categories) as Plotly text, with its markup
    characters escaped, so a name like '<a href=...>' is shown, never rendered."""
    return html.escape(str(value), quote=False)


def _cat(value, width: int = 16) -> str:
    """A category label: escaped, and broken over lines rather than rotated, so long
    labels never run into the axis title or the footnote."""
    words, lines, line = _t(value).split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "<br>".join(lines[:4])


def value_suffix(result: ChartResult, column: str) -> str:
    spec = result.spec
    if column in spec.rates:
        return "%"
    if column in spec.measures and spec.unit:
        return f" {spec.unit}"
    return ""


def axis_title(result: ChartResult, column: str) -> str:
    """The y-axis title with its unit, on two lines when long so it fits the plot."""
    title = _axis_title(result, column)
    if len(title) > 34:
        words = title.split()
        half = len(title) // 2
        cut, count = 0, 0
        for i, w in enumerate(words):
            count += len(w) + 1
            if count >= half:
                cut = i + 1
                break
        title = " ".join(words[:cut]) + "<br>" + " ".join(words[cut:])
    return title


def _axis_title(result: ChartResult, column: str) -> str:
    spec = result.spec
    base = spec.y_label or spec.label(column)
    if column in spec.rates and "%" not in base:
        return f"{base} (%)"
    if column in spec.counts and spec.unit and spec.unit not in base:
        return f"{base} ({spec.unit})"
    if column in spec.measures and spec.unit and spec.unit not in base:
        return f"{base} ({spec.unit})"
    return base


def footnote(result: ChartResult) -> str:
    spec = result.spec
    source = spec.source or "Service Insights"
    kind = "synthetic sample" if result.data_kind == "synthetic" else "service records"
    parts = [f"Source: {source} ({kind}; data as of {result.data_as_of or 'unknown'})."]
    if result.data is not None:
        parts.append(result.data.note())
    if result.benchmark_note:
        parts.append(result.benchmark_note)
    if result.lookback_note:
        parts.append(result.lookback_note)
    return " ".join(parts)


def _wrap(text: str, width: int = 150) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "<br>".join(lines)


def _categories(result: ChartResult, column: str, order: tuple[str, ...]) -> list:
    seen: list = []
    for frame in (result.data.frame, result.benchmark.frame if result.benchmark else None):
        if frame is None or column not in frame.columns:
            continue
        for v in frame[column].to_list():
            if v not in seen:
                seen.append(v)
    if order:
        ranked = [v for v in order if v in seen]
        return ranked + [v for v in seen if v not in ranked]
    return seen


def _lookup(frame: pl.DataFrame, keys: list[str], value: str) -> dict[tuple, float | None]:
    cols = [frame[k].to_list() for k in keys]
    vals = frame[value].to_list()
    return {tuple(c[i] for c in cols): vals[i] for i in range(frame.height)}


def _base_layout(fig: go.Figure, result: ChartResult, height: int = 440) -> go.Figure:
    spec = result.spec
    note = footnote(result)
    note_lines = _wrap(note).count("<br>") + 1
    # A table (headline figures) has no x values: getattr, not tr.x.
    label_lines = max((x.count("<br>") + 1 for tr in fig.data
                       if getattr(tr, "x", None) is not None
                       for x in tr.x if isinstance(x, str)), default=1)
    # Tick labels and the axis title, then the footnote right under them.
    bottom = 48 + 15 * label_lines
    fig.update_layout(
        font=dict(family=FONT, size=13, color="#1F1F1F"),
        colorway=PALETTE,
        title=dict(text=f"<b>{spec.title}</b>", x=0, xanchor="left", font=dict(size=17),
                   yref="container", y=1, yanchor="top", pad=dict(t=18),
                   subtitle=dict(text=f"{_t(result.scope.label)} · {result.period.label}",
                                 font=dict(size=13, color="#444"))),
        # The legend sits on its own row under the subtitle, so a long one never
        # runs into the title.
        margin=dict(l=70, r=30, t=120, b=bottom + 16 * note_lines + 14),
        height=height + 30 + 16 * note_lines + 15 * (label_lines - 1),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0,
                    title=None),
        hoverlabel=dict(font=dict(family=FONT)),
        annotations=[dict(text=_wrap(note), xref="paper", yref="paper", x=0,
                          y=0, yshift=-bottom, xanchor="left", yanchor="top",
                          showarrow=False, align="left", font=dict(size=11, color="#555"))],
    )
    fig.update_xaxes(showline=True, linecolor="#888", automargin=False, tickangle=0)
    fig.update_yaxes(gridcolor="#E5E5E5", zeroline=True, zerolinecolor="#888",
                     rangemode="tozero", automargin=True)
    return fig


def _hover(result: ChartResult, column: str) -> str:
    fmt = ".1f" if column in result.spec.rates or column in result.spec.measures else ",.1f"
    if column in result.spec.counts and result.benchmark is None:
        fmt = ","
    return f"%{{y:{fmt}}}{value_suffix(result, column)}"


def build(result: ChartResult) -> go.Figure:
    """The figure for one chart result; KPIs and tables get a table-like figure."""
    if result.data is None:
        raise ValueError(f"{result.spec.id} has no data to draw: {result.error}")
    chart = result.spec.chart
    if chart == "bar":
        return _bar(result)
    if chart == "grouped_bar":
        return _grouped(result, stacked=False)
    if chart == "stacked_bar":
        return _grouped(result, stacked=True)
    if chart == "line":
        return _line(result)
    if chart == "funnel":
        return _funnel(result)
    return _table_figure(result)


def _bar(result: ChartResult) -> go.Figure:
    spec = result.spec
    x, y = spec.x, spec.y[0]
    cats = _categories(result, x, spec.x_order)
    ours = _lookup(result.data.frame, [x], y)
    fig = go.Figure()
    values = [ours.get((c,)) for c in cats]
    fig.add_bar(name=_t(result.scope.label), x=[_cat(c) for c in cats],
                y=values, marker_color=SCOPE_COLOUR, offsetgroup="0",
                # A zero bar is invisible: say "0" so it is not mistaken for withheld.
                text=[f"0{value_suffix(result, y)}" if v == 0 else "" for v in values],
                textposition="outside", cliponaxis=False,
                error_y=_error_bars(result, y, [(c,) for c in cats]),
                hovertemplate=f"%{{x}}<br>{_t(result.scope.label)}: {_hover(result, y)}"
                              f"{_ci_hover(result, y)}<extra></extra>")
    if result.benchmark is not None:
        theirs = _lookup(result.benchmark.frame, [x], y)
        fig.add_bar(name=result.benchmark_label_for(y), x=[_cat(c) for c in cats],
                    y=[theirs.get((c,)) for c in cats], offsetgroup="1",
                    marker=dict(color="#D9D9D9", line=dict(color=BENCHMARK_COLOUR, width=1.5),
                                pattern=dict(shape="/", fgcolor=BENCHMARK_COLOUR, size=6)),
                    hovertemplate=f"%{{x}}<br>{result.benchmark_label_for(y)}: "
                                  f"{_hover(result, y)}<extra></extra>")
    _mark_hidden(fig, result, cats)
    _mark_significance(fig, result, y)
    _reference(fig, result, cats)
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title_text=spec.x_label or spec.label(x), type="category")
    fig.update_yaxes(title_text=axis_title(result, y))
    return _base_layout(fig, result)


def _mark_hidden(fig: go.Figure, result: ChartResult, cats: list) -> None:
    """Say "<5" / "withheld" where a bar is missing because it was suppressed."""
    spec = result.spec
    y = spec.y[0]
    hidden = result.data.hidden.get(y)
    if not hidden or not any(hidden):
        return
    xs = result.data.frame[spec.x].to_list()
    text = f"<{result.data.rules.threshold}" if y in spec.counts else "withheld"
    marks = [_cat(xs[i]) for i, h in enumerate(hidden) if h and xs[i] in cats]
    fig.add_scatter(x=marks, y=[0] * len(marks), mode="text", text=[text] * len(marks),
                    textposition="top center", showlegend=False, hoverinfo="skip",
                    textfont=dict(color="#444", size=11), offsetgroup="0")
    fig.update_layout(scattermode="group")


def _grouped(result: ChartResult, stacked: bool) -> go.Figure:
    spec = result.spec
    x, y, s = spec.x, spec.y[0], spec.series
    cats = _categories(result, x, spec.x_order)
    series = _categories(result, s, spec.series_order)
    ours = _lookup(result.data.frame, [x, s], y)
    theirs = _lookup(result.benchmark.frame, [x, s], y) if result.benchmark else None
    fig = go.Figure()
    if stacked:
        # Two stacked bars per category: the selection, then the benchmark (hatched).
        groups = [result.scope.label]
        if theirs is not None:
            groups.append(result.benchmark_label_for(y))
        xx = [[_cat(c) for c in cats for _ in groups], [_t(g) for _ in cats for g in groups]]
        for i, sv in enumerate(series):
            colour = PALETTE[i % len(PALETTE)]
            vals = []
            for c in cats:
                vals.append(ours.get((c, sv)))
                if theirs is not None:
                    vals.append(theirs.get((c, sv)))
            fig.add_bar(name=_t(sv), x=xx, y=vals, marker=dict(
                color=colour, line=dict(color="white", width=0.5),
                pattern=dict(shape=["" if g == result.scope.label else "/"
                                    for _ in cats for g in groups],
                             fgcolor="white", size=5)),
                hovertemplate=f"%{{x}}<br>{sv}: {_hover(result, y)}<extra></extra>")
        fig.update_layout(barmode="stack")
        fig.update_xaxes(type="multicategory")
    else:
        for i, sv in enumerate(series):
            fig.add_bar(name=_t(sv), x=[_cat(c) for c in cats],
                        y=[ours.get((c, sv)) for c in cats], offsetgroup=str(i),
                        marker_color=PALETTE[i % len(PALETTE)],
                        error_y=_error_bars(result, y, [(c, sv) for c in cats]),
                        hovertemplate=f"%{{x}}<br>{sv}: {_hover(result, y)}"
                                      f"{_ci_hover(result, y)}<extra></extra>")
        if theirs is not None:
            for i, sv in enumerate(series):
                fig.add_scatter(
                    name=result.benchmark_label_for(y), x=[_cat(c) for c in cats],
                    y=[theirs.get((c, sv)) for c in cats], offsetgroup=str(i), mode="markers",
                    marker=dict(symbol="diamond", size=10, color="white",
                                line=dict(color="black", width=2)),
                    legendgroup="benchmark", showlegend=i == 0,
                    hovertemplate=f"%{{x}}<br>{sv}, {result.benchmark_label_for(y)}: "
                                  f"{_hover(result, y)}<extra></extra>")
        fig.update_layout(barmode="group", scattermode="group", bargap=0.2)
        fig.update_xaxes(type="category")
        _mark_significance_by_series(fig, result, y, series, grouped=True)
        _reference(fig, result, cats)
    fig.update_xaxes(title_text=spec.x_label or spec.label(x))
    fig.update_yaxes(title_text=axis_title(result, y))
    return _base_layout(fig, result)


def _line(result: ChartResult) -> go.Figure:
    spec = result.spec
    x, y, s = spec.x, spec.y[0], spec.series
    cats = _categories(result, x, spec.x_order)
    series = _categories(result, s, spec.series_order) if s else [None]
    keys = [x, s] if s else [x]
    ours = _lookup(result.data.frame, keys, y)
    theirs = _lookup(result.benchmark.frame, keys, y) if result.benchmark else None
    fig = go.Figure()
    for i, sv in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        key = (lambda c, sv=sv: (c, sv)) if s else (lambda c: (c,))
        name = _t(sv) if s else _t(result.scope.label)
        fig.add_scatter(name=name, x=[_cat(c) for c in cats], y=[ours.get(key(c)) for c in cats],
                        mode="lines+markers", line=dict(color=colour, width=3),
                        marker=dict(size=7), connectgaps=False,
                        error_y=_error_bars(result, y, [key(c) for c in cats], colour),
                        hovertemplate=f"%{{x}}<br>{name}: {_hover(result, y)}"
                                      f"{_ci_hover(result, y)}<extra></extra>")
        if theirs is not None:
            bname = f"{sv}, {result.benchmark_label_for(y)}" if s else result.benchmark_label_for(y)
            fig.add_scatter(name=bname, x=[_cat(c) for c in cats],
                            y=[theirs.get(key(c)) for c in cats], mode="lines",
                            line=dict(color=colour if s else BENCHMARK_COLOUR, width=2,
                                      dash="dash"),
                            hovertemplate=f"%{{x}}<br>{bname}: {_hover(result, y)}<extra></extra>")
    if s:
        _mark_significance_by_series(fig, result, y, series, grouped=False)
    else:
        _mark_significance_line(fig, result, y)
    _reference(fig, result, cats)
    fig.update_xaxes(title_text=spec.x_label or spec.label(x), type="category")
    fig.update_yaxes(title_text=axis_title(result, y))
    fig = _base_layout(fig, result)
    if s and len(series) > 4:
        # Many series (the annual headline measures): a legend row above the plot would
        # run into the title, so it goes down the right-hand side instead.
        fig.update_layout(legend=dict(orientation="v", x=1.01, xanchor="left", y=1,
                                      yanchor="top", font=dict(size=11)),
                          margin=dict(r=320, t=90), height=(fig.layout.height or 500) + 60)
    # After the layout, which sets the footnote as the figure's annotations.
    _mark_lookback(fig, result, cats)
    return fig


def _mark_lookback(fig: go.Figure, result: ChartResult, cats: list) -> None:
    """Grey out the quarters whose repeat rate lacks a full 12-month look-back
    (catalogue/lookback.py), labelled on the chart, so the low first year is not read as
    a real fall."""
    if result.lookback is None or not result.lookback.incomplete:
        return
    flagged = [i for i, c in enumerate(cats) if lookback.row_flag(result, c) == lookback.FLAG]
    if not flagged:
        return
    fig.add_vrect(x0=min(flagged) - 0.5, x1=max(flagged) + 0.5, fillcolor="#BDBDBD",
                  opacity=0.35, line_width=0, layer="below")
    fig.add_annotation(x=min(flagged) - 0.45, xref="x", y=0.01, yref="paper", xanchor="left",
                       yanchor="bottom", showarrow=False, text="<b>Look-back incomplete</b>",
                       font=dict(size=12, color="#333"), bgcolor="rgba(255,255,255,0.8)")


def _error_bars(result: ChartResult, y: str, keys: list[tuple],
                colour: str = "#1F1F1F") -> dict | None:
    """95% Wilson intervals as error bars on a rate; none for counts and measures."""
    if y not in result.spec.rates:
        return None
    cis = significance.intervals(result, y)
    values = _lookup(result.data.frame, list(result.spec.dims), y)
    plus, minus = [], []
    for k in keys:
        ci, v = cis.get(k), values.get(k)
        plus.append(ci.high - v if ci and v is not None else None)
        minus.append(v - ci.low if ci and v is not None else None)
    if not any(p is not None for p in plus):
        return None
    return dict(type="data", symmetric=False, array=plus, arrayminus=minus, color=colour,
                thickness=1.3, width=4)


def _ci_hover(result: ChartResult, y: str) -> str:
    if y not in result.spec.rates:
        return ""
    return " (95% interval shown as the error bar)"


def _mark_significance(fig: go.Figure, result: ChartResult, y: str) -> None:
    """Write "higher" or "lower" above a bar whose interval excludes the benchmark."""
    marks = [v for v in significance.verdicts(result)
             if v.rate == y and v.verdict in (stats.HIGHER, stats.LOWER)]
    if not marks:
        return
    fig.add_scatter(
        x=[_cat(v.key[0]) for v in marks], y=[v.interval.high for v in marks], mode="text",
        text=["▲ higher" if v.verdict == stats.HIGHER else "▼ lower" for v in marks],
        textposition="top center", showlegend=False, hoverinfo="skip", offsetgroup="0",
        textfont=dict(color="#1F1F1F", size=11), name="significance")
    fig.update_layout(scattermode="group")


def _marks(result: ChartResult, y: str) -> list:
    return [v for v in significance.verdicts(result)
            if v.rate == y and v.verdict in (stats.HIGHER, stats.LOWER)]


def _mark_text(verdict) -> str:
    return "▲ higher" if verdict.verdict == stats.HIGHER else "▼ lower"


def _mark_significance_by_series(fig: go.Figure, result: ChartResult, y: str, series: list,
                                 grouped: bool) -> None:
    """The caption's "significantly higher/lower" drawn where it applies: above the bar
    (or point) of that category and series, just over its interval."""
    marks = _marks(result, y)
    for i, sv in enumerate(series):
        mine = [v for v in marks if len(v.key) > 1 and v.key[1] == sv]
        if not mine:
            continue
        extra = {"offsetgroup": str(i)} if grouped else {}
        fig.add_scatter(
            x=[_cat(v.key[0]) for v in mine], y=[v.interval.high for v in mine],
            mode="text", text=[_mark_text(v) for v in mine], textposition="top center",
            showlegend=False, hoverinfo="skip", name="significance",
            textfont=dict(color=PALETTE[i % len(PALETTE)] if not grouped else "#1F1F1F",
                          size=11), **extra)
    if grouped:
        fig.update_layout(scattermode="group")


def _mark_significance_line(fig: go.Figure, result: ChartResult, y: str) -> None:
    marks = _marks(result, y)
    if marks:
        fig.add_scatter(
            x=[_cat(v.key[0]) for v in marks], y=[v.interval.high for v in marks],
            mode="text", text=[_mark_text(v) for v in marks], textposition="top center",
            showlegend=False, hoverinfo="skip", name="significance",
            textfont=dict(color="#1F1F1F", size=11))


def _reference(fig: go.Figure, result: ChartResult, cats: list) -> None:
    """National figures and expected ranges named in the header, each labelled."""
    ref = result.spec.reference
    if not ref:
        return
    if "band" in ref:
        low, high = (reference.get(k) for k in ref["band"])
        fig.add_hrect(y0=low.value, y1=high.value, fillcolor=BAND_COLOUR, line_width=0,
                      layer="below")
        fig.add_scatter(x=[None], y=[None], mode="markers", name=(
            f"Expected range {low.value:g}% to {high.value:g}%"),
            marker=dict(symbol="square", size=12, color="rgba(0, 158, 115, 0.35)"))
    if "line" in ref:
        fig_ref = reference.get(ref["line"])
        fig.add_hline(y=fig_ref.value, line=dict(color=REFERENCE_COLOUR, width=2, dash="dot"))
        fig.add_scatter(x=[None], y=[None], mode="lines", name=fig_ref.label,
                        line=dict(color=REFERENCE_COLOUR, width=2, dash="dot"))
    if "points" in ref:
        shown = [c for c in cats if str(c) in ref["points"]]
        figs = [reference.get(ref["points"][str(c)]) for c in shown]
        fig.add_scatter(
            x=[_cat(c) for c in shown], y=[f.value for f in figs], mode="markers",
            name="National (Marac cases)", marker=dict(symbol="line-ew-open", size=34,
                                                       color=REFERENCE_COLOUR,
                                                       line=dict(width=3,
                                                                 color=REFERENCE_COLOUR)),
            text=[f.label for f in figs],
            hovertemplate="%{x}<br>%{text}<extra></extra>")


FUNNEL_COLOURS = {"within limits": "#56B4E9", "above 95% limit": "#E69F00",
                  "below 95% limit": "#E69F00", "above 99.8% limit": "#D55E00",
                  "below 99.8% limit": "#D55E00"}


def _funnel(result: ChartResult) -> go.Figure:
    """Each service's rate against its base, inside funnel limits around the rate for
    all services: a small service is not singled out for a difference chance explains."""
    spec = result.spec
    x, y = spec.x, spec.y[0]
    count_col, base_col = spec.rates[y].count, spec.rates[y].base
    centre = (result.overall or {}).get(y)
    fig = go.Figure()
    groups = funnel_groups(result)
    points = [r for rows in groups.values() for r in rows]
    if centre is not None and points:
        top = max(r[base_col] for r in points) * 1.15
        low_n = max(min(r[base_col] for r in points) * 0.6, 5)
        ns = [low_n + (top - low_n) * (i / 80) ** 2 for i in range(81)]
        for z, label, dash in ((stats.Z998, "99.8% limits", "solid"),
                               (stats.Z95, "95% limits", "dot")):
            lows, highs = zip(*(stats.funnel_limits(centre, n, z) for n in ns), strict=True)
            for k, values in enumerate((highs, lows)):
                fig.add_scatter(x=ns, y=values, mode="lines", name=label,
                                legendgroup=label, showlegend=k == 0, hoverinfo="skip",
                                line=dict(color=BENCHMARK_COLOUR, width=1.5, dash=dash))
        fig.add_scatter(x=[ns[0], ns[-1]], y=[centre, centre], mode="lines",
                        name=f"{result.benchmark_label or 'All services'} {centre:.1f}%",
                        hoverinfo="skip",
                        line=dict(color="#1F1F1F", width=2, dash="dash"))
    # Every service outside the limits is named on the chart (placed so that no name is
    # cut off or covers another); hovering names every point.
    for where in FUNNEL_COLOURS:
        rows = groups.get(where)
        if not rows:
            continue
        fig.add_scatter(
            x=[r[base_col] for r in rows], y=[r[y] for r in rows],
            mode="markers", name=where.capitalize(),
            text=[_t(r[x]) for r in rows],
            marker=dict(size=11, color=FUNNEL_COLOURS[where],
                        line=dict(color="#1F1F1F", width=1)),
            customdata=[[r[count_col]] for r in rows],
            hovertemplate=(f"%{{text}}<br>{spec.label(y)}: %{{y:.1f}}%"
                           f"<br>%{{customdata[0]:,}} of %{{x:,}} {spec.label(base_col)}"
                           "<extra></extra>"))
    outside = [r for k, rows in groups.items() if k != "within limits" for r in rows]
    x_range = [ns[0] * 0.9, ns[-1]] if centre is not None and points else None
    y_range = None
    if centre is not None and points:
        # The limits at the largest service are in view too (their narrowest point), so
        # a chart of one service, or of services all within limits, still shows where
        # the limits lie, not only the dots and the centre line.
        ys = ([r[y] for r in points] + [centre]
              + list(stats.funnel_limits(centre, max(r[base_col] for r in points),
                                         stats.Z998)))
        pad = max((max(ys) - min(ys)) * 0.12, 1.0)
        y_range = [max(min(ys) - pad, 0), min(max(ys) + pad, 100)]
    fig.update_xaxes(title_text=f"{spec.label(base_col)} (number, the base of the rate)",
                     range=x_range)
    fig.update_yaxes(title_text=axis_title(result, y), range=y_range)
    _base_layout(fig, result, height=480)
    if y_range is not None:  # after the layout, which sets the footnote annotation
        _funnel_labels(fig, [(r[base_col], r[y], _t(r[x])) for r in outside],
                       x_range, y_range)
    fig.update_layout(legend=dict(orientation="v", x=1.01, xanchor="left", y=1,
                                  yanchor="top"), margin=dict(r=190))
    return fig


FUNNEL_PLOT_PX = (820, 330)
"""The funnel's plot area in pixels (width, height) at the export size; the screen's is
about the same, so labels placed for one do not collide on the other."""
_CHAR_PX, _LINE_PX = 6.4, 15


def _funnel_labels(fig: go.Figure, points: list[tuple[float, float, str]],
                   x_range: list[float], y_range: list[float]) -> None:
    """Name each point with an annotation, placed greedily where it overlaps no name
    placed before it and stays inside the plot (a leader line joins a name moved away
    from its point): with 20 services outside the limits, every one is still readable."""
    width, height = FUNNEL_PLOT_PX
    (x0, x1), (y0, y1) = x_range, y_range

    def px(x: float, y: float) -> tuple[float, float]:
        return ((x - x0) / (x1 - x0) * width, (y1 - y) / (y1 - y0) * height)

    dots = [px(x, y) for x, y, _ in points]
    placed: list[tuple[float, float, float, float]] = []

    def clear(box: tuple[float, float, float, float]) -> bool:
        left, top, right, bottom = box
        if left < 0 or right > width or top < 0 or bottom > height:
            return False
        if any(left < b[2] and b[0] < right and top < b[3] and b[1] < bottom for b in placed):
            return False
        # Not over any point either (6 px around each marker).
        return not any(left - 6 < dx < right + 6 and top - 6 < dy < bottom + 6
                       for dx, dy in dots)

    offsets = [(0, -14), (0, 14)] + [(dx, dy) for r in (30, 55, 85, 120)
                                     for dx, dy in ((r, -r // 2), (-r, -r // 2), (r, r // 2),
                                                    (-r, r // 2), (0, -r), (0, r), (r, 0),
                                                    (-r, 0))]
    order = sorted(range(len(points)), key=lambda i: (dots[i][1], dots[i][0]))
    for i in order:
        x, y, name = points[i]
        cx, cy = dots[i]
        w, h = _CHAR_PX * len(name) + 6, _LINE_PX
        for dx, dy in offsets:
            box = (cx + dx - w / 2, cy + dy - h / 2, cx + dx + w / 2, cy + dy + h / 2)
            if clear(box):
                break
        else:  # nowhere clear: keep it inside the plot at least
            dx, dy = 0, -14
            left = min(max(cx - w / 2, 0), width - w)
            box = (left, cy + dy - h / 2, left + w, cy + dy + h / 2)
            dx = left + w / 2 - cx
        placed.append(box)
        style = dict(x=x, y=y, text=name, font=dict(size=11, color="#1F1F1F"),
                     bgcolor="rgba(255,255,255,0.8)")
        if abs(dx) > 20 or abs(dy) > 16:  # moved away: a leader line back to its point
            fig.add_annotation(**style, ax=dx, ay=dy, showarrow=True, arrowhead=0,
                               arrowwidth=0.8, arrowcolor="#777", standoff=5)
        else:
            fig.add_annotation(**style, xshift=dx, yshift=-dy, showarrow=False)


def funnel_groups(result: ChartResult) -> dict[str, list[dict]]:
    """The services shown on a funnel, by where they sit against its limits."""
    spec = result.spec
    y = spec.y[0]
    count_col, base_col = spec.rates[y].count, spec.rates[y].base
    centre = (result.overall or {}).get(y)
    groups: dict[str, list[dict]] = {}
    for i, r in enumerate(result.data.frame.iter_rows(named=True)):
        if result.data.hidden[y][i] or r[y] is None:
            continue
        where = (stats.funnel_position(int(r[count_col]), int(r[base_col]), centre)
                 if centre is not None else "within limits")
        groups.setdefault(where, []).append(r)
    return groups


def funnel_summary(result: ChartResult) -> str:
    """Which services lie outside the funnel's limits, for the caption."""
    groups = funnel_groups(result)
    x = result.spec.x
    parts = []
    for where in ("above 99.8% limit", "above 95% limit", "below 95% limit",
                  "below 99.8% limit"):
        names = [str(r[x]) for r in groups.get(where, [])]
        if names:
            parts.append(f"{where.replace(' limit', ' limits')}: {', '.join(names)}")
    if not parts:
        return "Every service shown lies within the 95% limits."
    return "Outside the limits (" + "; ".join(parts) + ")."


def _table_figure(result: ChartResult) -> go.Figure:
    """KPIs and tables as a Plotly table, so they export like any other chart."""
    frame = table_frame(result)
    fig = go.Figure(go.Table(
        header=dict(values=[f"<b>{c}</b>" for c in frame.columns], fill_color="#E8EEF4",
                    align="left", font=dict(family=FONT, size=12)),
        cells=dict(values=[frame[c].to_list() for c in frame.columns], align="left",
                   fill_color="white", line_color="#DDD", font=dict(family=FONT, size=12)),
    ))
    height = 200 + 28 * frame.height
    return _base_layout(fig, result, height=height)


def table_frame(result: ChartResult) -> pl.DataFrame:
    """The chart's data as text, with the benchmark beside each value where it is drawn."""
    spec = result.spec
    shown = result.data.display()
    if spec.chart == "kpi":
        rows = []
        bench = result.benchmark.display() if result.benchmark is not None else None
        for col in spec.y:
            value = shown[col][0] if shown.height else ""
            row = {"Measure": spec.label(col),
                   "Value": f"{value}{value_suffix(result, col)}" if value not in ("", "–")
                   and not value.startswith("<") else value}
            if bench is not None and bench.height:
                b = bench[col][0]
                b = (f"{b}{value_suffix(result, col)}"
                     if b not in ("", "–") and not b.startswith("<") else b)
                if col in spec.counts and result.count_benchmark_label and b not in ("", "–"):
                    # A count's benchmark is an average service, not the pooled total.
                    b = f"{b} ({result.count_benchmark_label[0].lower()}" \
                        f"{result.count_benchmark_label[1:]})"
                row[result.benchmark_label or "All services"] = b
            rows.append(row)
        return pl.DataFrame(rows) if rows else pl.DataFrame({"Measure": [], "Value": []})
    renamed = shown.rename({c: spec.label(c) for c in shown.columns})
    return renamed
