"""Latency measurement: consistent figures, errors, serialised runs on one thread, the interval of the median and the
noise rule. No assertion here is about speed."""
from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from playground.compute import COMPUTE
from playground.errors import SpecError
from playground.latency import MIN_BLOCKS, Latency, difference, measure_latency, measuring_thread, share_cores_with
from playground.stats import _coverage, block_stats, median_interval
from playground.workers import Activity

FAST = dict(min_run_time=0.05, max_run_time=0.3, warmup=1)  # tiny models: keep the suite quick
CALLS: list[tuple[int, int]] = []  # (thread id, torch threads) of forward calls; module-level: deep copies share it


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = tiny()

    def forward(self, x):
        CALLS.append((threading.get_ident(), torch.get_num_threads()))
        return self.net(x)


def check_consistent(r: Latency, batch: int, macs: int | None):
    assert r.median_ms > 0 and r.iqr_ms >= 0
    assert len(r.times_ms) >= MIN_BLOCKS and all(t > 0 for t in r.times_ms)
    stats = block_stats(r.times_ms)  # the reported figures are the blocks' statistics
    assert (r.median_ms, r.iqr_ms) == pytest.approx((stats.median, stats.iqr))
    assert r.median_ci_ms == pytest.approx(stats.median_ci) and r.median_ci_ms[0] <= r.median_ms <= r.median_ci_ms[1]
    assert r.throughput == pytest.approx(batch * 1000 / r.median_ms)
    if macs is None:
        assert r.tflops is None
    else:
        assert r.tflops == pytest.approx(2 * macs * batch / (r.median_ms / 1000) / 1e12)
    json.dumps(dataclasses.asdict(r))


def test_cpu_measurement():
    model = tiny().train()
    threads = torch.get_num_threads()
    r = measure_latency(model, 32, device="cpu", batch=2, macs_per_image=123_456, threads=1, **FAST)
    check_consistent(r, 2, 123_456)
    assert (r.device, r.batch, r.dtype, r.channels_last, r.compiled, r.threads) == ("cpu", 2, "fp32", False, False, 1)
    assert torch.get_num_threads() == threads  # restored
    assert model.training and next(model.parameters()).device.type == "cpu"  # the caller's model is untouched
    assert set(dataclasses.asdict(r)) == {"device", "batch", "dtype", "channels_last", "compiled", "threads",
                                          "median_ms", "iqr_ms", "median_ci_ms", "throughput", "tflops", "times_ms",
                                          "started_at", "finished_at", "contended_blocks"}
    assert 0 < r.started_at < r.finished_at


def test_cpu_bf16_channels_last_and_progress():
    seen = []
    r = measure_latency(tiny(), (24, 40), device="cpu", dtype="bf16", channels_last=True,
                        progress=lambda f, msg: seen.append(f), **FAST)
    check_consistent(r, 1, None)
    assert (r.dtype, r.channels_last, r.threads) == ("bf16", True, torch.get_num_threads())
    assert seen[0] == 0.0 and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)


