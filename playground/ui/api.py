"""The named API endpoints (`/analyze`, `/predict`, `/points`, `/presets`, `/modules`, `/backbones`, `/compare`,
`/sweep`): JSON text in and out. With `python app.py --mcp` they are also MCP tools of the same names: their
docstrings are the tools' descriptions (Gradio reads the summary and one line per argument under "Args:"), the type
hints their argument types.

Results are JSON *text*: gradio_client takes any returned dict with a "path" key for a file to download, and
reports name module paths `path`. `json.loads` the result (it is the CLI's `--json` output for a report).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from ..catalog import catalog
from ..errors import SpecError
from ..presets import list_presets
from . import backbones
from .errors import user_errors
from .runs import ANALYSIS_QUEUE, LATENCY_QUEUE, compare_specs, latency_options, point_dicts, run_analysis, run_sweep
from .specs import menu_spec, parse_spec, spec_yaml
from .uploads import photo_input

__all__ = ["api_analyze", "api_predict", "api_points", "api_presets", "api_modules", "api_backbones", "api_compare",
           "api_sweep", "register"]


def api_analyze(spec: str, latency: bool = False, device: str = "auto", batch: int = 1, dtype: str = "fp32") -> str:
    """Analyze a vision backbone with modules stitched in: parameters, MACs (per stage, per stitched module, against
    the unmodified backbone), feature-map shapes, module tree; the forward pass timed when asked.

    Args:
        spec: the spec as YAML or JSON text (backbone, insert list, stem stride, img_size, ...) or a preset name.
        latency: also time the forward pass (one measurement at a time on the server; takes seconds).
        device: where to time it: auto, cpu or cuda.
        batch: images per timed forward pass.
        dtype: fp32, fp16 or bf16 for the timed pass.
    Returns:
        The Report as JSON text: params.total and params.delta, macs.total (multiply-accumulates), shapes, warnings.
    """
    opts = latency_options(device, batch, dtype) if latency else None
    return run_analysis(parse_spec(spec), latency=opts).to_json()


def api_predict(spec: str, image: str | None, topk: float = 5) -> str:
    """Top-k ImageNet classes of the stitched model and of its unmodified backbone for one photo, with how far
    they agree (meaningful with pretrained weights).

    Args:
        spec: the spec as YAML or JSON text, or a preset name (efficientnet_lite0 has weights offline).
        image: the photo, a file uploaded to the app or an http(s) URL.
        topk: how many classes to list.
    Returns:
        JSON text: predictions (top classes of both models and their agreement), warnings, pretrained.
    """
    if not image:
        raise SpecError("predict: give an image (gradio_client.handle_file('photo.jpg'))")
    r = run_analysis(parse_spec(spec), images=[image], topk=int(topk or 5))
    return json.dumps({"predictions": r.to_dict()["predictions"], "warnings": r.warnings,
                       "pretrained": r.pretrained})


def api_points(backbone: str, img_size: int = 0) -> str:
    """The named places of a backbone where a module can be stitched (input, stem, stage<i>, stage<i>.block<j>,
    final), each with its layout, channels and feature-map shape; use a name as an insertion's `at`.

    Args:
        backbone: a timm model name, e.g. resnet50, convnext_tiny, vit_base_patch16_224.
        img_size: input size in pixels; 0 for the backbone's default.
    Returns:
        JSON text: a list of points with name, path, layout, channels, shape.
    """
    return json.dumps(point_dicts(menu_spec(backbone, img_size or None)))


def api_presets() -> str:
    """The ready-made specs (SE-ResNet-50, ECA-ResNet-50, ViT-B/16 with stitched modules, ...): their names are
    accepted wherever a spec is.

    Returns:
        JSON text: {name: {title, description, yaml}}.
    """
    return json.dumps({n: {"title": s.title, "description": s.description, "yaml": spec_yaml(s)}
                       for n, s in list_presets().items()})


def api_modules() -> str:
    """The modules that can be stitched (an insertion's `module`), with their paper, arguments and where they work;
    combine them as {serial: [a, b]} or {parallel: [a, b], merge: add | mul | concat}.

    Returns:
        JSON text: {name: {paper, args: {name: type}, needs_grid, residual}}.
    """
    return json.dumps({m.name: {"paper": m.paper, "args": {a: "|".join(t.__name__ for t in ts)
                                                           for a, ts in m.args.items()},
                                "needs_grid": m.needs_grid, "residual": m.residual} for m in catalog().values()})


def api_backbones(query: str = "", limit: int = 50) -> str:
    """Backbone names timm can build here (any of them is a spec's `backbone`), filtered by a substring.

    Args:
        query: part of the name, e.g. convnext or vit_small; empty for the curated ones first.
        limit: the most names to return.
    Returns:
        JSON text: {name: default input size in pixels}, best matches first.
    """
    return json.dumps(backbones.search(query, int(limit or 50)))


def api_compare(spec_a: str, spec_b: str, latency: bool = False) -> str:
    """Two specs side by side, against the first: totals, per-stage params and MACs, shapes, prediction agreement
    on sample photos, latency with its spread when asked.

    Args:
        spec_a: the reference spec (YAML or JSON text, or a preset name).
        spec_b: the spec compared with it.
        latency: also time both (one measurement at a time on the server; takes seconds).
    Returns:
        JSON text: a Comparison (sides, stages, shapes, caveats).
    """
    return compare_specs(spec_a, spec_b, latency=latency).to_json()


def api_sweep(sweep: str, latency: bool = False, where: str = "", objectives: str = "") -> str:
    """Run a sweep: every combination of its axes (backbone, img_size, stem.stride, insert, a module, its point,
    merge, ...) over a base spec, each variant's params, MACs and shapes, and the Pareto front of the ones that meet
    the constraints. Refused above the server's variant limit.

    Args:
        sweep: the sweep as YAML text ({base: spec, axes: {field path: [values]}, zip: [...]}) or a sweep preset name.
        latency: also time every variant, one at a time (slow: seconds per variant).
        where: constraints that filter the rows, e.g. "gmacs <= 4.5, params_m <= 30"; empty for none.
        objectives: comma-separated columns the Pareto front minimises, e.g. "gmacs,params_m"; empty for the sweep's.
    Returns:
        JSON text: a SweepResult (rows with each variant's numbers or why it is invalid, the front, the count).
    """
    names = [o for o in (objectives or "").split(",") if o.strip()] or None
    return run_sweep(sweep, latency=latency, where=where or None, objectives=names).to_json()


def endpoint(fn: Callable, name: str) -> Callable:
    """`fn` as the endpoint `name`: errors as plain lines, and named so that its MCP tool is called `name`."""
    wrapped = user_errors(fn, page=False)
    wrapped.__name__ = wrapped.__qualname__ = name
    return wrapped


@dataclass
class _PredictInputs:
    """Hidden components of `/predict`: an image component, so uploads are checked like the page's."""
    spec: gr.Textbox
    image: gr.Image
    topk: gr.Number
    out: gr.Textbox
    go: gr.Button


def register() -> None:
    """Declare the endpoints in the Blocks being built (the page's own events are private)."""
    with gr.Row(visible=False):
        hidden = _PredictInputs(gr.Textbox(), photo_input(), gr.Number(5, precision=0), gr.Textbox(), gr.Button())
    gr.api(endpoint(api_analyze, "analyze"), api_name="analyze", **ANALYSIS_QUEUE)
    hidden.go.click(endpoint(api_predict, "predict"), [hidden.spec, hidden.image, hidden.topk], hidden.out,
                    api_name="predict", **ANALYSIS_QUEUE)
    gr.api(endpoint(api_points, "points"), api_name="points")
    gr.api(endpoint(api_presets, "presets"), api_name="presets")
    gr.api(endpoint(api_modules, "modules"), api_name="modules")
    gr.api(endpoint(api_backbones, "backbones"), api_name="backbones")
    gr.api(endpoint(api_compare, "compare"), api_name="compare", **LATENCY_QUEUE)
    gr.api(endpoint(api_sweep, "sweep"), api_name="sweep", **ANALYSIS_QUEUE)  # its timings wait in the latency lane


