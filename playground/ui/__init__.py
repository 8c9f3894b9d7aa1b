"""The web UI: a Gradio Blocks page that edits a spec and renders its Report; `app.py` only launches it.

One module per concern: `specs` (spec <-> controls, share links, the insertion editor's rows; no Gradio),
`history` (undo / redo), `render` (HTML from a typed Report or SweepResult), `tabs/` (one module per part of the
page: its components as a dataclass, its handlers returning {component: value}), `api` (the named endpoints), `runs`
(model runs and sweeps, in the workers or holding a GPU on ZeroGPU), `workers` (the server's one worker Service),
`backbones` (timm's names and default sizes, as a worker sent them), `uploads` (photo checks), `samples`, `page`
(layout, launch settings) and `assets/` (CSS, the page's script). None of them imports torch.
"""
from .api import api_analyze, api_compare, api_points, api_predict, api_presets, api_sweep
from .page import DEFAULT_PRESET, build_demo, launch_kwargs, warm_up
from .runs import GPU_SECONDS, analyze_on_device, compare_on_device, run_analysis
from .samples import sample_images
from .specs import decode_spec, encode_spec, parse_spec

__all__ = ["build_demo", "launch_kwargs", "warm_up", "api_analyze", "api_predict", "api_points", "api_presets",
           "api_compare", "api_sweep", "run_analysis", "analyze_on_device", "compare_on_device", "sample_images",
           "encode_spec", "decode_spec", "parse_spec", "GPU_SECONDS", "DEFAULT_PRESET"]
