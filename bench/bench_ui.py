"""UI speed: from the Analyze click to rendered results, resnet50 at 224, no latency, in a warm server.

    PYTHONPATH=. .venv/bin/python bench/bench_ui.py [--runs 5] [--latency-runs 3]   (app.py is at the repo root)

Measured in the browser (Playwright driving /usr/bin/chromium, headless) against the app launched in-process:
the click and the moment the summary shows the new report are stamped in the page (`performance.now()`), then
two animation frames are awaited so the plots have been drawn. Two cases:

- new spec: each run changes the title, so the analysis really runs (build, probe, params, fvcore MACs, torchinfo
  table); the backbone itself is cached, as it is after the first use in a running server;
- same spec: the report comes from the server's cache; what is left is Gradio's round trip and the rendering.

For comparison the same new-spec analysis is timed through gradio_client (`/analyze`, JSON, no rendering).

Latency in the page against the CLI, in the same run: SE-ResNet-50 (the preset) at batch 1 and 8 on CPU, measured
alternately by the page's Measure button (the median it shows, `#latency-table[data-median-ms]`) and by
`playground report se_resnet50 --latency --json` in a child process while the server is idle; the ratio of the
medians should be <= 1.1. Prints a table; the numbers go to BENCHMARKS.md ("UI").
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]

# In-page stamps: the click, and the first DOM change of #summary that shows the awaited title.
PROBE = """(want) => new Promise((resolve) => {
  const summary = document.querySelector('#summary');
  setTimeout(() => resolve(null), 60000);  // bounded: a render that never shows the title counts as a timeout
  let t0 = null;
  const done = () => requestAnimationFrame(() => requestAnimationFrame(() => {
    resolve({dom: t1 - t0, painted: performance.now() - t0});
  }));
  let t1 = null;
  const obs = new MutationObserver(() => {
    if (t0 !== null && t1 === null && summary.innerText.includes(want)) {
      t1 = performance.now(); obs.disconnect(); done();
    }
  });
  obs.observe(summary, {subtree: true, childList: true, characterData: true});
  document.querySelector('#analyze').addEventListener('click', () => { t0 = performance.now(); },
                                                      {capture: true, once: true});
})"""


def spec(title: str) -> str:
    return f"title: {title}\nbackbone: resnet50\nimg_size: 224\n"


def set_yaml(page, text: str) -> None:
    editor = page.locator("#spec-yaml .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    page.locator(".pg-status.ok").wait_for(timeout=30_000)


TIMEOUTS: list[str] = []


def click_to_render(page, title: str) -> dict:
    """ms from the Analyze click to the summary showing `title` (dom) and two frames later (painted)."""
    page.evaluate(f"(want) => {{ window.__bench = ({PROBE})(want); }}", title)
    page.locator("#analyze").click()
    result = page.evaluate("() => window.__bench")
    if result is None:
        TIMEOUTS.append(title)
        return {"dom": float("nan"), "painted": float("nan")}
    return result


def page_latency(page, batch: int) -> float:
    """The page's Measure button on the spec shown: the stitched model's median (ms) from the latency table."""
    page.get_by_role("tab", name="Latency").click()
    field = page.locator("#batch input")
    field.fill(str(batch))
    field.press("Tab")
    old = page.locator("#latency-table").get_attribute("data-started") if page.locator("#latency-table").count() \
        else None
    page.locator("#measure").click()
    table = page.locator(f"#latency-table[data-batch='{batch}']")
    # polled once a second: Playwright's default polls on every animation frame, which would keep the browser
    # busy on the cores the page is timing (a real user's browser does nothing of the kind)
    page.wait_for_function("(old) => { const t = document.querySelector('#latency-table');"
                           " return t && t.dataset.started !== old; }", arg=old, timeout=300_000, polling=1000)
    return float(table.get_attribute("data-median-ms"))


def cli_latency(batch: int) -> float:
    """`playground report se_resnet50 --latency` in a child process: its median (ms)."""
    out = subprocess.run([sys.executable, "-m", "playground", "report", "se_resnet50", "--latency", "--json",
                          "--device", "cpu", "--batch", str(batch)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["latency"]["median_ms"]


def stats(xs: list[float]) -> str:
    xs = [x for x in xs if x == x]  # timeouts (nan) are reported apart
    if not xs:
        return "no completed run"
    return f"median {statistics.median(xs):7.0f} ms   min {min(xs):6.0f}   max {max(xs):6.0f}   (n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--latency-runs", type=int, default=3, help="page/CLI latency pairs per batch size")
    args = ap.parse_args()

    import torch
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    import app
    from playground import ui

    demo = ui.build_demo()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    results: dict[str, list[float]] = {"new spec: dom": [], "new spec: painted": [], "same spec: dom": [],
                                       "same spec: painted": [], "gradio_client /analyze (new spec)": [],
                                       **{f"latency batch {b}: {w}": [] for b in (1, 8) for w in ("CLI", "page")}}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.locator("#summary .pg-cards").wait_for(timeout=120_000)
            for i in range(2):  # warm: the resnet50 backbone, imports, plotly in the page
                set_yaml(page, spec(f"warm {i}"))
                click_to_render(page, f"warm {i}")
            title = None
            for i in range(args.runs):
                previous, title = title, f"bench run {i} {time.time_ns()}"
                set_yaml(page, spec(title))
                r = click_to_render(page, title)
                results["new spec: dom"].append(r["dom"])
                results["new spec: painted"].append(r["painted"])
            titles = [previous, title]  # two analysed specs, alternated: each click is a cache hit that changes
            for i in range(args.runs):  # the page (re-sending an identical report leaves the DOM untouched)
                set_yaml(page, spec(titles[i % 2]))
                r = click_to_render(page, titles[i % 2])
                results["same spec: dom"].append(r["dom"])
                results["same spec: painted"].append(r["painted"])
            page.locator("#preset input").click()  # latency: SE-ResNet-50, page and CLI alternately
            page.get_by_role("option", name="SE-ResNet-50").click()
            page.locator("#analyze").click()
            page.locator("#summary").get_by_text("28,088,024").first.wait_for(timeout=120_000)
            for batch in (1, 8):
                for _ in range(args.latency_runs):
                    results[f"latency batch {batch}: CLI"].append(cli_latency(batch))
                    results[f"latency batch {batch}: page"].append(page_latency(page, batch))
            browser.close()
        client = Client(url, verbose=False)
        for i in range(args.runs):
            t = time.perf_counter()
            json.loads(client.predict(spec(f"client run {i} {time.time_ns()}"), api_name="/analyze"))
            results["gradio_client /analyze (new spec)"].append((time.perf_counter() - t) * 1e3)
    finally:
        demo.close()

    print(f"resnet50 @ 224 (clicks, no latency); torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    for name, xs in results.items():
        print(f"{name:<36}{stats(xs)}")
    for batch in (1, 8):
        page, cli = (statistics.median(results[f"latency batch {batch}: {w}"]) for w in ("page", "CLI"))
        print(f"latency batch {batch}: page / CLI = {page / cli:.3f} ({page:.1f} ms / {cli:.1f} ms)")
    if TIMEOUTS:
        print(f"{len(TIMEOUTS)} click(s) showed no result within 60 s: {TIMEOUTS}")


if __name__ == "__main__":
    main()
