"""Errors a user can act on. Every one carries a single line: the field, the bad value, what is allowed."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SpecError", "StemRefusal", "WhatFits", "RunError",
           "close_matches", "first_line", "root_cause", "in_domain_words", "TORCH_SAYINGS",
           "MAX_MESSAGE_CHARS"]

MAX_MESSAGE_CHARS = 600  # a message quoting a huge value keeps its start and its end (what is allowed)


class SpecError(ValueError):
    """A spec (or an input derived from one) cannot be built. The message is one line meant for the user."""

    def __init__(self, message: str):
        message = " ".join(str(message).split())
        if len(message) > MAX_MESSAGE_CHARS:
            cut = len(message) - MAX_MESSAGE_CHARS + 40
            message = f"{message[:360]} … ({cut:,} characters cut) … {message[-(MAX_MESSAGE_CHARS - 400):]}"
        super().__init__(message)


@dataclass(frozen=True)
class WhatFits:
    """What a refused stem change could be instead: the strides that work at this image size, and the nearest image
    size at which the asked stride works (maps that halve evenly down to the last stage)."""
    strides: list[int]
    img_size: int | None = None

    def text(self, stride: int) -> str:
        text = f"; strides that fit: {', '.join(map(str, self.strides)) or 'none'}"
        return text + (f"; stride {stride} fits at img_size {self.img_size}" if self.img_size else "")


class StemRefusal(SpecError):
    """A stem change this backbone cannot take, with what would fit (`fits`: None when not searched). Here, not in
    the builder, so that the web server (which imports no torch) unpickles it from a worker."""

    def __init__(self, message: str, fits: WhatFits | None = None):
        super().__init__(message)
        self.fits = fits


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



def root_cause(e: BaseException) -> BaseException:
    """The innermost exception `e` was raised from: a wrapper's text ("Failed to run torchinfo", an exporter's
    summary) hides the real reason."""
    while e.__cause__ is not None:
        e = e.__cause__
    return e

# What torch says when a feature map has the wrong size for a layer, and what it means here: the kernel's arithmetic
# becomes the map, the layer and what to change. Each pattern's groups fill its sentence.
TORCH_SAYINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), words) for p, words in (
    (r"Calculated padded input size per channel: \((\d+) x (\d+)\)\. Kernel size: \((\d+) x (\d+)\)",
     "its input map is {0}x{1}, smaller than its {2}x{3} kernel: the image is too small for this depth "
     "(use a larger img_size or a smaller stride)"),
    (r"Given input size: \((\d+)x(\d+)x(\d+)\)\. Calculated output size: \(\d+x(-?\d+)x(-?\d+)\)\. Output size is "
     r"too small",
     "its {1}x{2} input map is too small for its pooling window: the image is too small for this depth "
     "(use a larger img_size or a smaller stride)"),
    (r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension",
     "it joins two maps of {0} and {1} positions that must be equal (branches that downsample an odd-sized map "
     "differently, or a size fixed for another grid: an img_size divisible by the total stride may fit)"),
    (r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)",
     "a linear layer takes {2} features and receives {1} (a size fixed for another grid)"),
    (r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)",
     "it reshapes {1} values into [{0}] (a size fixed for another grid)"),
))


def in_domain_words(text: str) -> str | None:
    """What a torch error about a map's size means, in this domain's words; None when it is not one of those.

    >>> print(in_domain_words("Calculated padded input size per channel: (1 x 1). Kernel size: (2 x 2). Kernel "
    ...                       "size can't be greater than actual input size"))  # doctest: +ELLIPSIS
    its input map is 1x1, smaller than its 2x2 kernel: the image is too small for this depth (use a larger img_size...
    """
    for pattern, words in TORCH_SAYINGS:
        found = pattern.search(text)
        if found:
            return words.format(*found.groups())
    return None
