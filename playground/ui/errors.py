"""Handler errors as the page shows them: a SpecError (the spec) or a RunError (a worker that crashed or overstepped
a budget) is one line in domain words; anything else is a short internal error (logged with its traceback).
The page's messages are HTML-escaped: Gradio's pop-up renders HTML, and a message such as "stage<i>.block<j>"
must show its angle brackets; the API's (gradio_client, MCP) are the plain line."""
from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable

import gradio as gr

from ..errors import RunError, SpecError, first_line

__all__ = ["user_errors", "shown", "progress_to"]

log = logging.getLogger(__name__)


def shown(message: str) -> str:
    """A message as the pop-up must receive it to show it verbatim."""
    return html.escape(message, quote=False)


def user_errors(fn: Callable, *, page: bool = True) -> Callable:
    """Run a handler; a SpecError becomes a `gr.Error` with its one line, anything else a short internal error.
    `page=False` for API endpoints: the line is not HTML-escaped (their clients read text, not a pop-up)."""
    say = shown if page else str

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except SpecError as e:
            raise gr.Error(say(str(e)), title="Cannot do that", print_exception=False) from None
        except RunError as e:
            raise gr.Error(say(str(e)), title="Stopped", print_exception=False) from None
        except Exception as e:  # a bug, not the user's fault: log it, say so in one line
            log.exception("handler %s failed", fn.__name__)
            raise gr.Error(say(f"internal error ({type(e).__name__}): {first_line(e)}"),
                           title="Something broke") from None
    return wrapper


def progress_to(progress, lo: float = 0.0, hi: float = 1.0) -> Callable[[float, str], None]:
    """analyze's `progress(fraction, message)` onto a gr.Progress (or None), mapped into [lo, hi]."""
    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(lo + (hi - lo) * fraction, desc=message)
    return step
