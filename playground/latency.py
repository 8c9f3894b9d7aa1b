"""Forward-pass latency of a model: the median of timed blocks, their spread, and a 95% interval of the median.

Timed as `torch.utils.benchmark.Timer` times (https://pytorch.org/tutorials/recipes/recipes/benchmark.html):
warm-up runs first, then blocks of `number` forward passes under `timeit` (garbage collector off), the device
synchronised at both ends of each block, torch's intra-op thread count set for the measurement and restored. The
loop is ours so that every measurement has at least `MIN_BLOCKS` blocks; past that it stops as
`Timer.adaptive_autorange` does (`min_run_time` spent and the IQR within 10% of the median, or `max_run_time`).
The statistics (median, IQR, the order-statistic interval of the median) are `playground.stats`'.

Every measurement of the process runs on one long-lived thread, one at a time (`_Runner`): the CLI, the page and
the API measure on the same thread with the same settings, and two runs never share the cores or the GPU. While
one warms up and times, the library's other torch work in the process waits (`playground.compute`).
"""
from __future__ import annotations

import copy
import math
import os
import queue
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from typing import Protocol, TypeVar

import torch
from torch import nn

from .choices import BATCH, DEVICES, DTYPES
from .compute import COMPUTE
from .errors import SpecError, first_line
from .report import Latency
from .stats import LatencyDifference, block_stats, difference

__all__ = ["Latency", "measure_latency", "difference", "LatencyDifference", "MIN_BLOCKS", "measuring_thread",
           "Neighbours", "share_cores_with"]

AUTOCAST = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}  # choices.DTYPES -> autocast dtype
# At least 10 timed blocks: from 9 on, the 95% order-statistic interval of the median leaves out the fastest and the
# slowest block (at 10 it is the 2nd to 9th of the sorted blocks, coverage 97.9%), so one disturbed block moves
# neither the median nor its interval; with 4 blocks (adaptive_autorange's floor) no 95% interval exists at all.
MIN_BLOCKS = 10
IQR_THRESHOLD = 0.1  # adaptive_autorange's rule: stop once the IQR is within 10% of the median
MIN_BLOCK_SECONDS = 1e-3  # forward passes per block so that the timer's overhead (~1 us) stays under 0.1%
REPORT_EVERY = 0.25  # seconds between progress reports while timing: the page's updates cost the cores too
REPORT_SETTLE = 0.05  # seconds untimed after a report, for the server and a browser on these cores to handle it
ProgressFn = Callable[[float, str], object]
T = TypeVar("T")


class _Runner:
    """The one thread that runs every latency measurement of this process, in turn.

    Why one dedicated thread: the CLI measured on its main thread, the app on whichever Gradio worker took the
    request, and each calling thread has its own OpenMP worker team and malloc arena (their page-fault rates
    differed 2-3x): at batch 8 the CLI timed SE-ResNet-50 14% slower than the server did (660 vs 580 ms, 2 cores).
    Timing every run on this thread, with torch's thread count set explicitly to the caller's, gives the CLI and
    the server the same conditions; jobs queue, so measurements never overlap.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pid: int | None = None
        self.thread: threading.Thread | None = None

    def submit(self, job: Callable[[], T]) -> Future[T]:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child (ZeroGPU): threads do not survive a fork
                self._jobs = queue.SimpleQueue()
                self.thread = threading.Thread(target=self._serve, args=(self._jobs,), name="playground-latency",
                                               daemon=True)  # daemon: Ctrl-C in the CLI does not wait for a run
                self.thread.start()
                self._pid = os.getpid()
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future

    @staticmethod
    def _serve(jobs: queue.SimpleQueue) -> None:
        while True:
            job, future = jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as e:  # handed to the caller
                    future.set_exception(e)


_RUNNER = _Runner()


class Neighbours(Protocol):
    """Other processes' work on the same cores (`playground.workers.Activity`), which a measurement waits out."""

    def wait_idle(self, timeout: float) -> int | None:
        """Wait until none runs: a token, or None after `timeout` seconds."""

    def idle_since(self, token: int | None) -> bool:
        """Whether none has run since `wait_idle` gave `token`."""


_neighbours: list[Neighbours] = []


def share_cores_with(neighbours: Neighbours | None) -> None:
    """Time each block only while `neighbours` are idle, and time a block again when they ran during it.

    For a worker process whose siblings analyse on the same CPU cores (the app's lanes). Past `max_run_time` of
    waiting the measurement times what it gets, and counts those blocks in `Latency.contended_blocks`. Threads
    of this process are kept apart by `playground.compute` instead.
    """
    _neighbours[:] = [neighbours] if neighbours is not None else []


def measuring_thread() -> threading.Thread | None:
    """The thread that runs this process's latency measurements (None before the first)."""
    return _RUNNER.thread


