"""Command line: `playground report|compare|sweep|points|presets|export` (or `python -m playground ...`). Thin: parsing
and printing only; the numbers come from `analyze` / `compare`, their wording from `units`.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import units
from .choices import DEVICES, DTYPES, EXPORT_FORMATS, OPTIMIZERS
from .errors import SpecError

if TYPE_CHECKING:
    from .compare import Comparison
    from .report import MemoryEstimate, Report
    from .sweep.results import SweepResult

__all__ = ["main", "format_report", "format_comparison", "format_sweep"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too)
        raise SpecError(f"{self.prog}: {message} (see --help)")


def _latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency", action="store_true", help="measure latency (torch.utils.benchmark)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dtype", choices=DTYPES, default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile before timing")
    p.add_argument("--image", nargs="+", default=None, metavar="PATH", help="images to predict")
    p.add_argument("--topk", type=int, default=5)


def _budget_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits", "refuse a spec over a limit before building it (default: no limit)")
    g.add_argument("--max-params-m", type=float, default=None, help="parameters, in millions")
    g.add_argument("--max-gmacs", type=float, default=None, help="GMACs per forward pass (per image x batch)")
    g.add_argument("--max-img-size", type=int, default=None, help="input size in pixels")
    g.add_argument("--app-limits", action="store_true",
                   help="the web app's limits (PLAYGROUND_MAX_* environment variables, else their defaults)")


def _check_budgets(args, specs: Sequence) -> None:
    from .budgets import Budgets
    budgets = Budgets.from_env() if args.app_limits else Budgets(
        max_params_m=args.max_params_m, max_gmacs=args.max_gmacs, max_img_size=args.max_img_size)
    for spec in specs:
        budgets.check(spec, args.batch if args.latency else 1)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="playground", description="Stitch modules into timm backbones and see the numbers.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("report", help="build a spec and print its report")
    r.add_argument("spec", help="a preset name, or a .yaml / .json spec file")
    r.add_argument("--json", action="store_true", help="print the Report as JSON (docs/report.md)")
    _latency_args(r)
    r.add_argument("--base", action="store_true", help="with --latency: also time the unmodified backbone")
    m = r.add_argument_group("memory", "estimate the memory of tensors for inference and one training step")
    m.add_argument("--memory", action="store_true", help="estimate memory (fake tensors, no compute)")
    m.add_argument("--memory-batch", type=int, default=8, metavar="N", help="batch of the estimate (default 8)")
    m.add_argument("--memory-dtype", choices=DTYPES, default="fp32", help="autocast dtype of the estimate")
    m.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="optimizer state of the training step")
    r.add_argument("--depth", type=int, default=3, help="depth of the layer table")
    r.add_argument("--tree", action="store_true", help="also print the module tree")
    r.add_argument("--summary", action="store_true", help="also print the torchinfo layer table")
    _budget_args(r)

    c = sub.add_parser("compare", help="two to four specs side by side (against the first)")
    c.add_argument("specs", nargs="+", metavar="SPEC", help="preset names or .yaml / .json spec files")
    c.add_argument("--json", action="store_true", help="print the Comparison as JSON")
    _latency_args(c)
    _budget_args(c)

    pt = sub.add_parser("points", help="list a backbone's insertion points with their shapes")
    pt.add_argument("backbone", nargs="?", help="a timm model name")
    pt.add_argument("--img-size", type=int, default=None)
    pt.add_argument("--list", action="store_true", help="list backbone names instead (curated first)")
    pt.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="write the spec or its model to a file")
    ex.add_argument("spec", help="a preset name, or a .yaml / .json spec file")
    ex.add_argument("--format", required=True, choices=tuple(EXPORT_FORMATS))
    ex.add_argument("-o", "--output", required=True, help="file to write (the suffix follows the format)")

    ps = sub.add_parser("presets", help="list the presets")
    ps.add_argument("--json", action="store_true")

    sw = sub.add_parser("sweep", help="every combination of a sweep's axes: a table of results and its Pareto front")
    sw.add_argument("sweep", nargs="?", help="a sweep preset's name (see --list), or a .yaml / .json sweep file")
    sw.add_argument("--list", action="store_true", help="list the sweep presets instead")
    sw.add_argument("--count", action="store_true", help="print the number of variants and stop")
    sw.add_argument("--workers", type=int, default=None, help="worker processes (default: run in this process)")
    sw.add_argument("--ray", metavar="ADDRESS", default=None,
                    help="run as Ray tasks: a cluster's address, auto (the running cluster) or local")
    sw.add_argument("--out", metavar="DIR", default=None, help="write results.csv and results.json into DIR")
    sw.add_argument("--where", default=None, help='constraints on the rows, e.g. "gmacs <= 4.5, params_m <= 30"')
    sw.add_argument("--objectives", default=None, metavar="A,B",
                    help="the Pareto front's columns (default: the sweep's, else gmacs,params_m)")
    sw.add_argument("--limit", type=int, default=None, help="the most variants to run (default: the sweep's limit)")
    sw.add_argument("--latency", action="store_true", help="also time every variant, one at a time")
    sw.add_argument("--device", choices=DEVICES, default="auto")
    sw.add_argument("--batch", type=int, default=1)
    sw.add_argument("--dtype", choices=DTYPES, default="fp32")
    sw.add_argument("--cache", metavar="DIR", default=None, help="the results cache (default: ~/.cache/playground/"
                                                                  "sweeps, or $PLAYGROUND_SWEEP_CACHE)")
    sw.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    sw.add_argument("--fresh", action="store_true", help="compute every variant again (and update the cache)")
    sw.add_argument("--json", action="store_true", help="print the SweepResult as JSON")

    sub.add_parser("schema", help="print the JSON Schema of `report --json` (docs/report.schema.json)")
    return p


def _latency_line(lt) -> str:
    tf = f", {lt.tflops:.3f} TFLOP/s (2 x MACs)" if lt.tflops else ""
    return (f"{lt.median_ms:.2f} ms median (95% CI {units.ms_interval(lt.median_ci_ms)}, IQR {lt.iqr_ms:.2f} ms, "
            f"{len(lt.times_ms)} blocks) on {lt.device}, batch {lt.batch}, {lt.dtype}"
            f"{', channels_last' if lt.channels_last else ''}{', compiled' if lt.compiled else ''}, "
            f"{lt.threads} threads; {lt.throughput:.1f} img/s{tf}")


def _memory_lines(mem: MemoryEstimate) -> list[str]:
    mib = units.mib
    return [f"memory  batch {mem.batch}, {mem.dtype} (tensors, estimated)",
            f"  inference  {mib(mem.inference_bytes):>12}  = params {mib(mem.params_bytes)} + buffers "
            f"{mib(mem.buffers_bytes)} + peak of live activations {mib(mem.activations_peak_bytes)}",
            f"  training   {mib(mem.training_bytes):>12}  = params + buffers + grads {mib(mem.grads_bytes)} + "
            f"{mem.optimizer} state {mib(mem.optimizer_bytes)} + saved for backward {mib(mem.saved_bytes)}"]


def format_report(r: Report, tree: bool = False, summary: bool = False) -> str:
    """The Report as text for a terminal."""
    p, m = r.params, r.macs
    lines = [f"{r.title} — {r.backbone} @ {r.img_size}x{r.img_size}",
             f"params  {units.millions(p.total):>12}  (base {units.millions(p.base_total)}, "
             f"{units.signed(p.delta, units.millions)}; trainable {units.millions(p.trainable)})",
             f"MACs    {units.giga(m.total):>12}  (base {units.giga(m.base_total)}, "
             f"{units.signed(m.delta, units.giga)})   {units.MACS_NOTE}"]
    if r.stem:
        lines.append(f"stem    {r.stem.description}")
    a = r.activations
    lines.append(f"acts    {units.millions(a.total):>12}  (base {units.millions(a.base_total)}, "
                 f"{units.signed(a.delta, units.millions)})   activations (M), fvcore's count as in timm's tables")
    if m.uncounted_ops:
        lines.append(f"        not counted: {', '.join(m.uncounted_ops)}")
    if r.memory:
        lines += ["", *_memory_lines(r.memory)]
    lines += ["", f"{'part':<10}{'params':>14}{'MACs':>14}{'acts':>14}"]
    lines += [f"{k:<10}{units.millions(p.by_stage[k]):>14}{units.giga(m.by_stage.get(k, 0)):>14}"
              f"{units.millions(a.by_stage.get(k, 0)):>14}" for k in p.by_stage]
    if p.by_insert:
        lines += ["", f"{'#':<3}{'at':<18}{'module':<30}{'path':<28}{'params':>10}{'MACs':>12}{'acts':>12}"]
        for x, y, z in zip(p.by_insert, m.by_insert, a.by_insert):
            lines.append(f"{x.index:<3}{x.point:<18.18}{x.module:<30.30}{x.path:<28.28}"
                         f"{x.count:>10,}{units.millions(y.count):>12}{z.count:>12,}")
    lines += ["", f"{'point':<18}{'layout':<8}{'shape':<22}{'reduction':>9}"]
    lines += [f"{s.point:<18}{s.layout:<8}{str(s.shape):<22}{s.reduction or '':>9}" for s in r.shapes]
    if r.latency:
        lines += ["", f"latency {_latency_line(r.latency)}"]
    if r.base_latency:
        lines += [f"base    {_latency_line(r.base_latency)}"]
    if r.weights:
        w = r.weights
        lines += ["", f"weights {w.source}: {len(w.missing)} missing, {len(w.unexpected)} unexpected, "
                      f"{len(w.reinitialised)} re-initialised"]
    for pred in r.predictions or []:
        lines += ["", f"{pred.image}: " + ", ".join(f"{t.label} {t.prob:.2f}" for t in pred.top[:3])]
        if pred.base_top:
            lines.append("  base: " + ", ".join(f"{t.label} {t.prob:.2f}" for t in pred.base_top[:3]))
        if pred.agreement:
            a = pred.agreement
            lines.append(f"  top-1 agrees: {a.top1_agree}, KL(base||stitched) {a.kl_divergence:.4f}")
    lines += [f"warning: {w}" for w in r.warnings]
    if tree:
        lines += ["", r.tree]
    if summary:
        lines += ["", r.summary]
    return "\n".join(lines)


def format_comparison(c: Comparison) -> str:
    """The Comparison as a text table: one column per spec, differences against A."""
    w = max(18, *(len(str(v)) + 2 for row in c.shapes for v in row.shapes))

    def row(label: str, cells) -> str:
        return f"{label:<20}" + "".join(f"{cell:>{w}}" for cell in cells)

    a = c.sides[0]
    vs_a = lambda v, ref, fmt: [""] + [units.signed(x - ref, fmt) for x in v[1:]]  # noqa: E731
    lines = [row("", [s.name for s in c.sides]), row("spec", [s.title[:w - 2] for s in c.sides]),
             row("backbone", [s.backbone[:w - 2] for s in c.sides]),
             row("image size", [s.img_size for s in c.sides]),
             row("params", [units.millions(s.params) for s in c.sides]),
             row("  vs A", vs_a([s.params for s in c.sides], a.params, units.params)),
             row("MACs", [units.giga(s.macs) for s in c.sides]),
             row("  vs A", vs_a([s.macs for s in c.sides], a.macs, units.macs)),
             row("activations (M)", [units.millions(s.activations or 0) for s in c.sides]),
             row("stitched modules", [s.stitched for s in c.sides]),
             row("pretrained", ["yes" if s.pretrained else "no" for s in c.sides])]
    if any(s.latency for s in c.sides):
        lines.append(row("latency (median)", [units.ms(s.latency.median_ms) if s.latency else "-" for s in c.sides]))
        lines.append(row("  95% CI", [units.ms_interval(s.latency.median_ci_ms) if s.latency else "-"
                                      for s in c.sides]))
        deltas = {d.side: d for d in c.latency}
        lines.append(row("  vs A", [f"{deltas[s.name].delta_ms:+.2f} ms" + ("" if deltas[s.name].clear else " ~")
                                    if s.name in deltas else "" for s in c.sides]))
        lines.append("  (~: within noise, the 95% intervals of the two medians overlap)")
    lines += ["", row("params per part", [s.name for s in c.sides])]
    lines += [row(r.part, [units.millions(v) if v is not None else "-" for v in r.params]) for r in c.stages]
    lines += ["", row("MACs per part", [s.name for s in c.sides])]
    lines += [row(r.part, [units.giga(v) if v is not None else "-" for v in r.macs]) for r in c.stages]
    lines += ["", row("shape at", [s.name for s in c.sides])]
    lines += [row(r.point, [str(v) if v else "-" for v in r.shapes]) + ("" if r.same else "  differs")
              for r in c.shapes]
    for p in c.predictions:
        lines.append(f"{p.image}: " + " | ".join(f"{s.name} {label}" for s, label in zip(c.sides, p.top1)))
    lines += [f"note: {x}" for x in c.caveats]
    return "\n".join(lines)


def format_sweep(r: SweepResult) -> str:
    """A SweepResult as a text table (kept rows; `*` marks the Pareto front, `-` a row the constraints drop), the
    front, and what the run did."""
    timed = r.latency is not None
    front, kept = set(r.front), set(r.kept)
    w = max([5] + [len(row.label) for row in r.rows][:1000])
    w = min(w, 60)
    head = f"{'':2}{'#':>4}  {'variant':<{w}}{'params':>12}{'GMACs':>10}" + (f"{'latency':>12}" if timed else "")
    lines = [head + "  final map"]
    for row in r.rows:
        mark = "*" if row.index in front else ("-" if row.ok and row.index not in kept else " ")
        label = row.label if len(row.label) <= w else row.label[:w - 1] + "…"
        if not row.ok and row.metrics.get("params") is None:
            lines.append(f"{mark:2}{row.index:>4}  {label:<{w}}  {row.error}")
            continue
        m = row.metrics
        lat = units.ms(m["latency_ms"]) if m.get("latency_ms") is not None else "-"
        shape = "x".join(map(str, row.final_shape[1:])) if row.final_shape else ""
        line = (f"{mark:2}{row.index:>4}  {label:<{w}}{units.millions(m['params']):>12}"
                f"{units.giga(m['macs'], ''):>10}" + (f"{lat:>12}" if timed else "") + f"  {shape}")
        lines.append(line + (f"  {row.error}" if row.error else "") + (f"  ({len(row.warnings)} warnings)"
                                                                      if row.warnings else ""))
    s = r.stats
    lines += ["", f"Pareto front over {', '.join(r.objectives)}"
                  + (f" where {r.where}" if r.where else "") + " (*): "
                  + (", ".join(f"#{i}" for i in r.front) or "none"),
              f"{s.variants} variants: {s.computed} computed, {s.cached} from the cache, {s.invalid} invalid or "
              f"failed; {len(r.kept)} meet the constraints; {s.seconds:.1f} s ({s.runner})"]
    return "\n".join(lines)


def _images(args) -> tuple[list | None, list[str] | None]:
    """The --image files, read before anything is built (a bad photo fails fast)."""
    if not args.image:
        return None, None
    from .images import load_image
    return [load_image(path) for path in args.image], list(args.image)


def _latency_opts(args, base: bool = False) -> dict | None:
    if not args.latency:
        return None
    return {"device": args.device, "batch": args.batch, "dtype": args.dtype, "channels_last": args.channels_last,
            "compile": args.compile, **({"base": True} if base else {})}


def _report(args) -> int:
    from .analyze import analyze
    from .presets import resolve
    images, names = _images(args)
    spec = resolve(args.spec)
    _check_budgets(args, [spec])
    memory = {"batch": args.memory_batch, "dtype": args.memory_dtype, "optimizer": args.optimizer} \
        if args.memory else None
    report = analyze(spec, latency=_latency_opts(args, args.base), memory=memory, images=images, topk=args.topk,
                     summary_depth=args.depth, image_names=names)
    print(report.to_json(indent=1) if args.json else format_report(report, args.tree, args.summary))
    return 0


def _compare(args) -> int:
    from .compare import compare, named_specs
    from .presets import resolve
    specs = named_specs(args.specs, resolve)
    _check_budgets(args, specs)
    images, names = _images(args)
    c = compare(*specs, latency=_latency_opts(args), images=images, topk=args.topk, image_names=names)
    print(c.to_json(indent=1) if args.json else format_comparison(c))
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
    """Print the path written; for ONNX the check's line too (exit status 1, on stderr, when parity fails)."""
    import warnings

    from .export import export
    from .presets import resolve
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a failed check is printed below, once
        result = export(resolve(args.spec), args.format, args.output)
    print(result.path)
    if result.check is None:
        return 0
    print(result.check.line(), file=sys.stdout if result.check.ok else sys.stderr)
    return 0 if result.check.ok else 1


