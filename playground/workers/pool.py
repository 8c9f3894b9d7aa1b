"""Worker processes for the app: the server holds no models, and no request can take it down.

Why not `concurrent.futures.ProcessPoolExecutor` (or multiprocessing's Pool): when one of its workers dies the
whole executor is broken for every user, a running task cannot be stopped for overstepping its time or memory, and
a task cannot be sent to the worker whose caches hold its model. So each worker is a fresh interpreter
(`python -m playground.workers.serve`, not a fork of the threaded server, and not a re-import of app.py as
multiprocessing's spawn would do) talking over a socket pair, and the calling thread watches its own task:

- a worker that crashes (a segfault in native code), is killed (the kernel's OOM killer), exceeds the time budget
  or the memory budget (its own resident memory, polled every `POLL` seconds) yields one line to that user and is
  replaced in the background; every other user is served as before;
- three lanes: `analysis` (counts, shapes, predictions, exports: N workers, `cores // N` torch threads each),
  `latency` (one worker with every core, so latency runs never overlap) and `gate` (one worker, one thread: the
  budget estimates on the meta device, the point menus and other metadata, so that a giant is refused and a menu
  refreshed at once even while every analysis worker is busy). Analyses never wait behind a measurement:
  on CPU the measurement waits for them instead, block by block (`Activity`); on CUDA it times the GPU while the
  analyses go on on the CPU;
- a task goes to an idle worker that served its backbone recently (its model caches are warm), else to the idle
  worker that has been idle longest.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ..budgets import ENV, Budgets
from ..errors import RunError, SpecError
from .activity import Activity

__all__ = ["WorkerPool", "Lane", "LANES", "default_workers", "own_memory"]

log = logging.getLogger(__name__)

POLL = 0.05  # seconds between looks at a running task's worker (alive? memory? time?)
START_TIMEOUT = 180.0  # seconds for a new worker to import torch and say it is ready (a cold disk is slow)
RECENT_KEYS = 4  # backbones a worker is known to hold in its caches
LANES = ("analysis", "latency", "gate")
Progress = Callable[[float, str], None] | None


def default_workers(cores: int | None = None) -> int:
    """Analysis workers for `cores` CPU cores: one per core, at most 4 (each holds its own model caches)."""
    return max(1, min(4, cores or os.cpu_count() or 1))


def own_memory(pid: int | None = None) -> int:
    """Resident memory that is a process's own (default: this one), what the memory budget counts: shared
    libraries' pages (torch's are large, and shared by every worker) left out; 0 for a process that is gone."""
    import psutil
    try:
        m = psutil.Process(pid).memory_info()
    except psutil.Error:
        return 0
    return m.rss - getattr(m, "shared", 0)


class _Worker:
    """One worker process and our end of its socket."""

    def __init__(self, lane: str, args: list[str]):
        ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-m", "playground.workers.serve", "--lane", lane, "--fd", str(theirs.fileno()), *args]
        self.proc = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.lane = lane
        self.keys: collections.deque[str] = collections.deque(maxlen=RECENT_KEYS)
        self.idle_since = time.monotonic()

    def wait_ready(self, timeout: float) -> bool:
        try:
            return self.conn.poll(timeout) and self.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            return False

    def own_memory(self) -> int:
        return own_memory(self.proc.pid)

    def stop(self) -> None:
        import psutil
        try:  # its own children too (torch.compile's compile workers)
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.error("worker %d did not exit after SIGKILL", self.proc.pid)
        self.conn.close()


class Lane:
    """A set of workers serving one kind of task; a task waits here for an idle worker."""

    def __init__(self, name: str, size: int, args: list[str]):
        self.name, self.size, self.args = name, size, args
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False
        self._failed_starts = 0
        for _ in range(size):
            self._start()

    def _start(self) -> None:
        threading.Thread(target=self._bring_up, name=f"playground-{self.name}-start", daemon=True).start()

    def _bring_up(self) -> None:
        worker = _Worker(self.name, self.args)
        with self._cond:
            self._all.add(worker)
        ready = worker.wait_ready(START_TIMEOUT)
        with self._cond:
            if ready and not self._closed:
                self._failed_starts = 0
                self._idle.append(worker)
                self._cond.notify_all()
                return
            self._all.discard(worker)
            self._failed_starts += 1
            retry = not self._closed and self._failed_starts <= 3
            self._cond.notify_all()
        worker.stop()
        if retry:
            log.error("a %s worker failed to start (exit status %s); starting another", self.name,
                      worker.proc.returncode)
            time.sleep(1.0)
            self._start()

    def acquire(self, key: str | None) -> _Worker:
        """An idle worker, preferring one that holds `key` in its caches; waits while all are busy."""
        with self._cond:
            while True:
                for dead in [w for w in self._idle if w.proc.poll() is not None]:  # died while idle
                    log.error("an idle %s worker exited (status %s); starting another", self.name,
                              dead.proc.returncode)
                    self._idle.remove(dead)
                    self._all.discard(dead)
                    dead.stop()
                    self._start()
                if self._idle:
                    break
                if self._closed:
                    raise RunError("the server is shutting down")
                if not self._all and self._failed_starts > 3:
                    raise RunError(f"the {self.name} workers cannot start: see the server's log")
                self._cond.wait(1.0)
            warm = [w for w in self._idle if key is not None and key in w.keys]
            worker = warm[0] if warm else min(self._idle, key=lambda w: w.idle_since)
            self._idle.remove(worker)
            if key is not None and key not in worker.keys:
                worker.keys.append(key)
            return worker

    def release(self, worker: _Worker) -> None:
        with self._cond:
            worker.idle_since = time.monotonic()
            if self._closed:
                self._all.discard(worker)
            else:
                self._idle.append(worker)
                self._cond.notify_all()
                return
        worker.stop()

    def replace(self, worker: _Worker) -> None:
        """Stop a worker that failed its task, and start another in the background."""
        with self._cond:
            self._all.discard(worker)
        worker.stop()
        if not self._closed:
            self._start()

    def pids(self) -> list[int]:
        with self._cond:
            return sorted(w.proc.pid for w in self._all)

    def idle(self) -> int:
        with self._cond:
            return len(self._idle)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for w in workers:
            w.stop()


@dataclass(frozen=True)
class _Failure:
    """Why a worker stopped in the middle of a task, as one line for the user."""
    reason: str

    def error(self, what: str) -> RunError:
        return RunError(f"this {what} {self.reason}: its worker was replaced, and no one else was affected")


def _death(returncode: int) -> _Failure:
    if returncode < 0:
        sig = signal.Signals(-returncode)
        if sig == signal.SIGKILL:
            return _Failure("was stopped (SIGKILL: most likely the machine ran out of memory)")
        return _Failure(f"crashed ({sig.name}, in native code)")
    return _Failure(f"crashed (its worker exited with status {returncode})")


class WorkerPool:
    """The app's workers: `run(job, ...)` runs a job of `playground.workers.jobs` in a worker of a lane.

    Args:
        workers: analysis workers (default `default_workers()`); the latency lane always has one.
        budgets: the seconds and memory limits of a task (`Budgets.max_seconds`, `max_memory_gb`).
        lanes: the lanes to start (default all of LANES): a sweep from the CLI, which has no budgets to estimate,
            starts no gate worker, and a latency worker only when it times.
    """

    def __init__(self, workers: int | None = None, budgets: Budgets | None = None, lanes: Collection[str] = LANES):
        cores = os.cpu_count() or 1
        self.budgets = budgets or Budgets()
        self.workers = workers or default_workers(cores)
        self.activity = Activity.create()
        memory = ["--memory", str(self.budgets.memory_bytes or 0)]
        args = {"analysis": (self.workers, ["--threads", str(max(1, cores // self.workers)), *memory]),
                "latency": (1, ["--threads", str(cores), "--activity", self.activity.path, *memory]),
                "gate": (1, ["--threads", "1", *memory])}
        unknown = set(lanes) - set(LANES)
        if unknown:
            raise ValueError(f"unknown lanes {sorted(unknown)}; lanes: {', '.join(LANES)}")
        self.lanes = {name: Lane(name, *args[name]) for name in LANES if name in lanes}

    def run(self, job: str, *, lane: str = "analysis", key: str | None = None, what: str = "analysis",
            progress: Progress = None, **kwargs: Any) -> Any:
        """Run `job(**kwargs)` in a worker of `lane` and return its result. A SpecError comes back as a
        SpecError; a worker that crashes or oversteps a budget raises a one-line RunError naming `what`."""
        if lane not in self.lanes:
            raise RunError(f"this pool has no {lane} workers (it started {', '.join(self.lanes)})")
        chosen = self.lanes[lane]
        worker = chosen.acquire(key)
        counted = lane != "latency"  # work on the cores that a measurement must not share
        if counted:
            self.activity.begin()
        try:
            outcome, value = self._watch(worker, job, kwargs, progress)
        finally:
            if counted:
                self.activity.end()
        if isinstance(value, _Failure):
            chosen.replace(worker)
            raise value.error(what)
        chosen.release(worker)
        if outcome == "ok":
            return value
        if outcome == "spec_error":
            raise value if isinstance(value, SpecError) else SpecError(value)
        raise RunError(value)

    def _watch(self, worker: _Worker, job: str, kwargs: dict, progress: Progress) -> tuple[str, Any]:
        """Send the task and watch the worker until it answers, dies or oversteps a budget."""
        seconds, memory = self.budgets.max_seconds, self.budgets.memory_bytes
        deadline = time.monotonic() + seconds if seconds else float("inf")
        try:
            worker.conn.send((job, kwargs))
        except OSError:
            return "failed", _death(worker.proc.wait(timeout=10))
        while True:
            try:
                if worker.conn.poll(POLL):
                    kind, *payload = worker.conn.recv()
                    if kind == "progress":
                        if progress is not None:
                            progress(*payload)
                        continue
                    return kind, payload[0]
            except (EOFError, OSError):
                return "failed", _death(worker.proc.wait(timeout=10))
            if worker.proc.poll() is not None:
                return "failed", _death(worker.proc.returncode)
            if time.monotonic() > deadline:
                return "failed", _Failure(f"took more than {seconds:g} s; the limit here is {seconds:g} s "
                                          f"({ENV['max_seconds']})")
            if memory is not None and worker.own_memory() > memory:
                gb = self.budgets.max_memory_gb
                return "failed", _Failure(f"needed more than {gb:g} GB of memory; the limit here is {gb:g} GB "
                                          f"({ENV['max_memory_gb']})")

    def pids(self) -> dict[str, list[int]]:
        """The workers' process ids by lane (for tests and the load benchmark)."""
        return {name: lane.pids() for name, lane in self.lanes.items()}

    def close(self) -> None:
        for lane in self.lanes.values():
            lane.close()
        self.activity.close()
