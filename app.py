"""Architecture Playground, the web app: `python app.py`, then open http://127.0.0.1:7860.

GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override the address (0.0.0.0 in a container). The page and its logic
live in `playground/ui/`; this file only launches them: offline (no analytics), with the queue as the only way
in (`api_open=False`), so concurrency limits hold for the page and the API alike.

`python app.py --mcp` (or GRADIO_MCP_SERVER=True, Gradio's own variable, e.g. in a Space's settings) also serves the
named API endpoints as MCP tools at /gradio_api/mcp/ (gradio[mcp], in requirements.txt); README, "Agents (MCP)".

The server process imports no torch (the models run in worker processes), so the page is served within seconds;
the workers start (importing torch, warming the default preset) only once it is, so they do not compete with it
for the cores.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from playground import ui  # noqa: E402
from playground.ui.workers import stop_service  # noqa: E402

QUEUE_SIZE = 64


def serve(demo: gr.Blocks, server_name: str | None = None, server_port: int | None = None, **launch):
    """Queue and launch `demo` with the app's settings; extra keyword arguments go to `launch()`."""
    demo.queue(api_open=False, max_size=QUEUE_SIZE)
    return demo.launch(
        server_name=server_name or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=server_port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **{**ui.launch_kwargs(), **launch})


demo = ui.build_demo()  # module level, for `gradio app.py` (reload mode)

def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Architecture Playground, the web app")
    parser.add_argument("--mcp", action="store_true", default=None,
                        help="also serve the API endpoints as MCP tools at /gradio_api/mcp/ (default: "
                             "GRADIO_MCP_SERVER)")
    return parser.parse_args(argv)


def mcp_missing() -> str | None:
    """Why the MCP server cannot start here, or None."""
    if importlib.util.find_spec("mcp") is None:
        return 'the MCP server needs the mcp package, not installed here: pip install "gradio[mcp]"'
    return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # `docker stop`, a Space's restart: close as Ctrl-C does


if __name__ == "__main__":
    args = _args()
    wants_mcp = args.mcp or os.environ.get("GRADIO_MCP_SERVER", "").lower() == "true"
    if wants_mcp and mcp_missing():
        sys.exit(f"error: {mcp_missing()}")
    signal.signal(signal.SIGTERM, _interrupt)
    serve(demo, prevent_thread_lock=True, mcp_server=args.mcp)
    threading.Thread(target=ui.warm_up, daemon=True).start()
    try:
        demo.block_thread()  # until Ctrl-C / SIGTERM; it closes the server
    finally:
        stop_service()
