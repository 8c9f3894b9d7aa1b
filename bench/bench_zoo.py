"""The whole timm zoo, one model per family (issue 10). Run: .venv/bin/python bench/bench_zoo.py [--workers 2]

For each family of timm's published table (its smallest model, at the table's image size) `playground.zoo.check`
analyses it, compares params, MACs and activations with the table (and plain fvcore's MACs in the same run),
stitches SE and serial[se, eca] gated, loads the base checkpoint into the stitched model, and doubles the embedding
stride. Each model runs in its own process (a crash or a hang costs one row, not the run). Writes bench/out/zoo.jsonl
and prints the Markdown summary recorded in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(model: str) -> dict:
    import torch

    from playground import zoo
    torch.set_num_threads(1)
    res = zoo.check(zoo.reference_table()[model])
    out = dataclasses.asdict(res)
    out.update(params_ok=res.params_ok, macs_ok=res.macs_ok, activations_ok=res.activations_ok,
               fvcore_macs_ok=res.fvcore_macs_ok,
               stride_raw=res.stride_raw)
    return out


def run(model: str, family: str, timeout: float) -> dict:
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, __file__, "--one", model], capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT)
        row = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else \
            {"model": model, "error": f"process exit {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1]}"}
    except subprocess.TimeoutExpired:
        row = {"model": model, "error": f"timed out after {timeout:.0f} s"}
    row.update(family=family, seconds=round(time.perf_counter() - t, 1))
    return row


def refusal_reason(msg: str) -> str:
    """A short class for a refusal message: the module that cannot take the grid and why, else its first clause."""
    m = re.search(r"which (\S+)(?: \([^)]*\))? cannot take: ([^;(]+)", msg)
    return f"{m.group(1)}: {m.group(2).strip()}" if m else msg.split(";")[0][:110]


def summary(rows: list[dict]) -> str:
    n = len(rows)
    ok = lambda k: sum(bool(r.get(k)) for r in rows)  # noqa: E731
    refused = [r for r in rows if r.get("stride_refusal")]
    raw = [r for r in refused if r.get("stride_raw")]
    lines = [f"| what | families (of {n}) |", "|---|---|",
             f"| analysed (points, params, MACs, shapes) | {ok('analysed')} |",
             f"| params within 0.5% of timm's table | {ok('params_ok')} |",
             f"| MACs within 1% of timm's table (ours) | {ok('macs_ok')} |",
             f"| MACs within 1% of timm's table (plain fvcore, same run) | {ok('fvcore_macs_ok')} |",
             f"| activations within 1% of timm's table | {ok('activations_ok')} |",
             f"| SE at stage2 + serial[se, eca] at final, gated | {ok('stitched')} |",
             f"| ... gated logits bit-identical to the base | {ok('gated_identical')} |",
             f"| ... base state dict loads, only stitched params missing | {ok('checkpoint_loads')} |",
             f"| embedding stride doubled, builds and runs | {ok('stride_ok')} |",
             f"| ... refused in domain words | {len(refused) - len(raw)} |",
             f"| ... of which the refusal names an image size where it works | {ok('stride_fits_at')} |",
             f"| ... refused with another library's text (raw) | {len(raw)} |"]
    reasons = Counter(refusal_reason(r["stride_refusal"]) for r in refused)
    lines += ["", "Stride refusals by reason:", ""] + [f"- {c} x {reason}" for reason, c in reasons.most_common()]
    fits = [f"`{r['model']}` ({r['stride_fits_at']} px)" for r in refused if r.get("stride_fits_at")]
    lines += ["", f"Refusals that name an image size where the doubled stride works: {', '.join(fits) or 'none'}"]
    fails = [r for r in rows if r.get("error") or r.get("stitch_error") or (r.get("analysed") and not
             (r.get("params_ok") and r.get("macs_ok") and r.get("activations_ok")))]
    lines += ["", "Not analysed, not stitched or off the table:", ""]
    for r in fails:
        ref = r.get("reference") or {}
        what = r.get("error") or r.get("stitch_error") or \
            f"params {r.get('params', 0) / 1e6:.2f} M vs {ref.get('params_m')}, " \
            f"MACs {r.get('macs', 0) / 1e9:.3f} G vs {ref.get('gmacs')}, " \
            f"activations {(r.get('activations') or 0) / 1e6:.2f} M vs {ref.get('macts_m')} " \
            f"(uncounted: {r.get('uncounted_ops')})"
        lines.append(f"- `{r['model']}`: {what}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--only", nargs="*", help="model names (default: one per family)")
    ap.add_argument("--merge", action="store_true", help="replace only these models' rows in zoo.jsonl, keep the rest")
    ap.add_argument("--failed", action="store_true", help="run again the models whose row in zoo.jsonl has an error")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    from playground import zoo
    fams = zoo.families(zoo.reference_table())
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, dict] = {}
    if args.merge or args.failed:
        kept = {r["model"]: r for r in map(json.loads, (out / "zoo.jsonl").read_text().splitlines())}
    only = set(args.only or []) | {m for m, r in kept.items() if args.failed and (r.get("error") or
                                                                                  r.get("stitch_error"))}
    if (args.merge or args.failed) and not only:
        sys.exit("nothing to run again")
    todo = [(r.model, f) for f, r in fams.items() if not only or r.model in only]
    rows = []
    t = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        for i, row in enumerate(pool.map(lambda m: run(*m, args.timeout), todo), 1):
            rows.append(row)
            kept[row["model"]] = row
            (out / "zoo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept.values()))
            print(f"[{i}/{len(todo)}] {row['model']}: analysed={row.get('analysed')} "
                  f"stitched={row.get('stitched')} stride={row.get('stride_ok')} {row['seconds']} s", file=sys.stderr)
    print(f"{len(rows)} families, {time.perf_counter() - t:.0f} s, {args.workers} workers, "
          f"{platform.processor() or platform.machine()}\n")
    print(summary(list(kept.values()) if (args.merge or args.failed) else rows))


if __name__ == "__main__":
    main()
