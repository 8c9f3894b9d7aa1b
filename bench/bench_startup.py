"""Start-up of the web app: seconds from `python app.py` to HTTP 200 on /config, and the server process's RSS (its
workers apart) then and once the workers have warmed up. Several checkouts are measured in turns, in one run, so a
busy machine affects them alike.

    python bench/bench_startup.py [--runs 3] [--settle 40] [ROOT ...]   # default ROOT: this checkout
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_once(root: Path, settle: float, timeout: float = 120.0) -> tuple[float, float, float]:
    """(seconds to /config, server RSS MB then, server RSS MB `settle` seconds later)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None or time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{root}: the server did not start")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        ready = time.monotonic() - t0
        server = psutil.Process(proc.pid)
        rss_ready = server.memory_info().rss / 2**20
        time.sleep(settle)
        return ready, rss_ready, server.memory_info().rss / 2**20
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.terminate()
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="*", type=Path, default=[HERE])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=40.0, help="seconds after start-up before RSS is read again")
    args = ap.parse_args()
    results: dict[Path, list[tuple[float, float, float]]] = {r: [] for r in args.roots}
    for _ in range(args.runs):
        for root in args.roots:
            results[root].append(start_once(root.resolve(), args.settle))
            ready, rss, settled = results[root][-1]
            print(f"{root}: {ready:.2f} s, RSS {rss:.0f} MB, {settled:.0f} MB after {args.settle:g} s", flush=True)
    for root, rows in results.items():
        ready, rss, settled = (statistics.median(c) for c in zip(*rows))
        print(f"{root}: page served after {ready:.2f} s (median of {len(rows)}; "
              f"{min(r[0] for r in rows):.2f} to {max(r[0] for r in rows):.2f}), server RSS {rss:.0f} MB then, "
              f"{settled:.0f} MB after the warm-up")


if __name__ == "__main__":
    main()
