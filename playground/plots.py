"""Plotly figures for the page, each drawn from a typed Report (or a Comparison, or a SweepResult), never from a model.

    >>> fig = breakdown_figure(analyze("se_resnet50"))  # doctest: +SKIP

One function per question: feature-map shapes per stage, params, MACs and activations per stage, memory per
stage, per stitched module, the latency distribution, top-k predictions of the base and the stitched model, an A/B
comparison, and a sweep's variants on two objectives with their Pareto front.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .report import Latency, MemoryEstimate, Prediction, Report, Shape

__all__ = ["shapes_figure", "breakdown_figure", "memory_figure", "inserts_figure", "latency_figure",
           "predictions_figure", "compare_figure", "sweep_figure", "stage_shapes", "insert_rows"]

if TYPE_CHECKING:
    from .compare import Comparison
    from .sweep.results import SweepResult

BASE = "#9ca3af"  # the unmodified backbone
MODEL = "#4f46e5"  # the stitched model (and spec A)
STITCHED = "#f59e0b"  # stitched modules
SPATIAL = "#0d9488"  # spatial size (and spec B)
SIDES = (MODEL, SPATIAL, STITCHED, "#db2777")  # specs A, B, C, D of a comparison
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _layout(fig: go.Figure, height: int = 340, **kw: Any) -> go.Figure:
    # transparent backgrounds: the page's theme (light or dark) shows through; its CSS colours the text
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=10, r=10, t=48, b=10),
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
                      font=dict(family=FONT, size=12), legend=dict(orientation="h", y=-0.18, x=0),
                      hoverlabel=dict(font_family=FONT), **kw)
    return fig


def stage_shapes(report: Report) -> list[Shape]:
    """The feature maps at the backbone's stage points: input, stem, stage<i>, final (no blocks, no globs)."""
    names = {p.name for p in report.points if ".block" not in p.name}
    return [s for s in report.shapes if s.point in names]


def _where_changed(values: list) -> list[bool]:
    """True at the first of each run of equal values: where a label says something new."""
    return [k == 0 or v != values[k - 1] for k, v in enumerate(values)]


def shapes_figure(report: Report) -> go.Figure:
    """Channels (bars) and spatial size (line, log scale) at each stage of the backbone. Values are written where
    they change (a ViT's twelve blocks of 768 x 14 x 14 get one label each, not twelve overlapping ones)."""
    pts = stage_shapes(report)
    names = [p.point for p in pts]
    dims = [(p.channels, p.height, p.width) for p in pts]
    new_c = _where_changed([c for c, _, _ in dims])
    new_hw = _where_changed([(h, w) for _, h, w in dims])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=names, y=[c for c, _, _ in dims], name="channels", marker_color=MODEL, opacity=0.85,
                text=[str(c) if new else "" for (c, _, _), new in zip(dims, new_c)], textposition="outside",
                cliponaxis=False, customdata=[str(p.shape) for p in pts],
                hovertemplate="%{x}: %{y} channels<br>%{customdata}<extra></extra>")
    fig.add_scatter(x=names, y=[h for _, h, _ in dims], name="spatial size (H)", mode="lines+markers+text",
                    line=dict(color=SPATIAL, width=2), marker=dict(size=8),
                    text=[f"{h}×{w}" if h and new else "" for (_, h, w), new in zip(dims, new_hw)],
                    textposition="top center", customdata=[f"{h}×{w}" if h else "tokens" for _, h, w in dims],
                    hovertemplate="%{x}: %{customdata}<extra></extra>", secondary_y=True)
    fig.update_yaxes(title_text="channels", secondary_y=False, rangemode="tozero")
    sides = sorted({h for _, h, _ in dims if h})
    fig.update_yaxes(title_text="H (pixels or tokens per side)", type="log", secondary_y=True, showgrid=False,
                     tickvals=sides, ticktext=[str(h) for h in sides])
    return _layout(fig, title=dict(text=f"Feature maps at {report.img_size}×{report.img_size}", x=0))


