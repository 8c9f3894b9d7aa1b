"""A small thread-safe LRU: the only global state the library keeps (built models, reports, probes, counts); and
the folder of what is kept on disk (converted weights, the sample photos)."""
from __future__ import annotations

import os
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["LRU", "clear_all", "cache_dir"]

V = TypeVar("V")


class LRU(Generic[V]):
    """At most `size` entries; the least recently used goes first. (functools.lru_cache cannot be keyed by a
    normalised spec, nor be read without computing.)"""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        _ALL.add(self)

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Hashable, value: V) -> V:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value, or `make()` stored (made outside the lock: two threads may both make it once)."""
        hit = self.get(key)
        return hit if hit is not None else self.put(key, make())

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


_ALL: weakref.WeakSet[LRU] = weakref.WeakSet()


def clear_all() -> None:
    """Empty every LRU of the process (a worker over its memory budget drops its cached models)."""
    for cache in list(_ALL):
        cache.clear()


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/playground` (default `~/.cache/playground`), or a temp dir when that is not writable."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "playground"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    root = Path(tempfile.gettempdir()) / "playground-cache"
    root.mkdir(parents=True, exist_ok=True)
    return root