def _on_measuring_thread(job: Callable[[ProgressFn], T], progress: ProgressFn | None) -> T:
    """`job(report)` run on the measuring thread; the caller waits, and receives the progress reports on its own
    thread (a `gr.Progress` finds its event through the caller's context)."""
    if threading.current_thread() is _RUNNER.thread:  # called from a run (a callback): waiting would deadlock
        return job(progress or (lambda fraction, message: None))
    if COMPUTE.held():
        raise RuntimeError("measure_latency inside a shared compute section (compute.py) would wait for itself")
    updates: queue.SimpleQueue = queue.SimpleQueue()
    future = _RUNNER.submit(lambda: job(lambda fraction, message: updates.put((fraction, message))))
    future.add_done_callback(lambda _: updates.put(None))
    while (update := updates.get()) is not None:
        if progress is not None:
            progress(*update)
    return future.result()


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise SpecError(f"device: {device!r} is not one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError("device: 'cuda' was asked for but no CUDA GPU is available here; use 'cpu' or 'auto'")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())  # the caller's GPU, named for the other thread
    return torch.device("cpu")


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


def _clock(dev: torch.device) -> Callable[[], float]:
    """perf_counter, after the GPU's queued work has finished (as torch.utils.benchmark's timer)."""
    if dev.type != "cuda":
        return time.perf_counter

    def synced() -> float:
        torch.cuda.synchronize(dev)
        return time.perf_counter()
    return synced


def _timed_blocks(timer: timeit.Timer, number: int, min_run_time: float, max_run_time: float,
                  report: ProgressFn) -> tuple[list[float], int]:
    """Seconds per forward pass of each block, and how many of them ran beside other work: at least MIN_BLOCKS
    blocks, then until `min_run_time` has passed and the IQR is within IQR_THRESHOLD of the median, or
    `max_run_time` has. With neighbours (`share_cores_with`) a block runs when they are idle and is timed again
    when they ran during it, for up to `max_run_time` seconds of waiting in all; later blocks count as contended."""
    times: list[float] = []
    spent = reported = 0.0
    contended = 0
    neighbours = _neighbours[0] if _neighbours else None
    patience = time.monotonic() + max_run_time
    hard_stop = patience + max_run_time + 30.0  # whatever the noise, a measurement ends (with its MIN_BLOCKS)
    while True:
        token = None
        if neighbours is not None:
            token = neighbours.wait_idle(0.0)
            if token is None:
                report(0.1 + 0.9 * min(len(times) / MIN_BLOCKS, 1.0), "waiting for analyses to finish")
                token = neighbours.wait_idle(max(0.0, patience - time.monotonic()))
        block = timer.timeit(number)
        if neighbours is not None and not neighbours.idle_since(token):
            if time.monotonic() < patience:
                continue  # another process computed during the block: time it again
            contended += 1
        times.append(block / number)
        spent += block
        if spent - reported >= REPORT_EVERY:
            reported = spent
            done = max(len(times) / MIN_BLOCKS, spent / min_run_time if min_run_time > 0 else 1.0)
            report(0.1 + 0.9 * min(done, 1.0), "measuring")
            time.sleep(REPORT_SETTLE)  # the report's way to a page (server, browser) runs before the next block
        if len(times) < MIN_BLOCKS:
            continue
        if spent >= max_run_time or time.monotonic() > hard_stop:
            return times, contended
        stats = block_stats(times)
        if spent >= min_run_time and stats.iqr < IQR_THRESHOLD * stats.median:
            return times, contended


def _measure(model: nn.Module, dev: torch.device, amp_dtype: torch.dtype | None, shape: tuple[int, ...],
             channels_last: bool, compile: bool, warmup: int, min_run_time: float, max_run_time: float,
             report: ProgressFn) -> tuple[list[float], int]:
    """Copy, warm up and time (on the measuring thread); everything it allocates is freed when it returns."""
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

    timer = timeit.Timer(step, timer=_clock(dev))
    report(0.05, "waiting for the cores")
    with COMPUTE.exclusive():  # the process's other torch work waits (compute.py)
        report(0.05, "compiling and warming up" if compile else "warming up")
        try:
            one = min(timer.timeit(1) for _ in range(max(warmup, 1)))  # the last ones, warm, size the blocks
        except Exception as e:
            if not compile:
                raise
            raise SpecError(f"compile: torch.compile failed on {dev.type}: {first_line(e, 200)}") from e
        number = 10 ** max(math.ceil(math.log10(MIN_BLOCK_SECONDS / max(one, 1e-9))), 0)
        return _timed_blocks(timer, number, min_run_time, max_run_time, report)


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
    copy in `torch.compile` (compiled during the warm-up runs). After `warmup` untimed runs (at least one), blocks
    are timed: at least `MIN_BLOCKS`, then until `min_run_time` seconds have passed and the IQR is within 10% of the
    median, or `max_run_time` seconds have. `threads` sets torch's CPU threads for the measurement only (default:
    the caller's current count). The run happens on the process's measuring thread (`measuring_thread()`), after
    any run already queued there; `progress(fraction, message)` is called on the caller's thread as it goes (a
    `gr.Progress` fits).
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

    def job(report: ProgressFn) -> tuple[tuple[list[float], int], float, float]:
        started_at = time.time()
        with _torch_threads(threads):
            timed = _measure(model, dev, amp_dtype, (batch, in_chans, height, width), channels_last, compile,
                             warmup, min_run_time, max_run_time, report)
        if dev.type == "cuda":
            torch.cuda.empty_cache()  # the copy is gone: hand its memory back before the next run
        finished_at = time.time()
        report(1.0, "done")
        return timed, started_at, finished_at

    (times, contended), started_at, finished_at = _on_measuring_thread(job, progress)
    stats = block_stats(times)
    median_ms = stats.median * 1e3
    return Latency(
        device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        batch=batch,
        dtype=dtype,
        channels_last=channels_last,
        compiled=compile,
        threads=threads,
        median_ms=median_ms,
        iqr_ms=stats.iqr * 1e3,
        median_ci_ms=(stats.median_ci[0] * 1e3, stats.median_ci[1] * 1e3),
        throughput=batch * 1e3 / median_ms,
        tflops=2 * macs_per_image * batch / (median_ms * 1e-3) / 1e12 if macs_per_image is not None else None,
        times_ms=[t * 1e3 for t in times],
        started_at=started_at,
        finished_at=finished_at,
        contended_blocks=contended,
    )
