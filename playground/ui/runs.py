"""Runs of a model on the device. On a ZeroGPU Space these hold a GPU while they run (see `playground.zerogpu`);
a static analysis (counts, shapes) needs none and stays outside them."""
from __future__ import annotations

from collections.abc import Callable

from ..analyze import analyze
from ..compare import Comparison, compare, named_specs
from ..report import Report
from ..spec import Spec
from ..zerogpu import gpu
from .samples import sample_images
from .specs import parse_spec

__all__ = ["analyze_on_device", "compare_on_device", "run_analysis", "compare_specs", "latency_options",
           "GPU_SECONDS", "LATENCY_GROUP"]

LATENCY_GROUP = "latency"  # the queue lane of device runs: one latency run at a time, page and API alike
GPU_SECONDS = 180  # ZeroGPU: the longest one device run may hold the GPU (latency with torch.compile)

Progress = Callable[[float, str], None] | None


@gpu(duration=GPU_SECONDS)
def analyze_on_device(spec: Spec, *, latency: dict | None = None, images: list | None = None, topk: int = 5,
                      progress: Progress = None) -> Report:
    """`analyze` for an analysis that runs the model (a latency run, predictions); holds a GPU on ZeroGPU."""
    return analyze(spec, latency=latency, images=images, topk=topk, progress=progress)


@gpu(duration=GPU_SECONDS)
def compare_on_device(*specs: Spec, latency: dict | None = None, images: list | None = None,
                      progress: Progress = None) -> Comparison:
    """`compare` (which runs the models on the sample photos); holds a GPU on ZeroGPU."""
    return compare(*specs, latency=latency, images=images, progress=progress)


def run_analysis(spec: Spec, *, latency: dict | None = None, images: list | None = None, topk: int = 5,
                 progress: Progress = None) -> Report:
    """`analyze`, on the device when it runs the model; a static analysis (counts, shapes) needs no GPU."""
    if latency or images:
        return analyze_on_device(spec, latency=latency, images=images, topk=topk, progress=progress)
    return analyze(spec, topk=topk, progress=progress)


def compare_specs(*texts: str, latency: bool = False, progress: Progress = None) -> Comparison:
    """`compare` of the page's spec texts on the sample photos (timed when asked), the bad one named."""
    specs = named_specs(texts, parse_spec)
    opts = latency_options() if latency else None
    return compare_on_device(*specs, latency=opts, images=sample_images(), progress=progress)


def latency_options(device: str = "auto", batch: object = 1, dtype: str = "fp32", channels_last: bool = False,
                    compile: bool = False) -> dict:
    """`analyze`'s latency options from the page's (or the API's) loosely typed values."""
    n = float(batch) if batch not in (None, "") else 1.0
    return {"device": device or "auto", "batch": int(n) if n.is_integer() else n, "dtype": dtype or "fp32",
            "channels_last": bool(channels_last), "compile": bool(compile)}


