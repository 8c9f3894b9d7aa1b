"""ZeroGPU wiring: without the `spaces` package `gpu` is a no-op; with it (a stand-in module put into sys.modules
before the import, as a Space provides the real one) the app's device runs are wrapped with `spaces.GPU`."""
import importlib
import pickle
import sys
import types

import pytest

from playground import ui, zerogpu
from playground.spec import load_spec
from playground.ui import runs

SPEC = "backbone: resnet18\nimg_size: 64\ninsert:\n  - {at: stage3, module: se}\n"
FAST = {"device": "cpu", "batch": 1, "dtype": "fp32", "min_run_time": 0.05, "max_run_time": 0.2, "warmup": 0,
        "threads": 1}


def test_without_spaces_gpu_is_a_no_op():
    if "spaces" in sys.modules:
        pytest.skip("a `spaces` package is installed here")

    def f(x, progress=None):
        return x, progress
    assert not zerogpu.ENABLED
    assert zerogpu.gpu(f) is f and zerogpu.gpu(duration=5)(f) is f
    assert ui.analyze_on_device.__module__ == "playground.ui.runs" and not hasattr(ui.analyze_on_device, "__wrapped__")


def test_without_spaces_the_device_runs_still_work(one_thread):
    spec = load_spec(SPEC)
    seen = []
    report = ui.run_analysis(spec, latency={**FAST, "base": True}, progress=lambda f, m: seen.append(f))
    assert report.latency.device == "cpu" and report.base_latency.median_ms > 0
    assert seen and seen[-1] == 1.0  # the progress callback is used when nothing is in between
    r = ui.run_analysis(spec, images=[ui.sample_images()[0]], topk=2)
    assert len(r.predictions[0].top) == 2 and r.latency is None


class FakeSpaces(types.ModuleType):
    """What the app uses of `spaces`: `GPU(duration=...)` returns a decorator. It records what it wrapped and the
    calls, and, like ZeroGPU's worker, pickles the arguments and the result."""

    def __init__(self):
        super().__init__("spaces")
        self.wrapped: dict[str, int] = {}
        self.calls: list[str] = []

    def GPU(self, fn=None, *, duration=60):  # noqa: N802 (the real name)
        def decorate(f):
            self.wrapped[f.__qualname__] = duration

            def on_gpu(*args, **kwargs):
                self.calls.append(f.__qualname__)
                args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))  # fails on a closure, as a fork would
                return pickle.loads(pickle.dumps(f(*args, **kwargs)))
            return on_gpu
        return decorate(fn) if fn is not None else decorate


@pytest.fixture
def fake_spaces(monkeypatch):
    """`spaces` importable while the test runs, playground.zerogpu and the UI's device runs reloaded under it; both are
    reloaded again without it afterwards."""
    fake = FakeSpaces()
    monkeypatch.setitem(sys.modules, "spaces", fake)
    try:
        importlib.reload(zerogpu)
        importlib.reload(runs)
        importlib.reload(ui)
        yield fake
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        importlib.reload(zerogpu)
        importlib.reload(runs)
        importlib.reload(ui)


def test_with_spaces_the_device_runs_are_decorated(fake_spaces, one_thread):
    assert zerogpu.ENABLED
    assert fake_spaces.wrapped == {"compare_on_device": ui.GPU_SECONDS, "analyze_on_device": ui.GPU_SECONDS}
    assert ui.analyze_on_device.__wrapped__.__module__ == "playground.ui.runs"

    spec = load_spec(SPEC)
    report = ui.run_analysis(spec, latency=FAST, progress=lambda f, m: None)  # a closure: replaced by None
    assert report.latency.device == "cpu" and fake_spaces.calls == ["analyze_on_device"]

    cat = ui.sample_images()[0]
    r = ui.api_predict(SPEC, cat, 3)  # a handler: predictions go through the decorated run
    assert fake_spaces.calls[-1] == "analyze_on_device" and '"predictions"' in r
    ui.api_analyze(SPEC)  # a static analysis does not take a GPU
    assert fake_spaces.calls[-1] == "analyze_on_device" and len(fake_spaces.calls) == 2
    ui.api_analyze(SPEC, True, "cpu", 1, "fp32")
    assert len(fake_spaces.calls) == 3


def test_reload_restores_the_no_op():
    assert not zerogpu.ENABLED or "spaces" in sys.modules
    assert not hasattr(ui.analyze_on_device, "__wrapped__") or "spaces" in sys.modules
