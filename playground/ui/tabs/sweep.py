"""The Sweep tab: a sweep's YAML (or a preset), its variant count before anything runs, Run with progress, the
results table and chart with the Pareto front, constraints and objective pickers that re-filter without running,
and any variant opened in the Playground tab (or its spec copied)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import yaml

from ... import plots
from ...errors import SpecError
from ...spec import Spec
from ...sweep import COLUMNS, SweepResult, sweep_preset_files
from ..errors import user_errors
from ..render import sweep_count_html, sweep_summary_html, sweep_table_html
from ..runs import ANALYSIS_QUEUE, run_sweep, sweep_limit
from ..specs import parse_sweep, spec_yaml
from .spec import PRIVATE, SpecPanel, view

__all__ = ["SweepPanel", "build_sweep", "wire_sweep", "DEFAULT_SWEEP"]

DEFAULT_SWEEP = "seed000_metaformer_stride_head_norm"  # four CIFAR-size variants: a first run takes seconds
HELP = ("`axes`: a spec field path (`backbone`, `img_size`, `stem.stride`, `insert[0].module`, `insert[0].at`, "
        "`head_norm`, ...) and its values; the product of all axes by default, `zip: [[a, b]]` for axes that take "
        "their values together. Results are cached on the server by variant: a re-run or a widened sweep computes "
        "only what is new.")


@dataclass
class SweepPanel:
    preset: gr.Dropdown
    text: gr.Code
    count: gr.HTML
    latency: gr.Checkbox
    run: gr.Button
    where: gr.Textbox
    x: gr.Dropdown
    y: gr.Dropdown
    summary: gr.HTML
    plot: gr.Plot
    table: gr.HTML
    variant: gr.Dropdown
    variant_yaml: gr.Code
    open: gr.Button
    result: gr.State  # the last SweepResult (None before a run)

    @property
    def shown(self) -> list[Any]:
        """What a run or a re-filter redraws."""
        return [self.summary, self.plot, self.table, self.variant, self.variant_yaml, self.result]


def _preset_text(name: str) -> str:
    return sweep_preset_files()[name].read_text(encoding="utf-8")


def build_sweep() -> SweepPanel:
    gr.Markdown("Every combination of a base spec's axes, analysed in the workers: a table, its Pareto front, and "
                "any variant opened in the Playground tab. " + HELP, elem_classes="pg-hint")
    files = sweep_preset_files()
    default = DEFAULT_SWEEP if DEFAULT_SWEEP in files else next(iter(files), None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=340):
            preset = gr.Dropdown(list(files), value=default, label="Sweep preset", elem_id="sweep-preset")
            text = gr.Code(_preset_text(default) if default else "", language="yaml", label="Sweep (YAML)", lines=14,
                           interactive=True, wrap_lines=False, elem_id="sweep-yaml")
            count = gr.HTML(count_line(_preset_text(default) if default else ""))
            with gr.Row():
                latency = gr.Checkbox(False, label="also measure latency (one variant at a time: slower)",
                                      elem_id="sweep-latency")
                run = gr.Button("Run sweep", variant="primary", elem_id="sweep-run")
        with gr.Column(scale=9, min_width=340):
            with gr.Row():
                where = gr.Textbox(label="constraints", placeholder="gmacs <= 4.5, params_m <= 30", scale=3,
                                   elem_id="sweep-where", info="filter the table and the chart (Enter)")
                columns = list(COLUMNS)
                x = gr.Dropdown(columns, value="gmacs", label="x objective", scale=1, min_width=120, elem_id="sweep-x")
                y = gr.Dropdown(columns, value="params_m", label="y objective", scale=1, min_width=120,
                                elem_id="sweep-y")
            summary = gr.HTML(elem_id="sweep-summary-box")
            plot = gr.Plot(show_label=False, elem_id="sweep-plot")
            table = gr.HTML(elem_id="sweep-table")
            with gr.Row(equal_height=True):
                variant = gr.Dropdown([], label="variant", scale=3, elem_id="sweep-variant",
                                      info="a Pareto-front variant is chosen first")
                open_ = gr.Button("Open in playground", scale=1, elem_id="sweep-open")
            variant_yaml = gr.Code("", language="yaml", label="its spec (copy it, or open it)", lines=6,
                                   interactive=False, buttons=["copy"], elem_id="sweep-variant-yaml")
    return SweepPanel(preset, text, count, latency, run, where, x, y, summary, plot, table, variant, variant_yaml,
                      open_, gr.State(None))


# ---- handlers

def count_line(text: str) -> str:
    """The variant count of the YAML as typed (nothing runs), or why it is not a sweep."""
    try:
        spec = parse_sweep(text)
    except SpecError as e:
        return sweep_count_html(error=str(e))
    limit = min(spec.limit, sweep_limit())
    if spec.count > limit:
        return sweep_count_html(error=f"{spec.describe()}: over the limit of {limit:,} here; narrow an axis")
    return sweep_count_html(spec.describe(), limit)


def variant_yaml(result: SweepResult | None, index: Any) -> str:
    """The chosen variant's spec as the Playground's YAML ('' when none is chosen)."""
    if result is None or index in (None, ""):
        return ""
    row = result.row(int(index))
    try:
        return spec_yaml(Spec.from_dict(row.spec))
    except SpecError:  # an invalid variant: its data as it is
        return yaml.safe_dump(row.spec, sort_keys=False, default_flow_style=None)


def show(p: SweepPanel, result: SweepResult, x: str, y: str) -> dict:
    """The result under the constraints and objectives: summary, chart, table, the variant menu (front first)."""
    valid = [r for r in result.rows if r.ok]
    order = [result.rows[i] for i in result.front] + [r for r in valid if r.index not in set(result.front)]
    choices = [(f"#{r.index} {'★ ' if r.index in set(result.front) else ''}{r.label}", str(r.index)) for r in order]
    chosen = choices[0][1] if choices else None
    return {p.summary: sweep_summary_html(result), p.plot: plots.sweep_figure(result, x, y),
            p.table: sweep_table_html(result), p.variant: gr.update(choices=choices, value=chosen),
            p.variant_yaml: variant_yaml(result, chosen), p.result: result}


def on_run(p: SweepPanel, text: str, latency: bool, where: str, x: str, y: str, progress=gr.Progress()) -> dict:
    def step(done: int, total: int, label: str) -> None:
        progress((done, total), desc=label, unit="variants")
    objectives = [x, y] if x and y and x != y else None
    return show(p, run_sweep(text, latency=latency, where=where, objectives=objectives, progress=step), x, y)


def on_filter(p: SweepPanel, result: SweepResult | None, where: str, x: str, y: str) -> dict:
    """Constraints or objectives changed: the same rows, re-filtered (nothing runs)."""
    if result is None:
        return {p.result: None}  # not {}: Gradio reads an empty dict as one value
    objectives = [x, y] if x and y and x != y else None
    return show(p, result.refilter(where, objectives), x, y)


def on_open(spec: SpecPanel, history, built: str | None, text: str) -> dict:
    """The chosen variant becomes the Playground's spec (one undo step), and the Playground tab is shown."""
    if not text.strip():
        raise SpecError("open in playground: run the sweep and choose a variant first")
    return view(spec, history.commit(text, "sweep"), built)


def wire_sweep(p: SweepPanel, spec: SpecPanel, tabs: gr.Tabs, then_analyze) -> None:
    p.preset.input(_preset_text, p.preset, p.text, **PRIVATE)
    p.text.change(count_line, p.text, p.count, trigger_mode="always_last", **PRIVATE)
    shown = p.shown
    p.run.click(user_errors(partial(on_run, p)), [p.text, p.latency, p.where, p.x, p.y], shown, **ANALYSIS_QUEUE,
                **PRIVATE)
    refilter = user_errors(partial(on_filter, p))
    gr.on([p.where.submit, p.x.input, p.y.input], refilter, [p.result, p.where, p.x, p.y], shown,
          trigger_mode="always_last", **PRIVATE)
    p.variant.input(variant_yaml, [p.result, p.variant], p.variant_yaml, **PRIVATE)
    opened = p.open.click(user_errors(partial(on_open, spec)), [spec.history, spec.built, p.variant_yaml],
                          spec.view_outputs, **PRIVATE)
    then_analyze(opened.success(lambda: gr.Tabs(selected="playground"), None, tabs, **PRIVATE))
