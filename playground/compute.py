"""The process's compute lock: a latency measurement times with the cores to itself.

The app runs requests in parallel threads, and a measurement that shares the CPU with other torch work of the same
process is no measurement: each thread brings its own OpenMP team (as many threads as cores), and two teams on the
same cores wait on each other's spinning threads. Measured on 2 cores, SE-ResNet-50 at batch 8 took 3.0 s per
pass instead of 0.63 s while `points()` probed a backbone beside it, as the page's other events do.

So the library's torch work (building, probing, counting, predicting, exporting) runs `shared()`, any number at a
time, and a measurement's warm-up and timed blocks run `exclusive()`: it waits for the shared work in flight, and
shared work that arrives meanwhile waits for it. Shared sections are innermost (taken after any other lock, never
waiting on anything inside) and re-entrant per thread, so the lock cannot close a cycle of waits.

    >>> lock = ComputeLock()
    >>> with lock.shared(), lock.shared():   # nested on one thread
    ...     lock.held()
    True
    >>> lock.held()
    False
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

__all__ = ["ComputeLock", "COMPUTE", "shares_cores"]

P = ParamSpec("P")
R = TypeVar("R")


class ComputeLock:
    """A readers-writer lock that prefers the writer: `shared()` for compute, `exclusive()` for a measurement."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._waiting = 0  # measurements waiting for the shared work in flight
        self._writer: int | None = None  # the thread timing now
        self._depth = threading.local()

    def held(self) -> bool:
        """Whether this thread is inside a shared section."""
        return getattr(self._depth, "n", 0) > 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        enter = depth == 0 and self._writer != threading.get_ident()  # nested, or inside the measurement: pass
        if enter:
            with self._cond:
                self._cond.wait_for(lambda: self._writer is None and not self._waiting)
                self._readers += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if enter:
                with self._cond:
                    self._readers -= 1
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._writer is None and not self._readers)
            finally:
                self._waiting -= 1
            self._writer = threading.get_ident()
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()


COMPUTE = ComputeLock()


def shares_cores(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` inside `COMPUTE.shared()`: torch work that a latency measurement must not overlap."""
    @functools.wraps(fn)
    def gated(*args: P.args, **kwargs: P.kwargs) -> R:
        with COMPUTE.shared():
            return fn(*args, **kwargs)
    return gated
