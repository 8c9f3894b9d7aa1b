"""Analysis speed and latency trust (issue 3). Run: .venv/bin/python bench/bench_analyze.py

1. Cold analysis of resnet50 at 224 (no latency) vs the same by hand (timm.create_model + print +
   torchinfo.summary + fvcore), each in a fresh process with imports done before the clock starts; alternated runs.
2. The same spec again: served from the bounded cache.
3. How cost grows with image size and depth (a fresh spec each time, warm process).
4. Latency you can trust: the report's CPU median vs an independent torch.utils.benchmark measurement of the
   same model in the same run, and the report's median repeated.
Prints a Markdown table per part; numbers are ratios measured in one run.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COLD_PLAYGROUND = """
import time, playground, torchinfo, fvcore.nn
from playground.analyze import analyze
t = time.perf_counter(); analyze({"backbone": "resnet50", "img_size": 224}); print(time.perf_counter() - t)
"""
COLD_BY_HAND = """
import time, io, contextlib, timm, torch, torchinfo
from fvcore.nn import FlopCountAnalysis
import playground  # same imports as the other side (registers the project's models)
t = time.perf_counter()
m = timm.create_model("resnet50").eval()
with contextlib.redirect_stdout(io.StringIO()):
    print(m)
    torchinfo.summary(m, input_size=(1, 3, 224, 224), depth=3, verbose=1)
f = FlopCountAnalysis(m, torch.zeros(1, 3, 224, 224)); f.unsupported_ops_warnings(False); f.total()
print(time.perf_counter() - t)
"""


def _child(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return float(out.stdout.strip().splitlines()[-1])


def cold(runs: int = 5) -> None:
    ours, hand = [], []
    for _ in range(runs):
        ours.append(_child(COLD_PLAYGROUND))
        hand.append(_child(COLD_BY_HAND))
    o, h = statistics.median(ours), statistics.median(hand)
    print("| cold, resnet50 @ 224, no latency | median s | runs |\n|---|---|---|")
    print(f"| playground analyze() | {o:.3f} | {', '.join(f'{x:.2f}' for x in ours)} |")
    print(f"| by hand: create_model + print + torchinfo + fvcore | {h:.3f} | {', '.join(f'{x:.2f}' for x in hand)} |")
    print(f"| ratio playground / by hand | {o / h:.2f} | |\n")


def warm_and_scaling() -> None:
    from playground.analyze import analyze
    analyze({"backbone": "resnet50"})
    times = []
    for _ in range(20):
        t = time.perf_counter()
        analyze({"backbone": "resnet50"})
        times.append(time.perf_counter() - t)
    med, worst = statistics.median(times) * 1e3, max(times) * 1e3
    print(f"| same spec again (cache) | median {med:.2f} ms | max {worst:.2f} ms |")
    print("|---|---|---|\n")
    print("| spec (fresh, warm process) | analyze s | GMACs | params M |\n|---|---|---|---|")
    for backbone, size in [("resnet50", 160), ("resnet50", 224), ("resnet50", 320), ("resnet50", 448),
                           ("resnet18", 224), ("resnet34", 224), ("resnet101", 224), ("resnet152", 224)]:
        spec = {"backbone": backbone, "img_size": size, "insert": [{"at": "stage3", "module": "se"}]}
        t = time.perf_counter()
        r = analyze(spec)
        dt = time.perf_counter() - t
        print(f"| {backbone} @ {size} | {dt:.3f} | {r.macs['total'] / 1e9:.2f} | {r.params['total'] / 1e6:.2f} |")
    print()


def latency_trust() -> None:
    import torch
    from torch.utils.benchmark import Timer

    from playground.analyze import analyze, cached_build
    spec = {"backbone": "resnet50"}
    opts = {"device": "cpu", "batch": 1, "min_run_time": 2.0}
    first = analyze(spec, latency=opts).latency
    model = cached_build(spec).model
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        m = Timer("model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads()) \
            .blocked_autorange(min_run_time=2.0)
    second = analyze(spec, latency=opts).latency
    ind = m.median * 1e3
    print("| resnet50 @ 224, CPU, batch 1 | median ms | IQR ms |\n|---|---|---|")
    print(f"| report (1st) | {first['median_ms']:.2f} | {first['iqr_ms']:.2f} |")
    print(f"| independent Timer.blocked_autorange | {ind:.2f} | {m.iqr * 1e3:.2f} |")
    print(f"| report (2nd) | {second['median_ms']:.2f} | {second['iqr_ms']:.2f} |")
    print(f"| report / independent | {first['median_ms'] / ind:.3f} | threads {first['threads']} |")
    print(f"| 2nd / 1st report | {second['median_ms'] / first['median_ms']:.3f} | |\n")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["cold", "warm", "latency"]
    if "cold" in parts:
        cold()
    if "warm" in parts:
        warm_and_scaling()
    if "latency" in parts:
        latency_trust()
