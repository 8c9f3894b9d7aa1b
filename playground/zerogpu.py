"""ZeroGPU on Hugging Face Spaces: a GPU is attached only while a function decorated with `spaces.GPU` runs.

`gpu` marks the app's work that runs a model on the device (latency runs, predictions). Where the `spaces` package
is installed (every Space has it; on hardware other than ZeroGPU its decorator does nothing) the function is wrapped
with `spaces.GPU(duration=...)`; elsewhere (`python app.py`, Docker, tests) `gpu` returns the function unchanged.

On ZeroGPU the decorated function runs in a forked worker that holds the GPU, and its arguments and result are
pickled across the process boundary: keep both plain data. A `progress` callback cannot cross (a closure does not
pickle, and the worker could not reach the page anyway), so the wrapper passes `progress=None` instead.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

try:
    import spaces  # the Hugging Face Spaces package (ZeroGPU)
except ImportError:
    spaces = None

__all__ = ["gpu", "ENABLED"]

ENABLED = spaces is not None  # whether `gpu` wraps at all


def gpu(fn: Callable | None = None, *, duration: int = 60) -> Callable:
    """`@gpu` or `@gpu(duration=120)`: `spaces.GPU(duration=duration)` when `spaces` imports, else a no-op.

    `duration` is the longest the call may hold the GPU, in seconds (ZeroGPU's default is 60).
    """
    def decorate(f: Callable) -> Callable:
        if spaces is None:
            return f
        on_gpu = spaces.GPU(duration=duration)(f)

        @functools.wraps(f)
        def call(*args, **kwargs):
            if kwargs.get("progress") is not None:
                kwargs["progress"] = None
            return on_gpu(*args, **kwargs)
        return call
    return decorate(fn) if fn is not None else decorate
