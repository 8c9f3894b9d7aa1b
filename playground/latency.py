"""Forward-pass latency of a model, measured with `torch.utils.benchmark.Timer`.

The Timer synchronises the accelerator around every timed block, runs the statement in blocks sized so that the
timer's own overhead is negligible, and sets (then restores) torch's intra-op thread count for the measurement.
We report the median and the inter-quartile range over several blocks, as PyTorch's benchmark utilities do
(https://pytorch.org/tutorials/recipes/recipes/benchmark.html).

One measurement runs at a time per process (`_LOCK`): the app calls this from several request threads, and two
runs sharing the cores or the GPU would each report the other's load.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

from .choices import BATCH, DEVICES, DTYPES
from .errors import SpecError, first_line
from .report import Latency

# torch.utils.benchmark imports cpp_extension, which logs "No CUDA runtime is found" on GPU-less machines that set
# CUDA_HOME: noise on the CLI's stderr. Quiet it for the import only.
_cpp_log = logging.getLogger("torch.utils.cpp_extension")
_level = _cpp_log.level
_cpp_log.setLevel(logging.ERROR)
try:
    from torch.utils.benchmark import Measurement, Timer
finally:
    _cpp_log.setLevel(_level)

__all__ = ["Latency", "measure_latency"]

AUTOCAST = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}  # choices.DTYPES -> autocast dtype

_LOCK = threading.Lock()  # one latency measurement at a time in this process



def _resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise SpecError(f"device: {device!r} is not one of {', '.join(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError("device: 'cuda' was asked for but no CUDA GPU is available here; use 'cpu' or 'auto'")
    return torch.device(device)


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    if dtype not in AUTOCAST:
        raise SpecError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    # fp16 autocast on CPU runs (slowly, mostly emulated) on most CPUs: its timing would mislead, so say so instead.
    if dtype == "fp16" and device.type == "cpu":
        raise SpecError("dtype: 'fp16' is for CUDA; on CPU use 'bf16' (autocast) or 'fp32'")
    if dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SpecError(f"dtype: 'bf16' is not supported by {torch.cuda.get_device_name(device)}; use 'fp16' or 'fp32'")
    return AUTOCAST[dtype]


def _size(img_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(img_size, int):
        return img_size, img_size
    if len(img_size) == 2:
        return int(img_size[0]), int(img_size[1])
    raise SpecError(f"img_size: {img_size!r} is not an int or a (height, width) pair")


def _measure(model: nn.Module, dev: torch.device, amp_dtype: torch.dtype | None, shape: tuple[int, ...],
             channels_last: bool, compile: bool, warmup: int, threads: int, min_run_time: float,
             max_run_time: float, report: Callable[[float, str], object]) -> Measurement:
    """Copy, warm up and time; everything it allocates is freed when it returns."""
    report(0.0, "copying the model")
    net = copy.deepcopy(model).eval().to(dev)
    x = torch.randn(*shape, device=dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if compile:
        net = torch.compile(net)
    amp = torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()

    def step() -> None:
        with torch.no_grad(), amp:
            net(x)

    timer = Timer(stmt="step()", globals={"step": step}, num_threads=threads)
    report(0.05, "compiling and warming up" if compile else "warming up")
    try:
        timer.timeit(warmup)  # `warmup` steps plus the Timer's own 2, under `threads` threads
    except Exception as e:
        if not compile:
            raise
        raise SpecError(f"compile: torch.compile failed on {dev.type}: {first_line(e, 200)}") from e

    start = time.perf_counter()

    def on_block(number: int, seconds: float) -> None:
        report(0.1 + 0.9 * min((time.perf_counter() - start) / min_run_time, 1.0), "measuring")

    return timer.adaptive_autorange(min_run_time=min_run_time, max_run_time=max_run_time, callback=on_block)


def measure_latency(
        model: nn.Module,
        img_size: int | tuple[int, int],
        *,
        device: str = "auto",
        batch: int = 1,
        dtype: str = "fp32",
        channels_last: bool = False,
        compile: bool = False,
        macs_per_image: int | None = None,
        min_run_time: float = 1.0,
        max_run_time: float = 10.0,
        warmup: int = 3,
        threads: int | None = None,
        in_chans: int = 3,
        progress: Callable[[float, str], object] | None = None,
) -> Latency:
    """Median forward latency of `model` on a random `batch`×`in_chans`×H×W input, in eval mode under no_grad.

    The model is deep-copied onto the device (the caller's model is neither moved nor changed). `dtype` 'fp16' and
    'bf16' run the fp32 weights under `torch.autocast`; 'fp16' needs CUDA (a SpecError on CPU). `compile` wraps the
    copy in `torch.compile` (compiled during the warm-up runs). Timing uses `Timer.adaptive_autorange`: blocks are
    measured for at least `min_run_time` seconds and until the IQR is within 10% of the median (at least 4 blocks),
    or `max_run_time` seconds. `threads` sets torch's CPU threads for the measurement only (default: the current
    count). `progress(fraction, message)` is called as it goes (a `gr.Progress` fits).
    """
    dev = _resolve_device(device)
    amp_dtype = _resolve_dtype(dtype, dev)
    height, width = _size(img_size)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch not in BATCH:
        raise SpecError(f"batch: {batch!r} must be an integer from {BATCH.lo} to {BATCH.hi}")
    if warmup < 0:
        raise SpecError(f"warmup: {warmup!r} must be 0 or more")
    if threads is not None and threads < 1:
        raise SpecError(f"threads: {threads!r} must be at least 1")
    threads = threads or torch.get_num_threads()
    report = progress or (lambda fraction, message: None)

    with _LOCK:
        started_at = time.time()
        measurement = _measure(model, dev, amp_dtype, (batch, in_chans, height, width), channels_last, compile,
                               warmup, threads, min_run_time, max_run_time, report)
        if dev.type == "cuda":
            torch.cuda.empty_cache()  # the copy is gone: hand its memory back before the next run
        finished_at = time.time()
        report(1.0, "done")

    median_ms = float(measurement.median) * 1e3
    return Latency(
        device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        batch=batch,
        dtype=dtype,
        channels_last=channels_last,
        compiled=compile,
        threads=threads,
        median_ms=median_ms,
        iqr_ms=float(measurement.iqr) * 1e3,
        throughput=batch * 1e3 / median_ms,
        tflops=2 * macs_per_image * batch / (median_ms * 1e-3) / 1e12 if macs_per_image is not None else None,
        times_ms=[float(t) * 1e3 for t in measurement.times],
        started_at=started_at,
        finished_at=finished_at,
    )
