"""Errors a user can act on. Every one carries a single line: the field, the bad value, what is allowed."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["SpecError", "RunError", "close_matches", "first_line", "MAX_MESSAGE_CHARS"]

MAX_MESSAGE_CHARS = 600  # a message quoting a huge value keeps its start and its end (what is allowed)


class SpecError(ValueError):
    """A spec (or an input derived from one) cannot be built. The message is one line meant for the user."""

    def __init__(self, message: str):
        message = " ".join(str(message).split())
        if len(message) > MAX_MESSAGE_CHARS:
            cut = len(message) - MAX_MESSAGE_CHARS + 40
            message = f"{message[:360]} … ({cut:,} characters cut) … {message[-(MAX_MESSAGE_CHARS - 400):]}"
        super().__init__(message)


class RunError(RuntimeError):
    """A request that could not finish although its spec is fine: its worker crashed, or the request overstepped
    the server's time or memory budget (`playground.workers`). One line meant for the user."""


def close_matches(value: str, allowed: Iterable[str], n: int = 3) -> str:
    """`" (did you mean 'x', 'y'?)"` for a misspelled name, or an empty string."""
    matches = difflib.get_close_matches(str(value), list(allowed), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def first_line(e: BaseException, limit: int = 300) -> str:
    """An exception's first non-empty line (its type name when it has no text), at most `limit` characters: the
    part of another library's error worth quoting in a one-line message."""
    text = next((line.strip() for line in str(e).splitlines() if line.strip()), "") or type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"
