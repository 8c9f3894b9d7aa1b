"""The report: the summary under the toolbar (stale banner, cards, warnings) and the report tabs beside the spec
(breakdown, shapes, module tree, layer table, latency, predictions, JSON). Analyze, Measure and a photo fill it.

Each part is a dataclass of its components with a `show(report)` that returns {component: value}: adding an
output is a field and a line in its `show`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import gradio as gr

from ... import plots
from ...choices import BATCH, DEVICES, DTYPES, MEMORY_BATCH, OPTIMIZERS, TOPK
from ...errors import RunError, SpecError
from ...report import Report
from ..errors import progress_to, user_errors
from ..render import (
    diff_html,
    inserts_html,
    latency_html,
    memory_html,
    pre_html,
    predictions_md,
    shapes_html,
    stale_html,
    status_html,
    summary_html,
    tree_html,
    warnings_html,
)
from ..runs import ANALYSIS_QUEUE, LATENCY_QUEUE, latency_options, run_analysis
from ..specs import parse_spec, spec_yaml
from ..uploads import photo_input
from .spec import PRIVATE, SpecPanel, on_img_size

__all__ = ["Summary", "ReportTabs", "build_summary", "build_report_tabs", "wire_report"]




def _components(part: Any) -> set[Any]:
    return {getattr(part, f.name) for f in fields(part)}


@dataclass
class Summary:
    banner: gr.HTML
    fit: gr.Button  # under a refused stem change: "Use img_size 256 and analyze", where the refusal found one
    fit_size: gr.State
    summary: gr.HTML
    warnings: gr.HTML

    def show(self, r: Report, seconds: float | None = None) -> dict:
        return {self.banner: "", self.summary: summary_html(r, seconds), self.warnings: warnings_html(r.warnings),
                **self.offer(None)}

    def failed(self, e: Exception) -> dict:
        """The old report marked stale, and the fix the refusal offers (a stem stride that fits at another size)."""
        fits = getattr(e, "fits", None)
        return {self.banner: stale_html(str(e)), **self.offer(fits.img_size if fits else None)}

    def offer(self, size: int | None) -> dict:
        button = gr.update(visible=True, value=f"Use img_size {size} and analyze") if size else gr.update(visible=False)
        return {self.fit: button, self.fit_size: size}


@dataclass
class ReportTabs:
    breakdown_plot: gr.Plot
    inserts_plot: gr.Plot
    inserts: gr.HTML
    shapes_plot: gr.Plot
    shapes: gr.HTML
    tree: gr.HTML
    diff: gr.HTML
    layers: gr.HTML
    device: gr.Dropdown
    batch: gr.Number
    dtype: gr.Dropdown
    channels_last: gr.Checkbox
    compile: gr.Checkbox
    measure: gr.Button
    latency: gr.HTML
    latency_plot: gr.Plot
    memory_batch: gr.Number
    memory_dtype: gr.Dropdown
    optimizer: gr.Dropdown
    estimate: gr.Button
    memory: gr.HTML
    memory_plot: gr.Plot
    image: gr.Image
    topk: gr.Slider
    pred_plot: gr.Plot
    pred_md: gr.Markdown
    json: gr.JSON

    @property
    def displays(self) -> set[Any]:
        """What the tabs show (their inputs stay out: a component that is an output is re-created per session
        when updated, which would drop the photo input's upload checks)."""
        return {self.breakdown_plot, self.inserts_plot, self.inserts, self.shapes_plot, self.shapes, self.tree,
                self.diff, self.layers, self.latency, self.latency_plot, self.memory, self.memory_plot, self.pred_plot,
                self.pred_md, self.json}

    def show(self, r: Report) -> dict:
        """The tabs drawn from a fresh report (latency is measured on demand: cleared)."""
        ins_fig = plots.inserts_figure(r)
        return {self.breakdown_plot: plots.breakdown_figure(r),
                self.inserts_plot: gr.update(value=ins_fig, visible=ins_fig is not None),
                self.inserts: gr.update(value=inserts_html(r), visible=bool(r.inserted)),
                self.shapes_plot: plots.shapes_figure(r), self.shapes: shapes_html(r),
                self.tree: tree_html(r.tree, r.inserted), self.diff: diff_html(r.tree_diff),
                self.layers: pre_html(r.summary), **self.show_predictions(r),
                self.latency: latency_html(None, None), self.latency_plot: None, **self.show_memory(r),
                self.json: r.to_dict()}

    def show_memory(self, r: Report) -> dict:
        return {self.memory: memory_html(r.memory),
                self.memory_plot: plots.memory_figure(r.memory) if r.memory else None}

    def show_predictions(self, r: Report | None) -> dict:
        preds = (r.predictions if r else None) or []
        return {self.pred_plot: plots.predictions_figure(preds[0]) if preds else None,
                self.pred_md: predictions_md(r)}


def build_summary() -> Summary:
    return Summary(gr.HTML("", elem_id="report-state"),
                   gr.Button("", visible=False, size="sm", variant="secondary", elem_id="use-fitting-size"),
                   gr.State(None),
                   gr.HTML('<div class="pg-legend">Analyzing…</div>', elem_id="summary"),
                   gr.HTML("", elem_id="warnings"))


def build_report_tabs(samples: list[str]) -> ReportTabs:
    with gr.Tabs():
        with gr.Tab("Breakdown", id="breakdown"):
            breakdown_plot = gr.Plot(show_label=False, elem_id="breakdown-plot")
            inserts_plot = gr.Plot(show_label=False, visible=False)
            inserts = gr.HTML(visible=False, elem_id="inserts-table")
        with gr.Tab("Shapes", id="shapes"):
            shapes_plot = gr.Plot(show_label=False)
            shapes = gr.HTML(elem_id="shapes-table")
        with gr.Tab("Module tree", id="tree"):
            tree = gr.HTML(elem_id="tree")
            with gr.Accordion("Changes against the base backbone (diff)", open=False):
                diff = gr.HTML()
        with gr.Tab("Layer table", id="layers"):
            layers = gr.HTML()
        with gr.Tab("Latency", id="latency"):
            with gr.Row():
                device = gr.Dropdown(list(DEVICES), value="auto", label="device", min_width=90)
                batch = gr.Number(1, label="batch", precision=0, minimum=BATCH.lo, maximum=BATCH.hi, min_width=80,
                                  elem_id="batch")
                dtype = gr.Dropdown(list(DTYPES), value="fp32", label="precision", min_width=90)
                channels_last = gr.Checkbox(False, label="channels_last", min_width=100)
                compile = gr.Checkbox(False, label="torch.compile", min_width=100)
            measure = gr.Button("Measure latency", variant="primary", elem_id="measure")
            gr.Markdown("Median of at least 10 timed blocks, stitched model and base backbone, with "
                        "the 95% interval of each median; one measurement runs at a time on this server.",
                        elem_classes="pg-hint")
            latency = gr.HTML(latency_html(None, None), elem_id="latency")
            latency_plot = gr.Plot(show_label=False)
        with gr.Tab("Memory", id="memory"):
            with gr.Row():
                memory_batch = gr.Number(8, label="batch", precision=0, minimum=MEMORY_BATCH.lo,
                                         maximum=MEMORY_BATCH.hi, min_width=80, elem_id="memory-batch")
                memory_dtype = gr.Dropdown(list(DTYPES), value="fp32", label="precision (autocast)", min_width=90)
                optimizer = gr.Dropdown(list(OPTIMIZERS), value="adamw", label="optimizer", min_width=90)
            estimate = gr.Button("Estimate memory", variant="primary", elem_id="estimate-memory")
            gr.Markdown("Tensors alive at once in a forward pass (inference), and parameters + gradients + "
                        "optimizer state + activations saved for backward (one training step), on fake tensors: "
                        "no compute, any batch.", elem_classes="pg-hint")
            memory = gr.HTML(memory_html(None), elem_id="memory")
            memory_plot = gr.Plot(show_label=False)
        with gr.Tab("Predictions", id="predictions"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=220):
                    image = photo_input(label="Photo", sources=["upload", "clipboard"], height=240, elem_id="photo")
                    gr.Examples([[p] for p in samples], inputs=[image], label="Sample photos (scikit-image)",
                                cache_examples=False)
                    topk = gr.Slider(TOPK.lo, 10, value=5, step=1, label="top-k")
                with gr.Column(scale=3):
                    pred_plot = gr.Plot(show_label=False)
                    pred_md = gr.Markdown(predictions_md(None), elem_id="pred-md")
        with gr.Tab("Report JSON", id="json"):
            json = gr.JSON(label="Report (the JSON contract of the CLI and the API)")
    return ReportTabs(breakdown_plot, inserts_plot, inserts, shapes_plot, shapes, tree, diff, layers, device, batch,
                      dtype, channels_last, compile, measure, latency, latency_plot, memory_batch, memory_dtype,
                      optimizer, estimate, memory, memory_plot, image, topk, pred_plot, pred_md, json)


# ---- handlers

def on_analyze(spec_panel: SpecPanel, summary: Summary, tabs: ReportTabs, text: str, image: str | None,
               topk: Any, progress=gr.Progress()) -> dict:
    """Analyze: build, count, tabulate (and predict when a photo is there). When the spec does not build, the old
    report stays but is marked stale, and the status line says why."""
    start = time.perf_counter()
    try:
        spec = parse_spec(text)
    except SpecError as e:  # the status line says so already; the banner marks the report stale
        return summary.failed(e) | {spec_panel.status: status_html(error=str(e))}
    try:
        report = run_analysis(spec, images=[image] if image else None, topk=int(topk or 5),
                              progress=progress_to(progress))
    except SpecError as e:
        return summary.failed(e) | {spec_panel.status: status_html(error=f"does not build: {e}")}
    except RunError as e:  # a worker crashed or overstepped a budget: the spec may be fine
        return summary.failed(e) | {spec_panel.status: status_html(error=f"stopped: {e}")}
    return (summary.show(report, time.perf_counter() - start) | tabs.show(report)
            | {spec_panel.status: status_html(spec, built=True), spec_panel.built: spec_yaml(spec)})


def on_photo(tabs: ReportTabs, text: str, image: str | None, topk: Any) -> dict:
    """A photo was uploaded or picked: top-k of the base and the stitched model."""
    if not image:
        return tabs.show_predictions(None)
    return tabs.show_predictions(run_analysis(parse_spec(text), images=[image], topk=int(topk or 5)))


def on_measure(summary: Summary, tabs: ReportTabs, text: str, device: str, batch: Any, dtype: str,
               channels_last: bool, compile: bool, progress=gr.Progress()) -> dict:
    """Measure: the model and (when the spec changes the backbone) the base, by `analyze`'s one latency path."""
    opts = {**latency_options(device, batch, dtype, channels_last, compile), "base": True}
    r = run_analysis(parse_spec(text), latency=opts, progress=progress_to(progress))
    return {summary.summary: summary_html(r), tabs.latency: latency_html(r.latency, r.base_latency),
            tabs.latency_plot: plots.latency_figure(r.latency, r.base_latency)}


def on_estimate(summary: Summary, tabs: ReportTabs, text: str, batch: Any, dtype: str, optimizer: str,
                progress=gr.Progress()) -> dict:
    """Estimate memory: the static report with the memory estimate at the chosen batch, precision and optimizer."""
    n = float(batch) if batch not in (None, "") else 8.0
    opts = {"batch": int(n) if n.is_integer() else n, "dtype": dtype or "fp32", "optimizer": optimizer or "adamw"}
    r = run_analysis(parse_spec(text), memory=opts, progress=progress_to(progress))
    return {summary.summary: summary_html(r), **tabs.show_memory(r)}


def wire_report(p: SpecPanel, summary: Summary, tabs: ReportTabs) -> Any:
    """Analyze, Measure and the photo; returns the Analyze event's function, for the page load to chain."""
    analyze = user_errors(partial(on_analyze, p, summary, tabs))
    outputs = _components(summary) | tabs.displays | {p.status, p.built}
    inputs = [p.yaml, tabs.image, tabs.topk]
    p.toolbar.analyze.click(analyze, inputs, outputs, **ANALYSIS_QUEUE, **PRIVATE)
    summary.fit.click(user_errors(partial(on_img_size, p)), [p.history, p.built, summary.fit_size], p.view_outputs,
                      **PRIVATE).success(analyze, inputs, outputs, **ANALYSIS_QUEUE, **PRIVATE)
    pred_out = [tabs.pred_plot, tabs.pred_md]
    tabs.image.change(lambda: tabs.show_predictions(None), None, pred_out, **PRIVATE).then(
        user_errors(partial(on_photo, tabs)), inputs, pred_out, **ANALYSIS_QUEUE, trigger_mode="always_last",
        **PRIVATE)
    tabs.measure.click(user_errors(partial(on_measure, summary, tabs)),
                       [p.yaml, tabs.device, tabs.batch, tabs.dtype, tabs.channels_last, tabs.compile],
                       [summary.summary, tabs.latency, tabs.latency_plot], **LATENCY_QUEUE, **PRIVATE,
                       show_progress_on=tabs.latency)  # one progress bar: the page repaints less while it times
    tabs.estimate.click(user_errors(partial(on_estimate, summary, tabs)),
                        [p.yaml, tabs.memory_batch, tabs.memory_dtype, tabs.optimizer],
                        [summary.summary, tabs.memory, tabs.memory_plot], **ANALYSIS_QUEUE, **PRIVATE)
    return lambda dep: dep.then(analyze, inputs, outputs, **ANALYSIS_QUEUE, **PRIVATE)
