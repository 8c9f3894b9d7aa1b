"""The sweep's on-disk cache: what each variant gave, by a hash of everything the result depends on, so that a re-run
computes nothing and a widened sweep only its new variants.

A variant's static key hashes its normalised spec (`spec.spec_key`: equal specs, equal keys, whichever sweep or
axis order made them), the versions of this package and of the libraries that count (timm, torch, fvcore), and the
static column names (a new column recomputes). Its latency key adds the latency options to the static key. An entry
is a small JSON file (the row's numbers, not the Report), written atomically; an invalid variant (a SpecError) is
kept too, as its reason. A worker that crashed or overstepped a budget is not: the next run tries again.

`PLAYGROUND_SWEEP_CACHE` sets the folder (default `cache_dir()/sweeps`); `none` turns the cache off.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from ..cache import cache_dir
from ..spec import Spec, spec_key

__all__ = ["SweepCache", "static_key", "data_key", "latency_key", "default_cache", "CACHE_ENV", "versions"]

CACHE_ENV = "PLAYGROUND_SWEEP_CACHE"
_PACKAGES = ("architecture-playground", "timm", "torch", "fvcore")


@functools.cache
def versions() -> dict[str, str]:
    """The versions a result depends on (from the installed metadata: nothing is imported)."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:40]


def data_key(data: dict) -> str:
    """The key of a variant whose spec does not validate (it is never run, nor cached): a hash of its data."""
    return _hash(data)


def static_key(spec: Spec, columns: list[str]) -> str:
    return _hash({"spec": spec_key(spec), "versions": versions(), "columns": columns})


def latency_key(static: str, latency: dict, columns: list[str]) -> str:
    return _hash({"static": static, "latency": latency, "columns": columns})


class SweepCache:
    """JSON entries under `root/<2 hex>/<key>.json`. `root=None`: a cache that keeps nothing."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if self.root is None:
            return None
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent, or a damaged file: computed again
            return None

    def put(self, key: str, entry: dict) -> None:
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one


def default_cache(root: str | Path | bool | None = True) -> SweepCache:
    """`True`: the environment's folder (`PLAYGROUND_SWEEP_CACHE`, else `cache_dir()/sweeps`); a path: that folder;
    `False` / `None`: no cache."""
    if root is True:
        env = os.environ.get(CACHE_ENV, "").strip()
        if env.lower() in ("none", "off", "0"):
            return SweepCache(None)
        return SweepCache(env or cache_dir() / "sweeps")
    return SweepCache(root or None)
