"""Command line: `python -m playground report|points|presets|export`. Thin: parsing and printing only.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import SpecError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too)
        raise SpecError(f"{self.prog}: {message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m playground", description="Stitch modules into timm backbones and see the numbers.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("report", help="build a spec and print its report")
    r.add_argument("spec", help="a preset name, or a .yaml / .json spec file")
    r.add_argument("--json", action="store_true", help="print the Report as JSON (the contract in DESIGN.md)")
    r.add_argument("--latency", action="store_true", help="measure latency (torch.utils.benchmark)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    r.add_argument("--batch", type=int, default=1)
    r.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32")
    r.add_argument("--channels-last", action="store_true")
    r.add_argument("--compile", action="store_true", help="torch.compile before timing")
    r.add_argument("--image", nargs="+", default=None, metavar="PATH", help="images to predict")
    r.add_argument("--topk", type=int, default=5)
    r.add_argument("--depth", type=int, default=3, help="depth of the layer table")
    r.add_argument("--tree", action="store_true", help="also print the module tree")
    r.add_argument("--summary", action="store_true", help="also print the torchinfo layer table")

    pt = sub.add_parser("points", help="list a backbone's insertion points with their shapes")
    pt.add_argument("backbone", nargs="?", help="a timm model name")
    pt.add_argument("--img-size", type=int, default=None)
    pt.add_argument("--list", action="store_true", help="list backbone names instead (curated first)")
    pt.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="write the spec or its model to a file")
    ex.add_argument("spec", help="a preset name, or a .yaml / .json spec file")
    ex.add_argument("--format", required=True, choices=("yaml", "python", "torchscript", "onnx", "safetensors"))
    ex.add_argument("-o", "--output", required=True, help="file to write (the suffix follows the format)")

    ps = sub.add_parser("presets", help="list the presets")
    ps.add_argument("--json", action="store_true")
    return p


def _m(n: float) -> str:
    return f"{n / 1e6:,.2f} M"


def _g(n: float) -> str:
    return f"{n / 1e9:,.3f} G"


def _signed(n: float, fmt) -> str:
    return ("+" if n >= 0 else "-") + fmt(abs(n))


def format_report(r, tree: bool = False, summary: bool = False) -> str:
    """The Report as text for a terminal."""
    p, m = r.params, r.macs
    title = r.spec.get("title") or r.backbone
    lines = [f"{title} — {r.backbone} @ {r.img_size}x{r.img_size}",
             f"params  {_m(p['total']):>12}  (base {_m(p['base_total'])}, {_signed(p['delta'], _m)}; "
             f"trainable {_m(p['trainable'])})",
             f"MACs    {_g(m['total']):>12}  (base {_g(m['base_total'])}, {_signed(m['delta'], _g)})"
             f"   GMACs = the 'FLOPs' of papers"]
    if m["uncounted_ops"]:
        lines.append(f"        not counted: {', '.join(m['uncounted_ops'])}")
    lines += ["", f"{'part':<10}{'params':>14}{'MACs':>14}"]
    lines += [f"{k:<10}{_m(p['by_stage'][k]):>14}{_g(m['by_stage'][k]):>14}" for k in p["by_stage"]]
    if p["by_insert"]:
        lines += ["", f"{'#':<3}{'at':<18}{'module':<30}{'path':<28}{'params':>10}{'MACs':>12}"]
        for a, b in zip(p["by_insert"], m["by_insert"]):
            lines.append(f"{a['index']:<3}{a['point']:<18.18}{a['module']:<30.30}{a['path']:<28.28}"
                         f"{a['params']:>10,}{b['macs'] / 1e6:>10.2f} M")
    lines += ["", f"{'point':<18}{'layout':<8}{'shape':<22}{'reduction':>9}"]
    lines += [f"{s['point']:<18}{s['layout']:<8}{str(s['shape']):<22}{s['reduction'] or '':>9}" for s in r.shapes]
    if r.latency:
        lt = r.latency
        tf = f", {lt['tflops']:.3f} TFLOP/s" if lt.get("tflops") else ""
        lines += ["", f"latency {lt['median_ms']:.2f} ms median (IQR {lt['iqr_ms']:.2f} ms) on {lt['device']}, "
                      f"batch {lt['batch']}, {lt['dtype']}{', channels_last' if lt['channels_last'] else ''}"
                      f"{', compiled' if lt['compiled'] else ''}, {lt['threads']} threads; "
                      f"{lt['throughput']:.1f} img/s{tf}"]
    if r.weights:
        w = r.weights
        lines += ["", f"weights {w['source']}: {len(w['missing'])} missing, {len(w['unexpected'])} unexpected, "
                      f"{len(w['reinitialised'])} re-initialised"]
    for pred in r.predictions or []:
        top = ", ".join(f"{t['label']} {t['prob']:.2f}" for t in pred["top"][:3])
        lines += ["", f"{pred['image']}: {top}"]
        if pred.get("base_top"):
            lines.append("  base: " + ", ".join(f"{t['label']} {t['prob']:.2f}" for t in pred["base_top"][:3]))
        if pred.get("agreement"):
            a = pred["agreement"]
            lines.append(f"  top-1 agrees: {a['top1_agree']}, KL(base||stitched) {a['kl_divergence']:.4f}")
    lines += [f"warning: {w}" for w in r.warnings]
    if tree:
        lines += ["", r.tree]
    if summary:
        lines += ["", r.summary]
    return "\n".join(lines)


def _report(args) -> int:
    from .analyze import analyze
    from .presets import resolve
    if args.image:  # fail fast on a bad image, before building anything
        from .images import load_image
        images = [load_image(path) for path in args.image]
        names = list(args.image)
    else:
        images, names = None, None
    latency = None
    if args.latency:
        latency = {"device": args.device, "batch": args.batch, "dtype": args.dtype,
                   "channels_last": args.channels_last, "compile": args.compile}
    report = analyze(resolve(args.spec), latency=latency, images=images, topk=args.topk,
                     summary_depth=args.depth)
    if report.predictions and names:
        for pred, name in zip(report.predictions, names):
            pred["image"] = name
    print(report.to_json(indent=1) if args.json else format_report(report, args.tree, args.summary))
    return 0


def _points(args) -> int:
    from . import backbones
    if args.list:
        curated = backbones.curated_backbones()
        print("\n".join(curated + [n for n in backbones.all_backbones() if n not in curated]))
        return 0
    if not args.backbone:
        raise SpecError("points: give a backbone name (or --list to see them)")
    from .build import points
    pts = points(args.backbone, args.img_size)
    if args.json:
        print(json.dumps([p.to_dict() for p in pts], indent=1))
        return 0
    print(f"{'point':<20}{'path':<28}{'layout':<8}{'channels':>9}  shape")
    for p in pts:
        print(f"{p.name:<20}{p.path:<28.28}{p.layout:<8}{p.channels:>9}  {p.shape}")
    return 0


def _export(args) -> int:
    from .export import export
    from .presets import resolve
    print(export(resolve(args.spec), args.format, args.output))
    return 0


def _presets(args) -> int:
    from .presets import list_presets
    presets = list_presets()
    if args.json:
        print(json.dumps({n: s.to_dict() for n, s in presets.items()}, indent=1))
        return 0
    for name, spec in presets.items():
        print(f"{name:<28}{spec.title or spec.backbone}\n{'':<28}{spec.description or ''}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return {"report": _report, "points": _points, "presets": _presets, "export": _export}[args.command](args)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
