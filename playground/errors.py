"""Errors a user can act on. Every one carries a single line: the field, the bad value, what is allowed."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_MESSAGE_CHARS = 600  # a message quoting a huge value keeps its start and its end (what is allowed)


class SpecError(ValueError):
    """A spec (or an input derived from one) cannot be built. The message is one line meant for the user."""

    def __init__(self, message: str):
        message = " ".join(str(message).split())
        if len(message) > MAX_MESSAGE_CHARS:
            cut = len(message) - MAX_MESSAGE_CHARS + 40
            message = f"{message[:360]} … ({cut:,} characters cut) … {message[-(MAX_MESSAGE_CHARS - 400):]}"
        super().__init__(message)


def close_matches(value: str, allowed: Iterable[str], n: int = 3) -> str:
    """`" (did you mean 'x', 'y'?)"` for a misspelled name, or an empty string."""
    matches = difflib.get_close_matches(str(value), list(allowed), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""
