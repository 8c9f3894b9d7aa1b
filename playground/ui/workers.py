"""The server's workers: one `playground.workers.Service` for this process, started on first use.

`PLAYGROUND_WORKERS` sets the number of analysis workers (default: one per core, at most 4; `0` runs everything in
the server process, without the time and memory budgets, and imports torch there); `Budgets.from_env` reads the
limits.
"""
from __future__ import annotations

import os
import threading

from ..budgets import Budgets
from ..errors import SpecError
from ..workers import Service

__all__ = ["service", "stop_service", "WORKERS_ENV"]

WORKERS_ENV = "PLAYGROUND_WORKERS"

_service: list[Service] = []
_service_lock = threading.Lock()


def service() -> Service:
    """The app's Service, started on first use with the budgets and worker count of the environment."""
    with _service_lock:
        if not _service:
            text = os.environ.get(WORKERS_ENV, "").strip()
            if text and not text.isdigit():
                raise SpecError(f"{WORKERS_ENV}: {text!r} is not a number of workers (0 runs in the server)")
            _service.append(Service(int(text) if text else None, Budgets.from_env()))
        return _service[0]


def stop_service() -> None:
    """Stop the workers (when the server stops); a later `service()` starts new ones."""
    with _service_lock:
        if _service:
            _service.pop().close()
