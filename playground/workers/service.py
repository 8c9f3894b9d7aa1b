"""What the web app asks of the library, within its budgets, in worker processes: the server's one door to torch.

`Service` checks a request against the budgets first (image size here; parameters and MACs from a meta-device
estimate, computed once per backbone and size in a worker and kept), then runs it in a lane of the pool: a
latency run in the latency lane, everything else in the analysis lane, routed by backbone to warm caches. With
`workers=0` everything runs in this process (debugging; the budgets of time and memory then do not apply).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from ..budgets import Budgets, Estimate
from ..cache import LRU
from ..compare import Comparison
from ..export import ExportResult
from ..report import Report
from ..spec import Spec
from . import jobs
from .pool import LANES, WorkerPool

__all__ = ["Service"]

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None] | None
ESTIMATES = 512  # budget estimates kept (a few hundred bytes each)


class Service:
    """The app's analyses, comparisons, point menus and exports, within `budgets`, in `workers` processes."""

    def __init__(self, workers: int | None = None, budgets: Budgets | None = None, lanes: Collection[str] = LANES):
        self.budgets = budgets or Budgets()
        self.pool = WorkerPool(workers, self.budgets, lanes) if workers != 0 else None
        self._estimates: LRU[Estimate] = LRU(ESTIMATES)
        self._making: dict[tuple, threading.Lock] = {}
        self._making_lock = threading.Lock()

    def _run(self, job: str, *, lane: str = "analysis", key: str | None = None, what: str = "analysis",
             progress: Progress = None, **kwargs: Any) -> Any:
        if self.pool is None:
            return jobs.JOBS[job](**kwargs, progress=progress)
        return self.pool.run(job, lane=lane, key=key, what=what, progress=progress, **kwargs)

    def _estimate(self, spec: Spec, max_params: float | None) -> Estimate:
        """The spec's estimate, made once per backbone and size: users asking for the same one at once wait for
        the first (three users asking for a giant cost the gate one estimate, not three in a row)."""
        key = (spec.backbone, spec.img_size, spec.stem, spec.num_classes, max_params)
        hit = self._estimates.get(key)
        if hit is not None:
            return hit
        with self._making_lock:
            making = self._making.setdefault(key, threading.Lock())
        try:
            with making:
                hit = self._estimates.get(key)  # made meanwhile by the first asker
                if hit is None:
                    hit = self._estimates.put(key, self._run("estimate", lane="gate", what="size check", spec=spec,
                                                             max_params=max_params))
            return hit
        finally:
            with self._making_lock:
                self._making.pop(key, None)

    def check(self, spec: Spec, batch: int = 1) -> None:
        """Refuse a spec over the budgets, with one line, before anything is built."""
        self.budgets.check(spec, batch, self._estimate)

    def analyze(self, spec: Spec, *, latency: dict | None = None, images: list | None = None, topk: int = 5,
                image_names: list[str] | None = None, memory: dict | None = None,
                progress: Progress = None) -> Report:
        self.check(spec, int((latency or {}).get("batch", 1)))
        return self._run("analyze", lane="latency" if latency else "analysis", key=spec.backbone,
                         what="latency run" if latency else "prediction" if images else "analysis",
                         progress=progress, spec=spec, latency=latency, images=images, topk=topk,
                         image_names=image_names, memory=memory)

    def compare(self, specs: list[Spec], *, latency: dict | None = None, images: list | None = None,
                progress: Progress = None) -> Comparison:
        for spec in specs:
            self.check(spec, int((latency or {}).get("batch", 1)))
        return self._run("compare", lane="latency" if latency else "analysis", key=specs[0].backbone,
                         what="comparison", progress=progress, specs=specs, latency=latency, images=images)

    def points(self, spec: Spec) -> list[dict]:
        """The insertion points of the spec's backbone after its stem change, as plain dicts."""
        self.check(spec)
        return self._run("points", lane="gate", what="point list", spec=spec)  # the menu: never behind analyses

    def export(self, spec: Spec, fmt: str, path: str | Path, progress: Progress = None) -> ExportResult:
        if fmt not in ("yaml", "python"):
            self.check(spec)
        return self._run("export", key=spec.backbone, what="export", progress=progress, spec=spec, fmt=fmt,
                         path=str(path))

    def backbones(self) -> dict[str, int]:
        """Every backbone name timm takes with its default input size: the architectures (the curated ones first,
        the order of the page's menu), then the pretrained tags."""
        return self._run("backbones", lane="gate", what="backbone list")

    def pretrained_unavailable(self, backbone: str) -> str | None:
        """Why `pretrained: true` cannot load weights for `backbone` here, in one line; None when it can."""
        return self._run("pretrained_unavailable", lane="gate", what="weights check", backbone=backbone)

    def warm(self, spec: Spec) -> None:
        """Analyse `spec` once in every analysis worker (concurrently: each takes an idle one) and estimate it in the
        gate, so that the first users' requests are quick. Best effort: a failure is logged."""
        n = self.pool.workers if self.pool is not None else 1
        # daemon threads, not an executor: an executor's threads are joined at exit, and a server stopped while
        # its workers still start would wait for them
        def one(job: str, lane: str) -> None:
            try:
                self._run(job, lane=lane, key=spec.backbone, what="warm-up", spec=spec)
            except Exception:  # best effort: a user's own request will say what is wrong
                log.exception("warming a worker with %s failed", spec.backbone)
        threads = [threading.Thread(target=one, args=("warm", "analysis"), daemon=True) for _ in range(n)]
        threads.append(threading.Thread(target=one, args=("estimate", "gate"), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
