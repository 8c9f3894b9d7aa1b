"""Errors a user can act on. Every one carries a single line: the field, the bad value, what is allowed."""
from __future__ import annotations

import difflib
from typing import Iterable


class SpecError(ValueError):
    """A spec (or an input derived from one) cannot be built. The message is one line meant for the user."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def close_matches(value: str, allowed: Iterable[str], n: int = 3) -> str:
    """`" (did you mean 'x', 'y'?)"` for a misspelled name, or an empty string."""
    matches = difflib.get_close_matches(str(value), list(allowed), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""
