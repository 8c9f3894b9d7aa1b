"""The page: header, the Playground tab (toolbar, summary, spec panel beside the report tabs), Compare, Sweep,
Export & share, the named API; then the events. `app.py` launches it with `launch_kwargs()`."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from ..choices import CURATED_BACKBONES
from ..errors import SpecError
from ..presets import list_presets, load_preset
from . import api, backbones, runs
from .errors import shown, user_errors
from .history import History
from .samples import sample_dir, sample_images
from .specs import decode_spec, preset_yaml
from .tabs.compare import build_compare, wire_compare
from .tabs.export import build_export, wire_export
from .tabs.report import build_report_tabs, build_summary, wire_report
from .tabs.spec import PRIVATE, SpecPanel, build_spec_panel, build_toolbar, view, wire_spec_panel
from .tabs.sweep import build_sweep, wire_sweep

__all__ = ["build_demo", "launch_kwargs", "warm_up", "on_load", "DEFAULT_PRESET", "MAX_UPLOAD"]

log = logging.getLogger(__name__)

DEFAULT_PRESET = "efficientnet_lite0"
MAX_UPLOAD = "10mb"  # launch(max_file_size=...): photos for predictions
ASSETS = Path(__file__).resolve().parent / "assets"
THEME = gr.themes.Default(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")
INTRO = ("# Architecture Playground\nStitch attention modules (SE, ECA, CBAM, …) into timm backbones, change the "
         "embedding stride, and see what it does to parameters, compute, feature-map shapes, latency and predictions.")


def start_text(query: dict[str, str]) -> str:
    """The spec a page opens with: `?spec=<base64url YAML>` or `?preset=<name>` from the URL, else the default."""
    try:
        if query.get("spec"):
            return decode_spec(query["spec"])
        if query.get("preset"):
            return preset_yaml(query["preset"])
    except SpecError as e:
        gr.Warning(shown(f"{e}; showing the default preset instead"), title="Shared link")
    return preset_yaml(DEFAULT_PRESET)


def on_load(p: SpecPanel, request: gr.Request) -> dict:
    """Page load: a fresh history holding the spec from the URL (or the default), shown everywhere, and the full
    backbone menu (the page was built with the curated names only, asking no worker)."""
    query = dict(request.query_params) if request is not None else {}
    out = view(p, History.start(start_text(query)), None)
    shown_value = {"value": out[p.backbone]} if p.backbone in out else {}
    return out | {p.backbone: gr.update(choices=backbones.menu(), **shown_value)}


def build_demo() -> gr.Blocks:
    """The Blocks of the whole page (not launched; see app.py). Building it starts no worker and imports no torch."""
    presets = list_presets()
    with gr.Blocks(title="Architecture Playground", analytics_enabled=False) as demo:
        gr.Markdown(INTRO, elem_classes="pg-header")
        with gr.Tabs() as page_tabs:
            with gr.Tab("Playground", id="playground"):
                toolbar = build_toolbar(presets, DEFAULT_PRESET)
                summary = build_summary()
                with gr.Row(equal_height=False, elem_id="main-row"):
                    with gr.Column(scale=5, min_width=340, elem_id="spec-col"):
                        spec = build_spec_panel(toolbar, list(CURATED_BACKBONES), load_preset(DEFAULT_PRESET))
                    with gr.Column(scale=9, min_width=340, elem_id="report-col"):
                        tabs = build_report_tabs(sample_images())
            with gr.Tab("Compare", id="compare"):
                compare = build_compare(presets)
            with gr.Tab("Sweep", id="sweep"):
                sweep = build_sweep()
            with gr.Tab("Export & share", id="export"):
                export = build_export()
        api.register()
        wire_spec_panel(spec)
        then_analyze = wire_report(spec, summary, tabs)
        wire_compare(compare, spec.yaml)
        wire_sweep(sweep, spec, page_tabs, then_analyze)
        wire_export(export, spec.yaml)

        def load(request: gr.Request) -> dict:  # not a partial: Gradio finds `gr.Request` by the annotation
            return on_load(spec, request)
        then_analyze(demo.load(user_errors(load), None, spec.view_outputs, **PRIVATE))
    return demo


def launch_kwargs() -> dict[str, Any]:
    """What `launch()` needs besides the address: theme, CSS and script, upload limit, the sample photos' folder."""
    return dict(theme=THEME, css_paths=[ASSETS / "style.css"], js=(ASSETS / "page.js").read_text(),
                max_file_size=MAX_UPLOAD, allowed_paths=[str(sample_dir())], footer_links=["api", "settings"])


def warm_up() -> None:
    """Start the workers, fetch the backbone menu, and analyse the default preset in each worker (imports, weight
    conversion, caches), so that the first page loads are quick."""
    try:
        backbones.sizes()
        runs.service().warm(load_preset(DEFAULT_PRESET))
    except Exception:  # warming is best effort; the page reports real errors
        log.exception("warm-up failed")
