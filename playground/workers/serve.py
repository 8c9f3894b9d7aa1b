"""A worker process: `python -m playground.workers.serve --lane L --fd N [--threads T] [--activity PATH]
[--memory BYTES]`.

Started by the pool (`playground.workers.pool`) with one end of a socket pair. It imports torch and the library,
says ("ready", pid), then runs jobs one at a time: it receives (job name, keyword arguments) and sends
("progress", fraction, message) while the job runs, then ("ok", result), ("spec_error", the SpecError) for the user's
mistake or ("error", line) for a bug (its traceback goes to stderr, the server's log). It exits when the server
closes the socket.

Its caches (built models, reports) count against its memory budget, which the pool enforces by stopping it: so
after a job that leaves it above `TRIM_AT` of the budget it empties them, and the next user's request is not
stopped for models that earlier users left behind.
"""
from __future__ import annotations

import argparse
import os
import pickle
import signal
import socket
import traceback
from multiprocessing.connection import Connection

__all__ = ["main", "TRIM_AT"]

TRIM_AT = 0.5  # of the memory budget: above it after a job, the worker drops its cached models


def _trim(budget: int) -> None:
    """Drop cached models when this process holds more than TRIM_AT of `budget`, and give the memory back."""
    from .pool import own_memory
    if own_memory() <= TRIM_AT * budget:
        return
    import ctypes
    import gc

    from ..cache import clear_all
    clear_all()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed arenas otherwise; elsewhere nothing to do
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="playground.workers.serve")
    ap.add_argument("--lane", default="analysis", help="its lane (shown by ps; workers of a lane are alike)")
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--activity", default=None, help="the analyses' activity file: time only while they are idle")
    ap.add_argument("--memory", type=int, default=0, help="the memory budget in bytes (0: none)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the server decides
    conn = Connection(socket.socket(fileno=args.fd).detach())

    import torch

    from ..errors import SpecError, first_line
    from .jobs import JOBS
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.activity:
        from ..latency import share_cores_with
        from .activity import Activity
        share_cores_with(Activity.attach(args.activity))
    try:
        conn.send(("ready", os.getpid()))
    except OSError:  # the server went away while we started
        return

    def progress(fraction: float, message: str) -> None:
        conn.send(("progress", fraction, message))

    while True:
        try:
            name, kwargs = conn.recv()
        except (EOFError, OSError):  # the server is gone
            return
        try:
            conn.send(("ok", JOBS[name](**kwargs, progress=progress)))
        except SpecError as e:
            conn.send(("spec_error", _portable(e)))
        except Exception as e:  # a bug: the traceback to the server's log, one line to the user
            traceback.print_exc()
            conn.send(("error", f"internal error ({type(e).__name__}): {first_line(e)}"))
        if args.memory:
            _trim(args.memory)


def _portable(e: Exception) -> Exception:
    """The refusal itself when it pickles (a StemRefusal keeps what fits), else its line."""
    from ..errors import SpecError
    try:
        pickle.dumps(e)
        return e
    except Exception:  # noqa: BLE001  an attribute that does not pickle: the message is what matters
        return SpecError(str(e))


if __name__ == "__main__":
    main()
