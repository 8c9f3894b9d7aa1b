"""What the page knows of timm's backbones, without importing timm: every name with its default input size (asked
of a worker once, then kept), and whether pretrained weights can be had here (asked of a worker each time: a
cache can fill, a host can come back).

The first question waits for a worker to start (seconds, once); the page is served before that, with the curated
names (`choices.CURATED_BACKBONES`), and its load event brings the full menu.
"""
from __future__ import annotations

import difflib
import threading

from ..errors import SpecError, close_matches
from .workers import service

__all__ = ["sizes", "menu", "search", "known", "check", "default_size", "pretrained_unavailable"]

_sizes: dict[str, int] = {}
_lock = threading.Lock()


def sizes() -> dict[str, int]:
    """Every backbone name timm takes (architectures, then pretrained tags) with its default input size."""
    with _lock:  # one request to the workers; whoever asks meanwhile waits for its answer
        if not _sizes:
            _sizes.update(service().backbones())
        return _sizes


def menu() -> list[str]:
    """The backbone menu: every architecture, the curated ones first (a pretrained tag is typed, not listed)."""
    return [n for n in sizes() if "." not in n]


def search(query: str, limit: int = 50) -> dict[str, int]:
    """Architectures whose name contains `query` (case-insensitive) with their default input size: names that
    start with it first, then the menu's order (curated first); close spellings when nothing contains it."""
    q = query.strip().lower()
    names = [n for n in menu() if q in n]
    names.sort(key=lambda n: not n.startswith(q))  # stable: the menu's order within each group
    if not names:
        names = difflib.get_close_matches(q, menu(), n=limit, cutoff=0.5)
    table = sizes()
    return {n: table[n] for n in names[:max(1, limit)]}


def known(name: str) -> bool:
    """Whether timm knows the backbone (as `timm.is_model`: a tag after the architecture is not checked)."""
    return name.partition(".")[0] in sizes()


def check(name: str) -> str:
    """`name` when timm knows it, else the one-line SpecError its build would raise (with close matches), so the
    page's status line says it as the spec is typed."""
    if not known(name):
        raise SpecError(f"backbone: unknown model {name!r}{close_matches(name, menu())}; "
                        f"any timm model name is allowed")
    return name


def default_size(name: str) -> int | None:
    """The backbone's default input size; None for a name timm does not know."""
    table = sizes()
    return table.get(name) or table.get(name.partition(".")[0])


def pretrained_unavailable(name: str) -> str | None:
    """Why `pretrained: true` cannot load weights for `name` here, in one line; None when it can."""
    return service().pretrained_unavailable(name)
