"""Large models (issue 13): a static analysis counted on a lean build vs the fully initialised one, in one run.

Run: .venv/bin/python bench/bench_large.py [backbone ...]   (default: the specs in SPECS)

Each measurement is `analyze(load_spec(SPEC))` (params, MACs, shapes, tree, summary; no latency, no predictions)
in a fresh process, imports done before the clock starts; "before" sets PLAYGROUND_LEAN=0, which forces
the ordinary, fully initialised build; runs alternate. Peak RSS is the child's `ru_maxrss` (imports included; the
RSS after imports is printed too). Each child prints a hash of its Report: before and after must be equal.

Then small models, where a fresh process's timing drowns in noise on a shared 2-core machine: in this process, one
thread, caches cleared before each analysis, before and after alternated 5 times; min and median.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's playground, for the in-process part, whatever is installed
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SPECS = {
    "vit_huge_patch14_224": {"backbone": "vit_huge_patch14_224"},
    "vit_huge_patch14_224 + serial[se, eca] at final": {
        "backbone": "vit_huge_patch14_224", "insert": [{"at": "final", "module": {"serial": ["se", "eca"]}}]},
    "vit_base_patch16_224": {"backbone": "vit_base_patch16_224"},
    "resnet50": {"backbone": "resnet50"},
}

CHILD = """
import hashlib, json, resource, sys, time
import playground, torchinfo, fvcore.nn
from playground.analyze import analyze
from playground.spec import load_spec
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
r = analyze(load_spec(json.loads(sys.argv[1])))
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
digest = hashlib.sha256(json.dumps(r.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
print(json.dumps({"wall": wall, "peak_kb": peak, "imported_kb": imported, "report": digest}))
"""


def _child(spec: dict, lean: bool) -> dict:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
           **({} if lean else {"PLAYGROUND_LEAN": "0"})}
    env.update({k: os.environ[k] for k in ("HOME", "XDG_CACHE_HOME") if k in os.environ})
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(specs: dict[str, dict]) -> None:
    print("| static analysis | before: fully initialised | after: lean | after / before |")
    print("|---|---|---|---|")
    for name, spec in specs.items():
        runs: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(ROUNDS):
            for lean in (False, True):
                runs[lean].append(_child(spec, lean))
        digests = {r["report"] for rs in runs.values() for r in rs}
        wall = {k: statistics.median(r["wall"] for r in rs) for k, rs in runs.items()}
        peak = {k: statistics.median(r["peak_kb"] for r in rs) / 1e6 for k, rs in runs.items()}
        imported = statistics.median(r["imported_kb"] for rs in runs.values() for r in rs) / 1e6
        walls = {k: ", ".join(f"{r['wall']:.2f}" for r in rs) for k, rs in runs.items()}
        print(f"| {name}: wall s (median of {ROUNDS}) | {wall[False]:.2f} ({walls[False]}) | "
              f"{wall[True]:.2f} ({walls[True]}) | {wall[True] / wall[False]:.2f} |")
        print(f"| {name}: peak RSS GB (after imports: {imported:.2f}) | {peak[False]:.2f} | {peak[True]:.2f} | "
              f"{peak[True] / peak[False]:.2f} |")
        print(f"| {name}: Report identical | {'yes' if len(digests) == 1 else 'NO: ' + ', '.join(digests)} | | |")


def small(backbones: list[str], rounds: int = 5) -> None:
    import torch

    from playground.analyze import _base_macs, _builts, _reports, analyze
    from playground.build import _base_probes, _bases
    torch.set_num_threads(1)
    print("\n| small model, static analysis, 1 thread, in process | before: min / median s | after: min / median s "
          "| after / before (median) |\n|---|---|---|---|")
    for backbone in backbones:
        times: dict[str, list[float]] = {"0": [], "1": []}
        for _ in range(rounds):
            for flag in times:
                os.environ["PLAYGROUND_LEAN"] = flag
                for cache in (_reports, _builts, _base_macs, _bases, _base_probes):
                    cache.clear()
                t = time.perf_counter()
                analyze({"backbone": backbone})
                times[flag].append(time.perf_counter() - t)
        (b0, m0), (b1, m1) = ((min(v), statistics.median(v)) for v in times.values())
        print(f"| {backbone} | {b0:.3f} / {m0:.3f} | {b1:.3f} / {m1:.3f} | {m1 / m0:.2f} |")
    os.environ.pop("PLAYGROUND_LEAN")


if __name__ == "__main__":
    main({b: {"backbone": b} for b in sys.argv[1:]} or SPECS)
    if not sys.argv[1:]:
        small(["resnet50", "vit_tiny_patch16_224", "convnext_atto", "efficientnet_lite0", "mobilenetv3_small_100"])
