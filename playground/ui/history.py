"""Undo / redo over the page's spec: a bounded list of spec texts and a cursor. Plain values, no Gradio.

Every change of the spec is one step (a control edit, an added row, a preset load, an undo target), except that
consecutive edits of the YAML text merge into one step, as a text editor groups typing.

    >>> h = History.start("backbone: resnet18\\n").commit("backbone: resnet50\\n", "control")
    >>> h.undo().current
    'backbone: resnet18\\n'
    >>> h.undo().redo().current
    'backbone: resnet50\\n'
"""
from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["History", "LIMIT", "LIMIT_BYTES"]

LIMIT = 50  # steps kept; the oldest go first
LIMIT_BYTES = 1 << 20  # and at most this much spec text per page (a spec may be 256 KB): sessions stay small


@dataclass(frozen=True)
class History:
    """Spec texts, oldest first; `pos` is the one shown; `source` names what made the last step ("yaml" merges)."""
    items: tuple[str, ...]
    pos: int = 0
    source: str | None = None

    @classmethod
    def start(cls, text: str) -> History:
        return cls((text,))

    @property
    def current(self) -> str:
        return self.items[self.pos]

    @property
    def can_undo(self) -> bool:
        return self.pos > 0

    @property
    def can_redo(self) -> bool:
        return self.pos < len(self.items) - 1

    def commit(self, text: str, source: str | None = None) -> History:
        """A new step showing `text` (nothing when it is what is shown); the redo branch is dropped."""
        if text == self.current:
            return self
        kept = self.items[:self.pos + 1]
        if source == "yaml" and self.source == "yaml" and self.pos > 0:
            kept = kept[:-1]  # typing goes on: the same step
        items = (kept + (text,))[-LIMIT:]
        while len(items) > 1 and sum(map(len, items)) > LIMIT_BYTES:
            items = items[1:]
        return History(items, len(items) - 1, source)

    def undo(self) -> History:
        return replace(self, pos=max(self.pos - 1, 0), source=None)

    def redo(self) -> History:
        return replace(self, pos=min(self.pos + 1, len(self.items) - 1), source=None)
