"""The analysis lane's activity, shared with the latency worker: whether a timed block had the cores to itself.

On CPU a latency measurement beside an analysis measures neither (two OpenMP teams on the same cores wait on each
other's spinning threads). The lanes keep analyses from waiting behind a measurement, so the measurement waits for
the analyses instead, block by block: it times a block only while no analysis runs, and drops a block during which
one started (`playground.latency`'s `Neighbours`). The pool writes two counters to a 16-byte file mapped in both
processes: analyses in flight and analyses started in all.

    >>> a = Activity.create()
    >>> token = a.wait_idle(0.0); a.begin(); a.idle_since(token)
    False
    >>> a.end(); a.wait_idle(0.0) is not None
    True
    >>> a.close()
"""
from __future__ import annotations

import mmap
import os
import struct
import tempfile
import threading
import time

__all__ = ["Activity"]

_LAYOUT = struct.Struct("<qq")  # in flight, started in all
_POLL = 0.005  # seconds between looks while waiting for the analyses to finish


class Activity:
    """Counters in a shared file: the pool `begin()`s and `end()`s analyses; the latency worker waits for none."""

    def __init__(self, path: str, owner: bool):
        self.path, self._owner = path, owner
        with open(path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), _LAYOUT.size)
        self._lock = threading.Lock()

    @classmethod
    def create(cls) -> Activity:
        fd, path = tempfile.mkstemp(prefix="playground-activity-")
        os.write(fd, bytes(_LAYOUT.size))
        os.close(fd)
        return cls(path, owner=True)

    @classmethod
    def attach(cls, path: str) -> Activity:
        return cls(path, owner=False)

    def _read(self) -> tuple[int, int]:
        return _LAYOUT.unpack_from(self._map)

    def _add(self, in_flight: int, started: int) -> None:
        with self._lock:  # one writer process; its threads take turns
            a, b = self._read()
            _LAYOUT.pack_into(self._map, 0, a + in_flight, b + started)

    def begin(self) -> None:
        self._add(1, 1)

    def end(self) -> None:
        self._add(-1, 0)

    def wait_idle(self, timeout: float) -> int | None:
        """Wait until no analysis runs: a token for `idle_since`, or None when `timeout` seconds passed first."""
        deadline = time.monotonic() + timeout
        while True:
            in_flight, started = self._read()
            if in_flight == 0:
                return started
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)

    def idle_since(self, token: int | None) -> bool:
        """Whether no analysis has run since `wait_idle` gave `token`."""
        return token is not None and self._read() == (0, token)

    def close(self) -> None:
        self._map.close()
        if self._owner:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