def breakdown_figure(report: Report) -> go.Figure:
    """Parameters (M), GMACs and activations (M) per part of the model: stem, stage<i>, head (stitched modules in
    their stage)."""
    parts = list(report.params.by_stage)
    params = [report.params.by_stage[k] / 1e6 for k in parts]
    macs = [report.macs.by_stage.get(k, 0) / 1e9 for k in parts]
    acts = [report.activations.by_stage.get(k, 0) / 1e6 for k in parts]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Parameters per stage (M)", "GMACs per stage",
                                                        "Activations per stage (M)"), horizontal_spacing=0.08)
    fig.add_bar(x=parts, y=params, marker_color=MODEL, name="params", showlegend=False,
                text=[f"{v:.2f}" for v in params], textposition="outside", cliponaxis=False,
                hovertemplate="%{x}: %{y:.4f} M params<extra></extra>", row=1, col=1)
    fig.add_bar(x=parts, y=macs, marker_color=SPATIAL, name="GMACs", showlegend=False,
                text=[f"{v:.3f}" for v in macs], textposition="outside", cliponaxis=False,
                hovertemplate="%{x}: %{y:.4f} GMACs<extra></extra>", row=1, col=2)
    fig.add_bar(x=parts, y=acts, marker_color=STITCHED, name="activations", showlegend=False,
                text=[f"{v:.2f}" for v in acts], textposition="outside", cliponaxis=False,
                hovertemplate="%{x}: %{y:.4f} M activations<extra></extra>", row=1, col=3)
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig)


def memory_figure(memory: MemoryEstimate) -> go.Figure:
    """Per part of the model (MiB): the activations a training step saves for backward there, and the largest set
    of tensors alive while it runs in inference (every earlier tensor still alive counts, so it is not additive)."""
    parts = list(dict.fromkeys([*memory.peak_by_stage, *memory.saved_by_stage]))
    mib = 2 ** 20
    fig = go.Figure()
    fig.add_bar(x=parts, y=[memory.saved_by_stage.get(k, 0) / mib for k in parts], name="saved for backward (training)",
                marker_color=MODEL, hovertemplate="%{x}: %{y:.1f} MiB saved<extra></extra>")
    fig.add_bar(x=parts, y=[memory.peak_by_stage.get(k, 0) / mib for k in parts],
                name="live tensors at the stage's peak (inference)", marker_color=SPATIAL,
                hovertemplate="%{x}: %{y:.1f} MiB alive<extra></extra>")
    fig.update_yaxes(title_text="MiB", rangemode="tozero")
    title = f"Activation memory per stage: batch {memory.batch}, {memory.dtype} (parameters not included)"
    return _layout(fig, barmode="group", title=dict(text=title, x=0))


def insert_rows(report: Report) -> list[dict]:
    """Stitched modules grouped by spec entry: {index, at, module, instances, params, macs}."""
    entries = report.spec.get("insert", [])
    rows: dict[int, dict] = {}
    for p, m in zip(report.params.by_insert, report.macs.by_insert):
        i = p.index
        at = entries[i]["at"] if i < len(entries) else p.point
        row = rows.setdefault(i, dict(index=i, at=at, module=p.module, instances=0, params=0, macs=0))
        row["instances"] += 1
        row["params"] += p.count
        row["macs"] += m.count
    return [rows[i] for i in sorted(rows)]


def inserts_figure(report: Report) -> go.Figure | None:
    """Parameters (K) and MMACs added by each stitched-module entry of the spec; None when nothing is stitched."""
    rows = insert_rows(report)
    if not rows:
        return None
    labels = [f"#{r['index']} {r['module']} @ {r['at']}" + (f" ×{r['instances']}" if r["instances"] > 1 else "")
              for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Parameters added (K)", "MMACs added"),
                        horizontal_spacing=0.25)
    fig.add_bar(y=labels, x=[r["params"] / 1e3 for r in rows], orientation="h", marker_color=STITCHED,
                showlegend=False, hovertemplate="%{y}: %{x:.3f} K params<extra></extra>", row=1, col=1)
    fig.add_bar(y=labels, x=[r["macs"] / 1e6 for r in rows], orientation="h", marker_color=STITCHED,
                showlegend=False, hovertemplate="%{y}: %{x:.3f} MMACs<extra></extra>", row=1, col=2)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    return _layout(fig, height=max(170, 100 + 34 * len(rows)))


def latency_figure(latency: Latency, base: Latency | None = None) -> go.Figure:
    """Distribution of the timed blocks (ms per forward pass) of the stitched model and, when given, the base."""
    fig = go.Figure()
    runs = [("base", base, BASE)] if base else []
    runs.append(("stitched" if base else "model", latency, MODEL))
    for name, lt, color in runs:
        fig.add_box(x=lt.times_ms or [lt.median_ms], name=name, marker_color=color, boxpoints="all",
                    jitter=0.4, pointpos=0, orientation="h",
                    hovertemplate="%{x:.2f} ms<extra>" + name + "</extra>")
    title = (f"Latency per forward pass: {latency.device}, batch {latency.batch}, {latency.dtype}"
             + (", channels_last" if latency.channels_last else "") + (", compiled" if latency.compiled else ""))
    fig.update_xaxes(title_text="ms", rangemode="tozero")
    return _layout(fig, height=200 + 50 * len(runs), title=dict(text=title, x=0), showlegend=False)


