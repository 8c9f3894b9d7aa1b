"""Where the page's and the API's requests run: in the app's worker processes (`playground.workers`, through
`workers.service()`), within the app's budgets; the server process holds no models and imports no torch.

On a ZeroGPU Space a GPU is attached only inside `spaces.GPU` functions of the app process (ZeroGPU forks its own
GPU workers from it, `playground.zerogpu`), so there the runs that use the device (latency, predictions) go
through `analyze_on_device` / `compare_on_device` instead, and static analyses still go to the workers. Only
those two import torch into the app process, when they first run.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..compare import Comparison, compare, named_specs
from ..errors import SpecError
from ..export import ExportResult
from ..report import Report
from ..spec import Spec
from ..sweep import SweepResult, sweep
from ..sweep.runners import ServiceRunner
from ..zerogpu import ENABLED as ON_ZEROGPU
from ..zerogpu import gpu
from .samples import sample_images
from .specs import parse_spec, parse_sweep
from .workers import WORKERS_ENV, service

__all__ = ["service", "analyze_on_device", "compare_on_device", "run_analysis", "compare_specs", "point_dicts",
           "export_to", "latency_options", "run_sweep", "sweep_limit", "SWEEP_LIMIT_ENV", "GPU_SECONDS",
           "LATENCY_GROUP", "LATENCY_QUEUE", "ANALYSIS_QUEUE", "WORKERS_ENV"]

LATENCY_GROUP = "latency"
# Seconds of timed blocks at most in a run of the app (the library's default is 10): one latency worker serves
# everyone in turn, and on a busy CPU the measurement also waits for analyses between its blocks.
MAX_RUN_TIME = 3.0
# Gradio's queue settings of the events. Latency runs: one at a time, in the order asked. Analyses, predictions and
# exports (and /analyze, whose latency runs wait in the pool's latency lane): the pool's lanes do the waiting, so
# here the queue only bounds the threads that wait there.
LATENCY_QUEUE = {"concurrency_id": LATENCY_GROUP, "concurrency_limit": 1}
ANALYSIS_QUEUE = {"concurrency_id": "analyze", "concurrency_limit": 16}
SWEEP_LIMIT_ENV = "PLAYGROUND_MAX_SWEEP"  # variants one sweep may have in the app (default SWEEP_LIMIT)
SWEEP_LIMIT = 64
GPU_SECONDS = 180  # ZeroGPU: the longest one device run may hold the GPU (latency with torch.compile)

Progress = Callable[[float, str], None] | None


@gpu(duration=GPU_SECONDS)
def analyze_on_device(spec: Spec, *, latency: dict | None = None, images: list | None = None, topk: int = 5,
                      progress: Progress = None) -> Report:
    """`analyze` in this process for a run that uses the device, holding a GPU on ZeroGPU."""
    from ..analyze import analyze
    return analyze(spec, latency=latency, images=images, topk=topk, progress=progress)


@gpu(duration=GPU_SECONDS)
def compare_on_device(*specs: Spec, latency: dict | None = None, images: list | None = None,
                      progress: Progress = None) -> Comparison:
    """`compare` in this process (it runs the models on the sample photos), holding a GPU on ZeroGPU. (`compare`
    imports torch when it runs, through `analyze`.)"""
    return compare(*specs, latency=latency, images=images, progress=progress)


def run_analysis(spec: Spec, *, latency: dict | None = None, images: list | None = None, topk: int = 5,
                 memory: dict | None = None, progress: Progress = None) -> Report:
    """`analyze` within the app's budgets: in a worker, or on ZeroGPU's GPU when it runs the model. A memory
    estimate runs on fake tensors: always in a worker."""
    if ON_ZEROGPU and (latency or images):
        service().check(spec, int((latency or {}).get("batch", 1)))
        return analyze_on_device(spec, latency=latency, images=images, topk=topk, progress=progress)
    return service().analyze(spec, latency=latency, images=images, topk=topk, memory=memory, progress=progress)


def compare_specs(*texts: str, latency: bool = False, progress: Progress = None) -> Comparison:
    """`compare` of the page's spec texts on the sample photos (timed when asked), the bad one named."""
    specs = named_specs(texts, parse_spec)
    opts = latency_options() if latency else None
    if ON_ZEROGPU:
        for spec in specs:
            service().check(spec)
        return compare_on_device(*specs, latency=opts, images=sample_images(), progress=progress)
    return service().compare(specs, latency=opts, images=sample_images(), progress=progress)


def sweep_limit() -> int:
    """The most variants a sweep may have in the app: PLAYGROUND_MAX_SWEEP, else SWEEP_LIMIT."""
    text = os.environ.get(SWEEP_LIMIT_ENV, "").strip()
    if not text:
        return SWEEP_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise SpecError(f"{SWEEP_LIMIT_ENV}: {text!r} is not a number of variants")
    return int(text)


def run_sweep(text: str, *, latency: bool = False, where: str | None = None, objectives: list[str] | None = None,
              progress: Callable[[int, int, str], None] | None = None) -> SweepResult:
    """A sweep of the page's (or the API's) text within the app's budgets: its count checked against the app's limit
    before anything runs, each variant through the app's Service (budgets, workers, latency lane) or, for a timing
    on ZeroGPU, its GPU; results cached on disk in the server (rows only: no models)."""
    spec = parse_sweep(text)
    limit = min(spec.limit, sweep_limit())
    spec.check_count(limit)
    timing = None
    if latency or spec.latency is not None:
        own = spec.latency or {}
        timing = {**own, **latency_options(own.get("device", "auto"), own.get("batch", 1), own.get("dtype", "fp32"),
                                           own.get("channels_last", False), own.get("compile", False)),
                  "max_run_time": min(float(own.get("max_run_time", MAX_RUN_TIME)), MAX_RUN_TIME)}
    runner = ServiceRunner(service(), analyze=lambda s, lat: run_analysis(s, latency=lat))
    return sweep(spec, runner=runner, latency=timing or False, where=where, objectives=objectives, limit=limit,
                 progress=progress)


def point_dicts(spec: Spec) -> list[dict]:
    """The insertion points of the spec's backbone after its stem change, as plain dicts."""
    return service().points(spec)


def export_to(spec: Spec, fmt: str, path: Path, progress: Progress = None) -> ExportResult:
    return service().export(spec, fmt, path, progress)


def latency_options(device: str = "auto", batch: object = 1, dtype: str = "fp32", channels_last: bool = False,
                    compile: bool = False) -> dict:
    """`analyze`'s latency options from the page's (or the API's) loosely typed values."""
    n = float(batch) if batch not in (None, "") else 1.0
    return {"device": device or "auto", "batch": int(n) if n.is_integer() else n, "dtype": dtype or "fp32",
            "channels_last": bool(channels_last), "compile": bool(compile), "max_run_time": MAX_RUN_TIME}
