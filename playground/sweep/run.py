"""`sweep(...)`: expand a sweep, refuse it above its limit before anything runs, take what the on-disk cache has,
run the rest (static analyses in parallel, then the timings one at a time), and return the rows with their
constraints and Pareto front.

    >>> r = sweep({"base": {"backbone": "resnet18", "img_size": 64},
    ...            "axes": {"insert": [[], [{"at": "stage4", "module": "se"}]]}}, cache=False)
    >>> [row.metrics["params_delta"] for row in r.rows], r.front
    ([0, 33312], [0])
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .cache import SweepCache, data_key, default_cache, latency_key, static_key
from .constraints import parse_constraints
from .pareto import front_of
from .results import COLUMNS, SweepResult, SweepRow, SweepStats, check_objectives, latency_entry, static_entry
from .runners import Runner, make_runner
from .spec import MAX_LIMIT, SweepSpec, Variant, check_latency_options, load_sweep

__all__ = ["sweep", "Progress"]

Progress = Callable[[int, int, str], None]  # (done, total, what just finished)


def sweep(source: SweepSpec | dict | str | Path, *, workers: int | None = None, ray: str | None = None,
          runner: Runner | None = None, latency: bool | dict | None = None, where: str | None = None,
          objectives: Sequence[str] | None = None, limit: int | None = None, cache: bool | str | Path = True,
          fresh: bool = False, progress: Progress | None = None) -> SweepResult:
    """Run a sweep: every variant of `source` analysed once (or read from the cache), as typed rows.

    Args:
        source: a SweepSpec, a dict, YAML/JSON text, or a `pathlib.Path` (see `playground.sweep.spec`).
        workers: run in this many worker processes (None or 0: in this process).
        ray: run as Ray tasks on the cluster at this address ("auto", "local", "ray://host:10001").
        runner: a runner to use instead (the app passes its Service's); it is not closed.
        latency: also time every valid variant (True: analyze's defaults; a dict: its options); None: the
            sweep's own `latency:`; False: no timing.
        where: constraints ("gmacs <= 4.5, params_m <= 30") that the kept rows and the front meet.
        objectives: the front's columns (default: the sweep's `objectives`, else gmacs and params_m).
        limit: the most variants allowed (default: the sweep's `limit`); above it, a one-line SpecError.
        cache: True (the default folder), a folder, or False; `fresh` computes everything again (and stores it).
        progress: `progress(done, total, label)` after each variant's run (or cache hit).

    Returns:
        SweepResult: rows (invalid variants with their reason), kept, front, stats.
    """
    start = time.perf_counter()
    spec = load_sweep(source)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT):
        raise SpecError(f"limit: {limit!r} is not a number of variants from 1 to {MAX_LIMIT:,}")
    spec.check_count(limit)
    timing = _latency(spec, latency)
    objectives = check_objectives(objectives) if objectives else spec.objectives
    constraints = parse_constraints(where)
    store = cache if isinstance(cache, SweepCache) else default_cache(cache)
    variants = spec.expand()
    job = _Job(variants, timing, store, fresh, progress)
    own = runner is None
    if runner is None:
        runner = make_runner(workers, ray, latency=timing is not None) if job.needs_running() else None
    try:
        job.run(runner)
    finally:
        if own and runner is not None:
            runner.close()
    rows = job.rows()
    kept = [r.index for r in rows if r.ok and constraints.admit(r.metrics)]
    stats = SweepStats(variants=len(rows), computed=job.computed, cached=job.cached,
                       invalid=sum(1 for r in rows if not r.ok), seconds=round(time.perf_counter() - start, 3),
                       runner=runner.name if runner is not None else "cache")
    return SweepResult(title=spec.title, description=spec.description, axes=list(spec.axes), count=spec.count,
                       rows=rows, columns=list(COLUMNS), objectives=list(objectives), where=constraints.text,
                       kept=kept, front=front_of([rows[i] for i in kept], objectives), latency=timing, stats=stats)


def _latency(spec: SweepSpec, latency: bool | dict | None) -> dict | None:
    if latency is None:
        return spec.latency
    if latency is False:
        return None
    return {} if latency is True else check_latency_options(dict(latency), "latency")


_STATIC = [c.name for c in COLUMNS.values() if c.lane == "static"]
_TIMED = [c.name for c in COLUMNS.values() if c.lane == "latency"]


class _Job:
    """One run's bookkeeping: each variant's cache keys and entries, what is left to compute, the progress."""

    def __init__(self, variants: list[Variant], timing: dict | None, store: SweepCache, fresh: bool,
                 progress: Progress | None):
        self.variants, self.timing, self.store, self.fresh = variants, timing, store, fresh
        self.progress = progress or (lambda done, total, label: None)
        self.keys = {v.index: static_key(v.spec, _STATIC) for v in variants if v.spec is not None}
        self.static: dict[int, dict] = {}
        self.timed: dict[int, dict] = {}
        self.computed = self.cached = 0
        self.done = 0
        self.total = len(variants) + (len(self.keys) if timing is not None else 0)
        for i, key in self.keys.items():
            hit = None if fresh else store.get(key)
            if hit is not None:
                self.static[i] = hit
                self.cached += 1
        if timing is not None:
            for i in self.keys:
                hit = None if fresh else store.get(self._latency_key(i))
                if hit is not None:
                    self.timed[i] = hit

    def _latency_key(self, i: int) -> str:
        return latency_key(self.keys[i], self.timing or {}, _TIMED)

    def _step(self, label: str, n: int = 1) -> None:
        self.done += n
        self.progress(self.done, self.total, label)

    def needs_running(self) -> bool:
        return bool(self._static_todo() or self._timed_todo())

    def _static_todo(self) -> list[int]:
        return [i for i in self.keys if i not in self.static]

    def _timed_todo(self) -> list[int]:
        if self.timing is None:
            return []
        return [i for i in self.keys if i not in self.timed and self.static.get(i, {}).get("error") is None]

    def run(self, runner: Runner | None) -> None:
        self._step("read the cache", len(self.variants) - len(self._static_todo()))
        todo = self._static_todo()
        if todo:
            assert runner is not None
            for k, out in runner.map([self.variants[i].spec for i in todo]):
                i = todo[k]
                entry = static_entry(out.report) if out.report is not None else {"error": out.error}
                self.static[i] = entry
                self.computed += 1
                if out.cacheable:
                    self.store.put(self.keys[i], entry)
                self._step(self.variants[i].label)
        if self.timing is None:
            return
        timed = self._timed_todo()
        self._step("timings from the cache", self.total - self.done - len(timed))
        if timed:
            assert runner is not None
            for k, out in runner.map([self.variants[i].spec for i in timed], self.timing):
                i = timed[k]
                entry = latency_entry(out.report) if out.report is not None else {"error": out.error}
                self.timed[i] = entry
                if out.cacheable:
                    self.store.put(self._latency_key(i), entry)
                self._step(f"timed {self.variants[i].label}")

    def rows(self) -> list[SweepRow]:
        return [self._row(v) for v in self.variants]

    def _row(self, v: Variant) -> SweepRow:
        spec = v.spec.to_dict() if v.spec is not None else v.data
        if v.spec is None:
            return SweepRow(v.index, v.label, v.values, spec, data_key(v.data), error=v.error)
        static = self.static.get(v.index, {"error": "not run"})
        timed = self.timed.get(v.index, {})
        metrics: dict[str, Any] = {c: None for c in COLUMNS}
        metrics |= static.get("metrics", {}) | timed.get("metrics", {})
        error = static.get("error") or (f"latency: {timed['error']}" if timed.get("error") else None)
        return SweepRow(v.index, v.label, v.values, spec, self.keys[v.index], error=error,
                        metrics=metrics, final_shape=static.get("final_shape"),
                        warnings=list(static.get("warnings", [])))