def _short(label: str, n: int = 28) -> str:
    first = label.split(",")[0]
    return first if len(first) <= n else first[:n - 1] + "…"


def predictions_figure(prediction: Prediction) -> go.Figure:
    """Top-k classes of the base and of the stitched model, side by side (probabilities)."""
    panels = [("base backbone", prediction.base_top, BASE), ("stitched model", prediction.top, MODEL)]
    panels = [p for p in panels if p[1]]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.22)
    for col, (name, top, color) in enumerate(panels, 1):
        fig.add_bar(y=[_short(t.label) for t in top], x=[t.prob for t in top], orientation="h",
                    marker_color=color, showlegend=False, text=[f"{t.prob:.1%}" for t in top],
                    textposition="auto", customdata=[t.label for t in top],
                    hovertemplate="%{customdata}: %{x:.2%}<extra>" + name + "</extra>", row=1, col=col)
        fig.update_yaxes(autorange="reversed", automargin=True, row=1, col=col)
        fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=col)
    k = max(len(p[1]) for p in panels)
    return _layout(fig, height=max(240, 80 + 36 * k), title=dict(text=prediction.image, x=0))


def compare_figure(comparison: Comparison) -> go.Figure:
    """Params (M) and GMACs per stage of two to four specs, as grouped bars."""
    parts = [row.part for row in comparison.stages]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Parameters per stage (M)", "GMACs per stage"),
                        horizontal_spacing=0.1)
    for k, (side, color) in enumerate(zip(comparison.sides, SIDES)):
        name = f"{side.name}: {side.title}"
        fig.add_bar(x=parts, y=[(row.params[k] or 0) / 1e6 for row in comparison.stages], name=name,
                    marker_color=color, legendgroup=name, row=1, col=1,
                    hovertemplate="%{x}: %{y:.4f} M<extra>" + side.name + "</extra>")
        fig.add_bar(x=parts, y=[(row.macs[k] or 0) / 1e9 for row in comparison.stages], name=name,
                    marker_color=color, legendgroup=name, showlegend=False, row=1, col=2,
                    hovertemplate="%{x}: %{y:.4f} GMACs<extra>" + side.name + "</extra>")
    fig.update_layout(barmode="group")
    return _layout(fig)


def _axis_title(name: str) -> str:
    from .sweep.results import COLUMNS
    c = COLUMNS[name]
    better = "lower is better" if c.better == "lower" else "higher is better"
    return f"{name} ({c.unit}, {better})" if c.unit != "count" else f"{name} ({better})"


def sweep_figure(result: SweepResult, x: str, y: str) -> go.Figure:
    """A sweep's variants on two of its columns: the rows meeting the constraints (grey), the Pareto front over
    `x` and `y` among them (highlighted, joined in order of `x`), and the rows the constraints drop (faint).
    Hovering shows the variant; its customdata is the row's index (the page opens it from there)."""
    from .sweep.pareto import front_of
    kept = set(result.kept)
    rows = [r for r in result.rows if r.metrics.get(x) is not None and r.metrics.get(y) is not None]
    front = set(front_of([r for r in rows if r.index in kept], (x, y)))
    groups = (("dropped by the constraints", [r for r in rows if r.index not in kept], BASE, 0.3, 7),
              ("variants", [r for r in rows if r.index in kept and r.index not in front], BASE, 0.9, 9),
              ("Pareto front", sorted((r for r in rows if r.index in front), key=lambda r: r.metrics[x]), MODEL, 1.0,
               12))
    fig = go.Figure()
    for name, group, color, opacity, size in groups:
        if not group:
            continue
        fig.add_scatter(x=[r.metrics[x] for r in group], y=[r.metrics[y] for r in group], name=name,
                        mode="lines+markers" if name == "Pareto front" else "markers",
                        marker=dict(color=color, size=size, opacity=opacity, line=dict(width=0)),
                        line=dict(color=color, width=1.5, dash="dot"), customdata=[r.index for r in group],
                        text=[f"#{r.index} {r.label}" for r in group],
                        hovertemplate=f"%{{text}}<br>{x}: %{{x:,.6g}}<br>{y}: %{{y:,.6g}}<extra>{name}</extra>")
    fig.update_xaxes(title_text=_axis_title(x))
    fig.update_yaxes(title_text=_axis_title(y))
    n = len([r for r in rows if r.index in kept])
    title = f"{n} variants, {len(front)} on the Pareto front of {x} and {y}"
    return _layout(fig, height=420, title=dict(text=title, x=0))
