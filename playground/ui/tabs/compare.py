"""The Compare tab: two specs side by side (totals, per-stage chart, shapes, prediction agreement)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from ... import plots
from ...spec import Spec
from ..errors import progress_to, shown, user_errors
from ..render import compare_html
from ..runs import LATENCY_QUEUE, compare_specs
from ..specs import preset_yaml, spec_yaml
from .spec import PRIVATE

__all__ = ["ComparePanel", "build_compare", "wire_compare"]


@dataclass
class Side:
    text: gr.Code
    preset: gr.Dropdown
    copy: gr.Button


@dataclass
class ComparePanel:
    a: Side
    b: Side
    latency: gr.Checkbox
    run: gr.Button
    totals: gr.HTML
    shapes: gr.HTML
    plot: gr.Plot
    predictions: gr.HTML


def build_compare(presets: dict[str, Spec]) -> ComparePanel:
    gr.Markdown("Two specs side by side. Predictions are compared on the sample photos (chelsea, coffee).")
    sides = []
    with gr.Row():
        for name, preset in (("A", None), ("B", "se_resnet50")):
            with gr.Column(min_width=300):
                text = spec_yaml(presets[preset]) if preset in presets else "backbone: resnet50\n"
                code = gr.Code(text, language="yaml", label=f"Spec {name}", lines=8, interactive=True,
                               elem_id=f"cmp-{name.lower()}")
                with gr.Row():
                    menu = gr.Dropdown([(s.title or n, n) for n, s in presets.items()], value=None,
                                       label="load a preset", scale=2)
                    copy = gr.Button("← playground spec", size="sm", scale=1)
                sides.append(Side(code, menu, copy))
    with gr.Row():
        latency = gr.Checkbox(False, label="also measure latency (CPU/GPU time: slower)")
        run = gr.Button("Compare", variant="primary", elem_id="compare-run")
    with gr.Row(equal_height=False):
        with gr.Column(min_width=320):
            totals = gr.HTML(elem_id="cmp-totals")
        with gr.Column(min_width=320):
            shapes = gr.HTML(elem_id="cmp-shapes")
    plot = gr.Plot(show_label=False)
    predictions = gr.HTML(elem_id="cmp-predictions")
    return ComparePanel(*sides, latency, run, totals, shapes, plot, predictions)


def on_compare(p: ComparePanel, text_a: str, text_b: str, latency: bool, progress=gr.Progress()) -> dict:
    c = compare_specs(text_a, text_b, latency=latency, progress=progress_to(progress))
    totals, shapes, preds = compare_html(c)
    for caveat in c.caveats:
        gr.Info(shown(caveat), title="Compare")
    return {p.totals: totals, p.shapes: shapes, p.plot: plots.compare_figure(c), p.predictions: preds}


def wire_compare(p: ComparePanel, playground_yaml: gr.Code) -> None:
    for side in (p.a, p.b):
        side.preset.input(preset_yaml, side.preset, side.text, **PRIVATE)
        side.copy.click(lambda t: t, playground_yaml, side.text, **PRIVATE)
    p.run.click(user_errors(partial(on_compare, p)), [p.a.text, p.b.text, p.latency],
                [p.totals, p.shapes, p.plot, p.predictions], **LATENCY_QUEUE,
                **PRIVATE)