def _presets(args) -> int:
    from .presets import list_presets
    presets = list_presets()
    if args.json:
        print(json.dumps({n: s.to_dict() for n, s in presets.items()}, indent=1))
        return 0
    for name, spec in presets.items():
        print(f"{name:<28}{spec.title or spec.backbone}\n{'':<28}{spec.description or ''}")
    return 0


def _sweep(args) -> int:
    from .sweep.presets import list_sweep_presets, resolve_sweep
    if args.list:
        for name, sw in list_sweep_presets().items():
            print(f"{name}  ({sw.count} variants) {sw.title or ''}\n    {sw.description or ''}")
        return 0
    if not args.sweep:
        raise SpecError("sweep: give a sweep file or a sweep preset's name (--list shows them)")
    spec = resolve_sweep(args.sweep)
    print(f"sweep: {spec.describe()}", file=sys.stderr)
    spec.check_count(args.limit)
    if args.count:
        print(spec.count)
        return 0
    from .sweep import sweep
    latency = ({"device": args.device, "batch": args.batch, "dtype": args.dtype} if args.latency else None)
    objectives = [o for o in args.objectives.split(",") if o.strip()] if args.objectives else None
    cache = False if args.no_cache else (args.cache or True)
    with _progress_bar() as progress:
        result = sweep(spec, workers=args.workers, ray=args.ray, latency=latency, where=args.where,
                       objectives=objectives, limit=args.limit, cache=cache, fresh=args.fresh, progress=progress)
    if args.out:
        from pathlib import Path
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.csv").write_text(result.to_csv(), encoding="utf-8")
        (out / "results.json").write_text(result.to_json(indent=1), encoding="utf-8")
        print(f"wrote {out / 'results.csv'} and {out / 'results.json'}", file=sys.stderr)
    print(result.to_json(indent=1) if args.json else format_sweep(result))
    return 0


class _progress_bar:
    """tqdm on stderr (timm's dependency huggingface_hub requires it), shown only on a terminal."""

    def __enter__(self):
        from tqdm import tqdm
        self.bar = None

        def step(done: int, total: int, label: str) -> None:
            if self.bar is None:
                self.bar = tqdm(total=total, unit="variant", file=sys.stderr, disable=None, leave=False)
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(label[:40], refresh=True)
        return step

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def _schema(args) -> int:
    from .report import report_schema
    print(json.dumps(report_schema(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        commands = {"report": _report, "compare": _compare, "points": _points, "presets": _presets,
                    "export": _export, "schema": _schema, "sweep": _sweep}
        return commands[args.command](args)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
