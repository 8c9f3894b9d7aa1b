"""Where a sweep's variants run, behind one interface: in this process, in the app's worker processes, or as Ray tasks.

Every runner calls the same function for a variant, the `analyze` job of `playground.workers.jobs` (the library's
`analyze`), and answers with an `Outcome`: the Report, or the one line saying why there is none. `map(specs)` runs
static analyses in parallel and yields them as they finish; `map(specs, latency)` times them one at a time per
machine (latency lane): in turn for `inline` and `pool`, and on Ray with resources that give each timing a whole
node's CPUs, or one GPU, to itself.

    RUNNERS["inline"]()              # this process, one variant after another (the CLI's default)
    RUNNERS["pool"](workers=2)       # worker processes (playground.workers: the app's, with their budgets)
    RUNNERS["ray"](address="auto")   # Ray tasks on a cluster ("local" starts Ray on this machine)

`ServiceRunner` wraps a `playground.workers.Service`: the app passes its own, so a sweep on the page is held to
the same budgets, lanes and workers as every other request.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import RunError, SpecError, first_line
from ..report import Report
from ..spec import Spec

__all__ = ["Outcome", "Runner", "ThreadedRunner", "ServiceRunner", "RayRunner", "RUNNERS", "make_runner"]

Analyze = Callable[[Spec, "dict | None"], Report]  # raises SpecError (the variant) or RunError (its run)


@dataclass(frozen=True)
class Outcome:
    """A variant's run: its Report, or `error` (one line). `cacheable` is False when the run, not the spec, failed
    (a worker crashed or overstepped a budget): the next sweep tries again."""
    report: Report | None = None
    error: str | None = None
    cacheable: bool = True


def outcome(analyze: Analyze, spec: Spec, latency: dict | None) -> Outcome:
    """Run one variant; a SpecError is the variant's reason, anything else a failed run."""
    try:
        return Outcome(analyze(spec, latency))
    except SpecError as e:
        return Outcome(error=str(e))
    except RunError as e:
        return Outcome(error=str(e), cacheable=False)
    except Exception as e:  # noqa: BLE001  a bug in one variant must not lose the others' results
        return Outcome(error=f"internal error ({type(e).__name__}): {first_line(e)}", cacheable=False)


class Runner(Protocol):
    name: str

    def map(self, specs: Sequence[Spec], latency: dict | None = None) -> Iterator[tuple[int, Outcome]]:
        """Each spec's outcome, with its position in `specs`, as it finishes."""
        ...

    def close(self) -> None: ...


class ThreadedRunner:
    """`analyze` called from `concurrency` threads (static analyses) or one (timings)."""

    def __init__(self, name: str, analyze: Analyze, concurrency: int = 1, on_close: Callable[[], None] | None = None):
        self.name, self._analyze, self.concurrency, self._on_close = name, analyze, max(1, concurrency), on_close

    def map(self, specs: Sequence[Spec], latency: dict | None = None) -> Iterator[tuple[int, Outcome]]:
        if latency is not None or self.concurrency == 1:
            for i, spec in enumerate(specs):
                yield i, outcome(self._analyze, spec, latency)
            return
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="playground-sweep") as ex:
            futures = {ex.submit(outcome, self._analyze, spec, None): i for i, spec in enumerate(specs)}
            try:
                for f in as_completed(futures):
                    yield futures[f], f.result()
            finally:
                for f in futures:
                    f.cancel()

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


def _here(spec: Spec, latency: dict | None) -> Report:
    from ..workers.jobs import JOBS
    return JOBS["analyze"](spec=spec, latency=latency)


def inline(**_: Any) -> ThreadedRunner:
    """In this process, one variant after another."""
    return ThreadedRunner("inline", _here)


class ServiceRunner(ThreadedRunner):
    """Through a `playground.workers.Service`: static analyses in its analysis lane, one thread per worker, and
    timings in its latency lane, within the Service's budgets. `close()` stops the Service only if it is ours."""

    def __init__(self, service: Any, owned: bool = False, analyze: Analyze | None = None):
        pool = getattr(service, "pool", None)
        workers = pool.workers if pool is not None else 1
        self.service = service
        super().__init__("pool", analyze or (lambda spec, latency: service.analyze(spec, latency=latency)),
                         workers, service.close if owned else None)


