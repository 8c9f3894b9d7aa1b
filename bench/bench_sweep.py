"""Sweeps (issue 15): 48 variants of ResNet-18 / ResNet-50 in one process, in 1 and in 2 worker processes, against
48 separate `analyze()` calls in one process; then the same sweep again, from the on-disk cache.

Run: .venv/bin/python bench/bench_sweep.py [--variants 48] [--rounds 1] [--modes analyze inline workers1 ...]

The variants: backbone (resnet18, resnet50) x point (stage1 to stage4) x module (se, eca, cbam, gc, serial[se,
eca], parallel[se, eca] by add), at 224 px, in that product's order; `--variants N` keeps the first N (a quick smoke
run: the sweep zips the three axes' values per variant, so any N works). Each mode runs in a fresh process, so that
no cache of an earlier mode helps; its clock starts after the imports (torch, timm: the same for every mode) and
stops when the last row is in, so the worker modes include starting their workers (each imports torch: a few
seconds, in parallel with the first analyses of the others). The sweeps run with the cache off, except the last
mode, which reads what `cached_fill` wrote. Every mode's rows must be equal (a hash of their numbers is compared).
Prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKBONES = ("resnet18", "resnet50")
POINTS = ("stage1", "stage2", "stage3", "stage4")
MODULES = ("se", "eca", "cbam", "gc", {"serial": ["se", "eca"]}, {"parallel": ["se", "eca"], "merge": "add"})
MODES = ("analyze", "inline", "workers1", "workers2", "cached_fill", "cached")


def sweep_data(n: int) -> dict:
    """The first `n` variants of the product, as a sweep whose three axes are zipped (one value each per variant)."""
    combos = list(itertools.product(BACKBONES, POINTS, MODULES))[:n]
    return {"title": f"bench: {n} variants", "base": {"backbone": "resnet18", "insert": [{"at": "stage1",
                                                                                           "module": "se"}]},
            "axes": {"backbone": [c[0] for c in combos], "insert[0].at": [c[1] for c in combos],
                     "insert[0].module": [c[2] for c in combos]},
            "zip": [["backbone", "insert[0].at", "insert[0].module"]] if n > 1 else None, "limit": max(n, 1)}


CHILD = r"""
import hashlib, json, sys, time
sys.path.insert(0, {root!r})
import torch, timm, fvcore.nn, torchinfo
import playground
from playground.analyze import analyze
from playground.sweep import sweep, load_sweep
from playground.sweep.results import static_entry
mode, data, cache = {mode!r}, json.loads({data!r}), {cache!r}
variants = load_sweep(data).expand()
t = time.perf_counter()
if mode == "analyze":
    metrics = [static_entry(analyze(v.spec))["metrics"] for v in variants]
else:
    workers = {{"workers1": 1, "workers2": 2}}.get(mode)
    result = sweep(data, workers=workers, cache=cache if mode.startswith("cached") else False)
    metrics = [{{k: v for k, v in r.metrics.items() if v is not None}} for r in result.rows]
seconds = time.perf_counter() - t
digest = hashlib.sha256(json.dumps(metrics, sort_keys=True).encode()).hexdigest()[:12]
print(json.dumps({{"seconds": seconds, "digest": digest, "n": len(metrics)}}))
"""


def run_mode(mode: str, data: dict, cache: str) -> dict:
    code = CHILD.format(root=str(ROOT), mode=mode, data=json.dumps(data), cache=cache)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


LABELS = {"analyze": "separate `analyze()` calls, one process", "inline": "`sweep()` in one process",
          "workers1": "`sweep(workers=1)`", "workers2": "`sweep(workers=2)`",
          "cached_fill": "`sweep()` in one process, writing the cache", "cached": "`sweep()` again: all from the cache"}


def _cpu_name() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported as bench.*
    from machine import cpu_name
    return cpu_name()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=1, help="runs of each mode (the table shows the minimum)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = ap.parse_args(argv)
    data = sweep_data(args.variants)
    results: dict[str, list[dict]] = {m: [] for m in args.modes}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as cache:
        for _ in range(args.rounds):
            for mode in args.modes:
                r = run_mode(mode, data, cache)
                results[mode].append(r)
                print(f"{mode:<12} {r['seconds']:8.1f} s  rows {r['digest']}", file=sys.stderr)
    digests = {r["digest"] for rs in results.values() for r in rs}
    best = {m: min(r["seconds"] for r in rs) for m, rs in results.items()}
    print(f"\n{args.variants} variants, {os.cpu_count()} cores ({_cpu_name()}), torch threads: the library's default "
          f"(workers: cores // workers each); best of {args.rounds}; rows equal in every mode: "
          f"{'yes' if len(digests) == 1 else 'NO: ' + ', '.join(sorted(digests))}\n")
    print("| mode | wall time | per variant | vs 1 worker |")
    print("|---|---:|---:|---:|")
    one = best.get("workers1")
    for m in args.modes:
        s = best[m]
        ratio = f"{one / s:.2f}x" if one and m != "cached" else "-"
        print(f"| {LABELS[m]} | {s:.1f} s | {s / args.variants:.2f} s | {ratio} |")


if __name__ == "__main__":
    main()


