"""Latency measurement: consistent figures, errors, serialised runs. No assertion here is about speed."""
from __future__ import annotations

import dataclasses
import json
import threading

import pytest
import torch
from torch import nn

from playground.errors import SpecError
from playground.latency import Latency, measure_latency

FAST = dict(min_run_time=0.05, max_run_time=0.3, warmup=1)  # tiny models: keep the suite quick
CALLS: list[int] = []  # thread ids of forward calls, module-level so the model's deep copies share it


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = tiny()

    def forward(self, x):
        CALLS.append(threading.get_ident())
        return self.net(x)


def check_consistent(r: Latency, batch: int, macs: int | None):
    assert r.median_ms > 0 and r.iqr_ms >= 0
    assert r.times_ms and all(t > 0 for t in r.times_ms)
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
                                          "median_ms", "iqr_ms", "throughput", "tflops", "times_ms",
                                          "started_at", "finished_at"}
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


def test_concurrent_measurements_do_not_overlap():
    CALLS.clear()
    results, errors = [], []

    def run():
        try:
            results.append(measure_latency(Recorder(), 16, device="cpu", **FAST))
        except Exception as e:  # surfaced below
            errors.append(e)

    workers = [threading.Thread(target=run) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors and len(results) == 2
    # all forward calls of one measurement come before all of the other's: at most one switch of thread
    switches = sum(a != b for a, b in zip(CALLS, CALLS[1:]))
    assert len(set(CALLS)) == 2 and switches == 1
    first, second = sorted(results, key=lambda r: r.started_at)
    assert first.finished_at <= second.started_at  # the reported intervals say so too


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
