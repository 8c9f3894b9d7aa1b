"""Seed 000's claim, measured: "a stride-4 embedding (8x8 maps) runs faster than stride 2 (16x16)".

Run: .venv/bin/python bench/bench_seed000.py [--batch 1 64] [--threads 1] [--rounds 3] [--min-run-time 1.0]

Both presets (seed000_metaformer_s2: Conv k4 s2 p1, 16x16 maps; seed000_metaformer_s4: Conv k7 s4 p2, 8x8 maps) are
analyzed in the same process, MACs from the report and CPU latency from `analyze(..., latency={...})`
(torch.utils.benchmark, median per forward pass). The two models are measured alternately, `--rounds` times per
batch size and in swapped order every other round, so a drift in the machine's load hits both; the table gives
the median over rounds of each round's median. Prints a Markdown table with the ratios.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

import torch

from playground.analyze import analyze
from playground.presets import load_preset

PRESETS = ("seed000_metaformer_s2", "seed000_metaformer_s4")


def _cpu_name() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported as bench.*
    from machine import cpu_name
    return cpu_name()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads during the measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement (adaptive_autorange)")
    args = ap.parse_args(argv)

    specs = {name: load_preset(name) for name in PRESETS}
    static = {name: analyze(spec) for name, spec in specs.items()}
    medians: dict = {(name, b): [] for name in PRESETS for b in args.batch}
    iqrs: dict = {(name, b): [] for name in PRESETS for b in args.batch}
    for b in args.batch:
        for r in range(args.rounds):
            for name in (PRESETS if r % 2 == 0 else PRESETS[::-1]):
                lat = analyze(specs[name], latency={"device": "cpu", "batch": b, "threads": args.threads,
                                                    "min_run_time": args.min_run_time}).latency
                medians[(name, b)].append(lat["median_ms"])
                iqrs[(name, b)].append(lat["iqr_ms"])

    print(f"torch {torch.__version__}, {_cpu_name()}, {args.threads} thread(s), fp32, 32x32 input, "
          f"{args.rounds} alternating rounds of {args.min_run_time:g} s per model and batch\n")
    print("| preset | embedding | stage-1 map | params | MACs / image | batch | median ms / forward | IQR ms "
          "| img/s | rounds (ms) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    latency = {}
    for b in args.batch:
        for name in PRESETS:
            r = static[name]
            k, st, pad = re.search(r"Conv2d\(3, \d+, kernel_size=\((\d+), \d+\), stride=\((\d+), \d+\), "
                                   r"padding=\((\d+)", r.tree).groups()  # the embedding conv as built
            stage1 = next(p["shape"] for p in r.points if p["name"] == "stage1")
            med = statistics.median(medians[(name, b)])
            latency[(name, b)] = med
            print(f"| {name} | Conv k{k} s{st} p{pad} | {stage1[2]}x{stage1[3]} "
                  f"| {r.params['total']:,} | {r.macs['total'] / 1e6:.1f} M | {b} | {med:.3f} "
                  f"| {statistics.median(iqrs[(name, b)]):.3f} | {b * 1e3 / med:,.0f} "
                  f"| {', '.join(f'{t:.3f}' for t in medians[(name, b)])} |")
    s2, s4 = (static[n] for n in PRESETS)
    print(f"\nMACs ratio stride 2 / stride 4: {s2.macs['total'] / s4.macs['total']:.2f}x")
    for b in args.batch:
        ratio = latency[(PRESETS[0], b)] / latency[(PRESETS[1], b)]
        print(f"latency ratio stride 2 / stride 4, batch {b}: {ratio:.2f}x")


if __name__ == "__main__":
    main()