@pytest.mark.parametrize("kwargs, field", [
    (dict(device="cpu", dtype="fp16"), "dtype"),
    (dict(device="cpu", dtype="int8"), "dtype"),
    (dict(device="tpu"), "device"),
    (dict(device="cpu", batch=0), "batch"),
    (dict(device="cpu", threads=0), "threads"),
])
def test_bad_arguments(kwargs, field):
    with pytest.raises(SpecError, match=f"^{field}: ") as info:
        measure_latency(tiny(), 16, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_unavailable():
    with pytest.raises(SpecError, match="^device: 'cuda'"):
        measure_latency(tiny(), 16, device="cuda")
    assert measure_latency(tiny(), 16, device="auto", **FAST).device == "cpu"


def test_at_least_min_blocks_however_short_the_time():
    r = measure_latency(tiny(), 16, device="cpu", min_run_time=0.0, max_run_time=0.0, warmup=0)
    assert len(r.times_ms) == MIN_BLOCKS
    check_consistent(r, 1, None)


def test_every_run_times_on_the_measuring_thread_with_the_same_settings():
    """The CLI (main thread), a request thread of the server (a pool) and a plain thread all measure on one
    dedicated thread, with the torch thread count the caller has (as the CLI's), and one run at a time."""
    CALLS.clear()
    threads = torch.get_num_threads()
    results = [measure_latency(Recorder(), 16, device="cpu", **FAST)]
    with ThreadPoolExecutor(2) as pool:
        results += pool.map(lambda _: measure_latency(Recorder(), 16, device="cpu", **FAST), range(2))
    worker = threading.Thread(target=lambda: results.append(measure_latency(Recorder(), 16, device="cpu", **FAST)))
    worker.start()
    worker.join()
    assert len(results) == 4 and {r.threads for r in results} == {threads}
    assert {ident for ident, _ in CALLS} == {measuring_thread().ident} != {threading.get_ident()}
    assert {n for _, n in CALLS} == {threads}
    runs = sorted(results, key=lambda r: r.started_at)
    assert all(a.finished_at <= b.started_at for a, b in zip(runs, runs[1:]))  # never overlapping


class Stamped(nn.Module):
    """Records when each forward pass ran and says when the first one starts."""
    def __init__(self, started: threading.Event, stamps: list[float]):
        super().__init__()
        self.net, self.started, self.stamps = tiny(), started, stamps

    def __deepcopy__(self, memo):  # the measured copy shares the event and the stamps
        return Stamped(self.started, self.stamps)

    def forward(self, x):
        self.started.set()
        self.stamps.append(time.perf_counter())
        return self.net(x)


def test_a_measurement_has_the_process_to_itself():
    """Torch work of the library (here a shared section, as build/points/analyze hold) waits while a measurement
    times, and a measurement waits for the shared work in flight."""
    started, stamps, results = threading.Event(), [], []
    worker = threading.Thread(target=lambda: results.append(measure_latency(Stamped(started, stamps), 16,
                                                                            device="cpu", **FAST)))
    with COMPUTE.shared():
        worker.start()
        time.sleep(0.3)
        assert not started.is_set()  # waiting for this shared section
        left = time.perf_counter()
    assert started.wait(10)
    with COMPUTE.shared():  # arrives while it times: waits for the end
        entered = time.perf_counter()
    worker.join()
    assert results and min(stamps) > left and max(stamps) < entered


def test_blocks_wait_for_other_processes_analyses_and_say_when_they_could_not():
    """With neighbours (the app's analysis workers, `Activity`): no block is timed while one of them runs; when
    they never stop, the measurement times anyway after max_run_time of waiting and counts those blocks."""
    activity = Activity.create()
    share_cores_with(activity)
    try:
        def neighbour():  # an analysis from 0.05 s to 0.35 s into the measurement
            time.sleep(0.05)
            activity.begin()
            time.sleep(0.3)
            activity.end()
        t = threading.Thread(target=neighbour)
        t.start()
        r = measure_latency(tiny(), 32, device="cpu", min_run_time=0.5, max_run_time=5.0, warmup=1)
        t.join()
        assert r.contended_blocks == 0 and len(r.times_ms) >= MIN_BLOCKS
        assert r.finished_at - r.started_at > 0.3  # it waited for the neighbour

        activity.begin()  # a neighbour that never stops
        r = measure_latency(tiny(), 32, device="cpu", **FAST)
        activity.end()
        assert r.contended_blocks == len(r.times_ms) >= MIN_BLOCKS
    finally:
        share_cores_with(None)
        activity.close()


def test_measuring_inside_a_shared_section_is_refused():
    with COMPUTE.shared(), pytest.raises(RuntimeError, match="would wait for itself"):
        measure_latency(tiny(), 16, device="cpu", **FAST)


def test_progress_reaches_the_callers_thread_and_errors_the_caller():
    seen = []
    measure_latency(tiny(), 16, device="cpu", progress=lambda f, m: seen.append(threading.get_ident()), **FAST)
    assert seen and set(seen) == {threading.get_ident()}

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(Broken(), 16, device="cpu", **FAST)
    assert measure_latency(tiny(), 16, device="cpu", **FAST).median_ms > 0  # the thread lives on


@pytest.mark.parametrize("n, ranks", [(6, (1, 6)), (8, (1, 8)), (9, (2, 8)), (10, (2, 9)), (12, (3, 10)),
                                      (20, (6, 15)), (50, (18, 33)), (100, (40, 61))])
def test_median_interval_ranks(n, ranks):
    """Distinct values 1..n, shuffled: the interval is (x(k), x(n-k+1)) with the ranks of the binomial tables."""
    values = list(range(1, n + 1))
    random.Random(n).shuffle(values)
    assert median_interval(values) == ranks


def test_median_interval_coverage_is_the_binomials():
    from scipy.stats import binom
    for n in range(6, 60):
        lo, _ = median_interval(range(1, n + 1))
        assert _coverage(n, lo) == pytest.approx(1 - 2 * binom.cdf(lo - 1, n, 0.5))
        assert _coverage(n, lo) >= 0.95 and (lo + 1 > n // 2 or _coverage(n, lo + 1) < 0.95)  # the tightest


def test_median_interval_needs_six_values():
    assert median_interval([3.0, 1.0, 2.0, 6.0, 5.0, 4.0]) == (1.0, 6.0)
    with pytest.raises(ValueError, match="at least 6"):
        median_interval([1.0, 2.0, 3.0, 4.0, 5.0])


def lat(median: float, lo: float, hi: float) -> Latency:
    return Latency(device="cpu", batch=1, dtype="fp32", channels_last=False, compiled=False, threads=2,
                   median_ms=median, iqr_ms=hi - lo, median_ci_ms=(lo, hi), throughput=1e3 / median, tflops=None)


@pytest.mark.parametrize("a, b, clear, label", [
    (lat(80, 78, 83), lat(84, 82.5, 86), False, "within noise"),  # +5%, but the intervals overlap
    (lat(80, 78, 83), lat(83.5, 83.1, 84), True, "slower"),  # +4%, intervals apart
    (lat(80, 78, 83), lat(70, 69, 78), False, "within noise"),  # touching counts as overlapping
    (lat(80, 78, 83), lat(70, 69, 77.9), True, "faster"),
])
def test_difference_follows_the_intervals(a, b, clear, label):
    d = difference(a, b)
    assert (d.clear, d.label) == (clear, label)
    assert d.delta_ms == pytest.approx(b.median_ms - a.median_ms) and d.ratio == pytest.approx(b.median_ms / 80)
    assert difference(b, a).clear == clear  # symmetric


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_cuda_measurement(dtype):
    model = tiny()
    r = measure_latency(model, 64, device="cuda", dtype=dtype, batch=4, channels_last=True, macs_per_image=10_000,
                        **FAST)
    check_consistent(r, 4, 10_000)
    assert r.device == torch.cuda.get_device_name() and r.dtype == dtype
    assert next(model.parameters()).device.type == "cpu"
    assert measure_latency(model, 64, **FAST).device == r.device  # 'auto' picks the GPU