def pool(workers: int | None = None, latency: bool = False, **_: Any) -> ServiceRunner:
    """Worker processes of our own (no budgets: the CLI's and Python's runs are unlimited); a latency worker only
    when the sweep times, and no gate worker (nothing to estimate without budgets)."""
    from ..budgets import Budgets
    from ..workers import Service
    lanes = ("analysis", "latency") if latency else ("analysis",)
    return ServiceRunner(Service(workers, Budgets(), lanes=lanes), owned=True)


# ---- Ray

def _ray_job(spec: Spec, latency: dict | None) -> tuple[str, Any]:
    """A Ray task: the `analyze` job on the CPUs Ray gave it, answering (kind, value) as a pool worker does."""
    import ray
    import torch
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    if cpus:
        torch.set_num_threads(max(1, int(cpus)))
    try:
        return "ok", _here(spec, latency)
    except SpecError as e:
        return "spec_error", str(e)


class RayRunner:
    """Variants as Ray tasks (`pip install ".[ray]"`; the cluster's nodes need this package installed). Static
    analyses take one CPU each; a CPU timing takes every CPU of the smallest node, a CUDA timing one GPU, so no
    two timings share a machine's cores or a GPU. Connects to `address` ("auto": the running cluster; "local":
    start Ray here) unless this process is connected already; disconnects only from a Ray it started."""

    name = "ray"

    def __init__(self, address: str = "auto"):
        try:
            import ray
        except ImportError:
            raise SpecError("ray: Ray is not installed; pip install 'architecture-playground[ray]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=None if address == "local" else address, include_dashboard=False,
                         log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SpecError(f"ray: cannot connect to {address!r}: {first_line(e)}") from None
            self._started = True
        self._task = ray.remote(_ray_job)

    def _options(self, latency: dict | None) -> dict[str, Any]:
        if latency is None:
            return {"num_cpus": 1}
        if latency.get("device") == "cuda":
            return {"num_cpus": 1, "num_gpus": 1}
        cpus = [n["Resources"].get("CPU", 0) for n in self._ray.nodes() if n.get("Alive")]
        return {"num_cpus": max(1, int(min(c for c in cpus if c) if any(cpus) else 1))}

    def map(self, specs: Sequence[Spec], latency: dict | None = None) -> Iterator[tuple[int, Outcome]]:
        ray = self._ray
        task = self._task.options(**self._options(latency))
        pending = {task.remote(spec, latency): i for i, spec in enumerate(specs)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), self._outcome(ref)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def _outcome(self, ref: Any) -> Outcome:
        try:
            kind, value = self._ray.get(ref)
        except Exception as e:  # noqa: BLE001  the task's worker died, or the task raised (a bug): one line
            cause = getattr(e, "cause", None) or e
            return Outcome(error=f"ray task failed ({type(cause).__name__}): {first_line(cause)}", cacheable=False)
        return Outcome(value) if kind == "ok" else Outcome(error=value)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


RUNNERS: dict[str, Callable[..., Runner]] = {"inline": inline, "pool": pool, "ray": lambda address="auto", **_:
                                             RayRunner(address)}


def make_runner(workers: int | None = None, ray: str | None = None, latency: bool = False) -> Runner:
    """The runner the CLI's and Python's options ask for: `ray` an address, else `workers` >= 1 the process pool,
    else this process."""
    if ray:
        return RUNNERS["ray"](address=ray)
    if workers:
        if workers < 1 or workers > 4 * (os.cpu_count() or 1):
            raise SpecError(f"workers: {workers} is not a number of worker processes from 1 to "
                            f"{4 * (os.cpu_count() or 1)}")
        return RUNNERS["pool"](workers=workers, latency=latency)
    return RUNNERS["inline"]()
