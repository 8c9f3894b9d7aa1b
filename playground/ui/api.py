"""The named API endpoints (`/analyze`, `/predict`, `/points`, `/presets`, `/compare`, `/sweep`): JSON text in and out.

Results are JSON *text*: gradio_client takes any returned dict with a "path" key for a file to download, and
reports name module paths `path`. `json.loads` the result (it is the CLI's `--json` output for a report).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr

from ..errors import SpecError
from ..presets import list_presets
from .errors import user_errors
from .runs import ANALYSIS_QUEUE, LATENCY_QUEUE, compare_specs, latency_options, point_dicts, run_analysis, run_sweep
from .specs import menu_spec, parse_spec, spec_yaml
from .uploads import photo_input

__all__ = ["api_analyze", "api_predict", "api_points", "api_presets", "api_compare", "api_sweep", "register"]




def api_analyze(spec: str, latency: bool = False, device: str = "auto", batch: int = 1, dtype: str = "fp32") -> str:
    """Analyze a spec (YAML text or a preset name): the Report as JSON text (params, MACs, shapes, tree, ...).

    With latency=true the forward pass is timed (one measurement at a time on the server).
    """
    opts = latency_options(device, batch, dtype) if latency else None
    return run_analysis(parse_spec(spec), latency=opts).to_json()


def api_predict(spec: str, image: str | None, topk: float = 5) -> str:
    """Top-k classes of the stitched and the base model for one photo, with their agreement (JSON text)."""
    if not image:
        raise SpecError("predict: give an image (gradio_client.handle_file('photo.jpg'))")
    r = run_analysis(parse_spec(spec), images=[image], topk=int(topk or 5))
    return json.dumps({"predictions": r.to_dict()["predictions"], "warnings": r.warnings,
                       "pretrained": r.pretrained})


def api_points(backbone: str, img_size: int = 0) -> str:
    """The insertion points of a backbone with layout, channels and shape (img_size 0: its default), JSON text."""
    return json.dumps(point_dicts(menu_spec(backbone, img_size or None)))


def api_presets() -> str:
    """Every preset as JSON text: {name: {title, description, yaml}}."""
    return json.dumps({n: {"title": s.title, "description": s.description, "yaml": spec_yaml(s)}
                       for n, s in list_presets().items()})


def api_compare(spec_a: str, spec_b: str, latency: bool = False) -> str:
    """Two specs side by side (JSON text, a Comparison): totals, per-stage params and MACs, shapes, latency with
    its spread when asked, prediction agreement on the sample photos, caveats."""
    return compare_specs(spec_a, spec_b, latency=latency).to_json()


def api_sweep(sweep: str, latency: bool = False, where: str = "", objectives: str = "") -> str:
    """Run a sweep (YAML text or a sweep preset's name): every combination of its axes, as a SweepResult in JSON
    text, the rows `playground sweep --json` prints: each variant's params, MACs, latency when asked, final shape,
    warnings, or why it is invalid; the rows meeting `where` ("gmacs <= 4.5, params_m <= 30") and their Pareto
    front over `objectives` (comma-separated columns; default the sweep's). Refused above the server's variant limit.
    """
    names = [o for o in (objectives or "").split(",") if o.strip()] or None
    return run_sweep(sweep, latency=latency, where=where or None, objectives=names).to_json()


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
    gr.api(user_errors(api_analyze), api_name="analyze", **ANALYSIS_QUEUE)
    hidden.go.click(user_errors(api_predict), [hidden.spec, hidden.image, hidden.topk], hidden.out,
                    api_name="predict", **ANALYSIS_QUEUE)
    gr.api(user_errors(api_points), api_name="points")
    gr.api(user_errors(api_presets), api_name="presets")
    gr.api(user_errors(api_compare), api_name="compare", **LATENCY_QUEUE)
    gr.api(user_errors(api_sweep), api_name="sweep", **ANALYSIS_QUEUE)  # its timings wait in the latency lane


