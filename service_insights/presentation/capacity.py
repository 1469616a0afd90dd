"""The Marac capacity chart: for each area, the Idva and administrator FTE that SafeLives
guidance implies for its Marac volume, beside the FTE registered for its services.

Why a figure of its own: the capacity query (queries/marac/capacity_by_area.sql) must
return one row per area so that each implied FTE is a projection proportional to the
protected referral count (the cell-key pass scales it with the perturbed count); the
generic grouped bar wants one row per bar. This reshapes the protected rows, never the
raw ones, into bars.
"""

from __future__ import annotations

import plotly.graph_objects as go

from service_insights.catalogue.results import ChartResult
from service_insights.presentation import charts

CAPACITY_QUERY = "marac/capacity_by_area"
BARS = [
    ("idva_fte_implied", "Idva FTE implied by volume", "#0072B2", ""),
    ("idva_fte_registered", "Idva FTE registered", "#56B4E9", "/"),
    ("admin_fte_implied", "Administrator FTE implied by volume", "#D55E00", ""),
    ("admin_fte_registered", "Administrator FTE registered", "#E69F00", "/"),
]


def figure(result: ChartResult) -> go.Figure:
    frame = result.data.frame
    areas = frame["area_name"].to_list()
    fig = go.Figure()
    for col, name, colour, pattern in BARS:
        fig.add_bar(name=name, x=areas, y=frame[col].to_list(), marker_color=colour,
                    marker_pattern_shape=pattern, marker_line=dict(color="#333", width=0.6),
                    hovertemplate=f"%{{x}}<br>{name}: %{{y:.1f}} FTE<extra></extra>")
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Marac area", type="category")
    fig.update_yaxes(title_text="Full-time equivalents (FTE)")
    return charts._base_layout(fig, result)  # noqa: SLF001 - the shared chart frame
