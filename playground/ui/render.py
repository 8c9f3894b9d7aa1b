"""HTML of the page, drawn from a typed Report (or Comparison): summary cards, status line, tree, diff, tables.

Plain functions of typed data returning HTML text; no Gradio. Everything a user or a model wrote (titles,
module names, messages) is escaped. Charts are in `playground.plots`.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from .. import plots, units
from ..catalog import catalog
from ..compare import Comparison
from ..report import Latency, MemoryEstimate, Report
from ..spec import Spec
from ..stats import difference
from ..sweep.results import SweepResult

__all__ = ["status_html", "stale_html", "summary_html", "warnings_html", "tree_html", "tree_paths", "diff_html",
           "pre_html", "latency_html", "predictions_md", "table_html", "shapes_html", "inserts_html",
           "catalog_html", "compare_html", "sweep_count_html", "sweep_table_html", "sweep_summary_html",
           "MAX_TEXT_CHARS"]

MAX_TEXT_CHARS = 300_000  # tree / layer table / diff shown in the page; the JSON keeps everything
esc = html.escape


# ---- the spec's state

def status_html(spec: Spec | None = None, error: str | None = None, built: bool = False,
                note: str | None = None) -> str:
    """The line under the YAML editor: why the spec does not parse, or that it parsed (and whether the report
    shows it, i.e. it was built), with a note (e.g. pretrained weights not available) when there is one."""
    if error:
        return f'<div class="pg-status bad" id="status-line">✗ {esc(error)}</div>'
    n = len(spec.insert)
    what = f"{n} insertion{'s' if n != 1 else ''}" if n else "no insertions"
    state = ("built · the report shows this spec" if built else
             "parsed, not built yet · <b>Analyze</b> (Ctrl+Enter) builds it")
    extra = f'<div class="pg-status note">⚠ {esc(note)}</div>' if note else ""
    return (f'<div class="pg-status ok" id="status-line">✓ {esc(spec.backbone)} · {what} · {state}</div>'
            f'{extra}')


def stale_html(error: str | None) -> str:
    """The banner over the report: empty while the report is current; after a failed Analyze it says the report
    below is of the previous spec (the page dims it)."""
    if not error:
        return ""
    return (f'<div class="pg-stale-banner" role="alert"><b>✗ Analyze failed:</b> {esc(error)}'
            f'<div>The report below is stale: it shows the previous spec.</div></div>')


# ---- summary cards

def _delta(delta: float, base: float, fmt: Callable[[float], str], unit: str = "", noise: bool = False) -> str:
    """`+2.53 M (+9.9%) vs base 25.56 M`, coloured by sign (grey when within the measurement's noise)."""
    if not delta:
        return f'<div class="pg-delta same">= base ({fmt(base)}{unit})</div>'
    pct = units.percent(delta, base)
    pct = f" ({pct})" if pct else ""
    cls = "same" if noise else ("up" if delta > 0 else "down")
    sign = "+" if delta > 0 else "−"
    tail = " · within noise" if noise else ""
    return f'<div class="pg-delta {cls}">{sign}{fmt(abs(delta))}{unit}{pct} vs base {fmt(base)}{unit}{tail}</div>'


def _card(label: str, value: str, exact: str, delta: str, title: str = "") -> str:
    t = f' title="{esc(title)}"' if title else ""
    return (f'<div class="pg-card"{t}><div class="pg-label">{label}</div><div class="pg-value">{value}</div>'
            f'<div class="pg-exact">{exact}</div>{delta}</div>')


def _interval(x: Latency) -> str:
    lo, hi = x.median_ci_ms
    return f"95% CI of median {lo:.2f}–{hi:.2f} ms"


def latency_card(latency: Latency | None, base: Latency | None, modified: bool) -> str:
    if not latency:
        return _card("Latency", "—", "not measured", '<div class="pg-delta same">Latency tab → Measure</div>')
    exact = (f"IQR {latency.iqr_ms:.2f} ms · {_interval(latency)} · {esc(latency.device)} · batch "
             f"{latency.batch} · {latency.dtype}")
    if base:
        delta = _delta(latency.median_ms - base.median_ms, base.median_ms, lambda v: f"{v:.2f}", " ms",
                       noise=not difference(base, latency).clear)
    else:
        delta = '<div class="pg-delta same">= base (unmodified backbone)</div>' if not modified else ""
    return _card("Latency (median)", units.ms(latency.median_ms), exact, delta)


ACTIVATIONS_NOTE = ("fvcore's ActivationCountAnalysis, as timm's tables: output elements of convolutions and "
                    "matrix products (attention's Q·Kᵀ and attention·V included), one image")


def memory_card(mem: MemoryEstimate) -> str:
    exact = (f"inference {units.mib(mem.inference_bytes)} (peak of live tensors) · batch {mem.batch} · {mem.dtype}")
    return _card("Memory · training step", units.mib(mem.training_bytes), exact,
                 f'<div class="pg-delta same">params + grads + {esc(mem.optimizer)} state + saved activations</div>',
                 title="Tensors only (no allocator cache, no kernel scratch), estimated on fake tensors")


def summary_html(r: Report, seconds: float | None = None) -> str:
    """Title line and the cards: params, GMACs, latency (each with its delta against the base), final map."""
    p, m, a = r.params, r.macs, r.activations
    n_ins = len(r.inserted)
    wtext = f"weights: {esc(r.weights.source)}" if r.weights else "random init (pretrained: false)"
    sub = [esc(r.backbone), f"{r.img_size}×{r.img_size}", f"{n_ins} stitched module{'s' if n_ins != 1 else ''}",
           wtext]
    cards = [
        _card("Parameters", units.millions(p.total), f"{p.total:,} params · {p.trainable:,} trainable",
              _delta(p.delta, p.base_total, units.params)),
        _card("GMACs · the “FLOPs” of papers", units.giga(m.total, ""), f"{m.total:,} multiply-accumulates",
              _delta(m.delta, m.base_total, units.macs), title=units.MACS_NOTE),
        _card("Activations (M) · timm's figure", units.millions(a.total, ""), f"{a.total:,} output elements",
              _delta(a.delta, a.base_total, units.millions), title=ACTIVATIONS_NOTE),
        latency_card(r.latency, r.base_latency, r.modified),
    ]
    if r.memory:
        cards.append(memory_card(r.memory))
    final = r.shape_at("final")
    if final:
        cards.append(_card("Final feature map", f"{final.channels}×{final.height}×{final.width}" if final.height
                           else str(final.channels), f"{final.layout} {final.shape}",
                           f'<div class="pg-delta same">stride {final.reduction:g}</div>' if final.reduction else ""))
    took = f" · analysed in {seconds:.2f} s" if seconds is not None else ""
    return (f'<div class="pg-summary"><div class="pg-title">{esc(r.title)}'
            f'<span class="pg-sub">{" · ".join(sub)}{took}</span></div>'
            f'<div class="pg-cards">{"".join(cards)}</div></div>')


def warnings_html(warns: Sequence[str]) -> str:
    if not warns:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in warns)
    return (f'<div class="pg-warn"><b>⚠ {len(warns)} warning{"s" if len(warns) > 1 else ""}</b>'
            f'<ul>{items}</ul></div>')


# ---- module tree, diff, text

def _clip(text: str) -> tuple[str, str]:
    if len(text) <= MAX_TEXT_CHARS:
        return text, ""
    return text[:MAX_TEXT_CHARS], f"… {len(text) - MAX_TEXT_CHARS:,} more characters (see Report JSON)"


_TREE_LINE = re.compile(r"^(\s*)\(([^)]+)\): ")


def tree_paths(tree: str) -> list[str]:
    """The module path each line of a printed PyTorch module tree belongs to ('' for the root)."""
    stack: list[str] = []
    out = []
    for line in tree.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        m = _TREE_LINE.match(line)
        if m:
            depth = indent // 2
            stack = stack[:depth - 1] + [m.group(2)]
            out.append(".".join(stack))
        elif line.strip() == ")":
            out.append(".".join(stack[:indent // 2]))
        else:
            out.append(".".join(stack[:max(indent // 2 - 1, 0)]))
    return out


def tree_html(tree: str, inserted: Sequence[str]) -> str:
    """The module tree with the stitched modules highlighted (and their `Stitch` chains marked); the first line of
    each stitched module carries `data-path`, the target of "show in tree"."""
    tree, more = _clip(tree)
    prefixes = tuple(p + "." for p in inserted)
    ins = set(inserted)
    lines, anchored = [], set()
    for line, path in zip(tree.splitlines(), tree_paths(tree)):
        cls = "ins" if path in ins or path.startswith(prefixes) else ("wrap" if "): Stitch(" in line else "")
        anchor = ""
        if path in ins and path not in anchored:
            anchored.add(path)
            anchor = f' data-path="{esc(path)}"'
        lines.append(f'<div class="ln {cls}"{anchor}>{esc(line) or " "}</div>')
    legend = (f'<div class="pg-legend"><span class="ins">stitched module</span> <span class="wrap">wrapper '
              f'(Stitch: the modules run after / before the module it names)</span> · {len(inserted)} stitched</div>'
              if inserted else '<div class="pg-legend">nothing stitched: this is the backbone as timm builds it'
                               '</div>')
    tail = f'<div class="pg-more">{more}</div>' if more else ""
    return f'{legend}<div class="pg-code pg-tree">{"".join(lines)}</div>{tail}'


def diff_html(diff: str) -> str:
    """A unified diff (base → stitched tree) with added / removed lines coloured."""
    if not diff:
        return '<div class="pg-legend">the stitched tree equals the base tree</div>'
    diff, more = _clip(diff)
    cls = {"+": "add", "-": "del", "@": "hunk"}
    lines = [f'<div class="ln {cls.get(line[:1], "")}">{esc(line) or " "}</div>' for line in diff.splitlines()]
    tail = f'<div class="pg-more">{more}</div>' if more else ""
    return f'<div class="pg-code pg-tree">{"".join(lines)}</div>{tail}'


def pre_html(text: str) -> str:
    text, more = _clip(text)
    return f'<pre class="pg-code">{esc(text)}</pre>' + (f'<div class="pg-more">{more}</div>' if more else "")


# ---- tables

def table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "", raw: bool = False) -> str:
    """A wrapping, scrollable HTML table; cells are escaped unless `raw` (cells made here, already safe)."""
    cell = (lambda v: str(v)) if raw else (lambda v: esc(str(v)))
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<div class="pg-scroll"><table class="pg-table {cls}"><tr>{head}</tr>{body}</table></div>'


def _dims(shape: Sequence[int] | None) -> str:
    return "—" if shape is None else "×".join(map(str, shape[1:]))


def shapes_html(r: Report) -> str:
    """Feature maps at the stage and insertion points, next to the base backbone's (a ≠ where they differ)."""
    rows = [[esc(s.point), s.layout, _dims(s.shape), _dims(s.base_shape),
             '<span class="pg-changed" title="differs from the base">≠</span>' if s.changed else "",
             s.channels, f"{s.height}×{s.width}" if s.height else "—", f"{s.reduction:g}" if s.reduction else "—"]
            for s in r.shapes]
    return table_html(["point", "layout", "shape", "base", "", "channels", "H×W", "stride"], rows, "pg-shapes",
                      raw=True)


def inserts_html(r: Report) -> str:
    """The stitched modules by spec entry, each with a link to its place in the module tree."""
    rows = []
    for x in plots.insert_rows(r):
        paths = [i.path for i in r.params.by_insert if i.index == x["index"]]
        goto = (f'<a href="#" class="pg-goto" data-path="{esc(paths[0])}">show in tree</a>' if paths else "")
        rows.append([x["index"], esc(str(x["at"])), esc(str(x["module"])), x["instances"], f"{x['params']:,}",
                     f"{x['macs'] / 1e6:,.3f}", goto])
    return table_html(["#", "at", "module", "instances", "params", "MMACs", ""], rows, "pg-inserts", raw=True)


def catalog_html() -> str:
    """The insertable modules: name, paper, arguments, where they work."""
    rows = [[e.name, e.paper, ", ".join(e.args) or "—", "2-D maps" if e.needs_grid else "any layout"]
            for e in catalog().values()]
    return table_html(["module", "paper / source", "args", "works on"], rows, "pg-catalog")


def compare_html(c: Comparison) -> tuple[str, str, str]:
    """(totals, shapes, predictions) tables of a two-spec comparison, B against A."""
    sa, sb = c.sides[:2]
    lat = c.latency[0] if c.latency else None
    lat_delta = "" if lat is None else f"{lat.delta_ms:+.2f}" + ("" if lat.clear else " (within noise)")

    def med(s):
        return "—" if s.latency is None else f"{s.latency.median_ms:.2f}"
    rows = [["spec", sa.title, sb.title, ""],
            ["backbone @ size", f"{sa.backbone} @ {sa.img_size}", f"{sb.backbone} @ {sb.img_size}", ""],
            ["parameters", f"{sa.params:,}", f"{sb.params:,}", f"{sb.params - sa.params:+,}"],
            ["GMACs", units.giga(sa.macs, ""), units.giga(sb.macs, ""), units.signed(sb.macs - sa.macs, units.macs)],
            ["params vs own base", f"{sa.params_vs_base:+,}", f"{sb.params_vs_base:+,}", ""],
            ["stitched modules", sa.stitched, sb.stitched, f"{sb.stitched - sa.stitched:+d}"],
            ["latency (median ms)", med(sa), med(sb), lat_delta],
            ["pretrained weights", "yes" if sa.pretrained else "no", "yes" if sb.pretrained else "no", ""]]
    totals = table_html(["", "A", "B", "B − A"], rows, "pg-compare")
    shapes = table_html(["point", "A", "B", ""], [[s.point, _dims(s.shapes[0]), _dims(s.shapes[1]),
                                                   "" if s.same else "≠"] for s in c.shapes], "pg-compare")
    preds = table_html(["photo", "A top-1", "B top-1", "top-1 agrees", "top-5 overlap"],
                       [[p.image, p.top1[0], p.top1[1], "✓" if p.agrees_with_a[1] else "✗",
                         f"{p.topk_overlap_with_a[1]:.0%}"] for p in c.predictions], "pg-compare")
    return totals, shapes, preds


# ---- sweeps

def sweep_count_html(describe: str | None = None, limit: int | None = None, error: str | None = None) -> str:
    """The line under the sweep's YAML: its variant count before anything runs, or why it does not parse."""
    if error:
        return f'<div class="pg-status bad" id="sweep-count">✗ {esc(error)}</div>'
    return f'<div class="pg-status ok" id="sweep-count">✓ {esc(describe or "")} · limit here {limit:,}</div>'


def sweep_table_html(r: SweepResult) -> str:
    """The rows meeting the constraints, the Pareto front starred; then the invalid variants with their reasons."""
    front, timed = set(r.front), r.latency is not None
    rows = []
    for i in r.kept:
        row, m = r.rows[i], r.rows[i].metrics
        rows.append(["★" if i in front else "", i, esc(row.label), f"{m['params']:,}", units.giga(m["macs"], ""),
                     *([units.ms(m["latency_ms"]) if m.get("latency_ms") is not None else "—"] if timed else []),
                     _dims(row.final_shape), f"{len(row.warnings)} ⚠" if row.warnings else ""])
    head = ["front", "#", "variant", "params", "GMACs", *(["latency"] if timed else []), "final map", ""]
    out = table_html(head, rows, "pg-sweep", raw=True)
    bad = [[row.index, esc(row.label), esc(row.error or "")] for row in r.rows if not row.ok]
    if bad:
        out += "<h4>Invalid or failed variants</h4>" + table_html(["#", "variant", "reason"], bad, "pg-sweep-bad",
                                                                  raw=True)
    return out


def sweep_summary_html(r: SweepResult) -> str:
    s = r.stats
    front = ", ".join(f"#{i}" for i in r.front) or "none"
    where = f" where {esc(r.where)}" if r.where else ""
    return (f'<div class="pg-status ok" id="sweep-summary">{s.variants} variants: {s.computed} computed, '
            f'{s.cached} from the cache, {s.invalid} invalid or failed · {len(r.kept)} shown{where} · Pareto front '
            f'over {esc(", ".join(r.objectives))}: {front} · {s.seconds:.1f} s</div>')


# ---- latency and predictions

def memory_html(mem: MemoryEstimate | None) -> str:
    """The memory estimate as a table: what inference and a training step hold, part by part."""
    if mem is None:
        return '<div class="pg-legend">Not estimated yet: choose a batch and press Estimate memory.</div>'
    rows = [["parameters", units.mib(mem.params_bytes), units.mib(mem.params_bytes)],
            ["buffers", units.mib(mem.buffers_bytes), units.mib(mem.buffers_bytes)],
            ["activations (peak of live tensors)", units.mib(mem.activations_peak_bytes), "—"],
            ["gradients", "—", units.mib(mem.grads_bytes)],
            [f"{mem.optimizer} state", "—", units.mib(mem.optimizer_bytes)],
            ["activations saved for backward", "—", units.mib(mem.saved_bytes)],
            ["total", units.mib(mem.inference_bytes), units.mib(mem.training_bytes)]]
    return (f'<div class="pg-legend">batch {mem.batch} · {esc(mem.dtype)} · tensors only (no allocator cache, '
            f'no kernel scratch)</div>' + table_html(["", "inference", "training step"], rows))


def latency_html(latency: Latency | None, base: Latency | None) -> str:
    if not latency:
        return '<div class="pg-legend">Not measured yet for this spec. Choose the options and press Measure.</div>'
    rows = [("stitched" if base else "model", latency)] + ([("base", base)] if base else [])
    cells = "".join(
        f"<tr><td>{n}</td><td>{units.ms(x.median_ms)}</td><td>{x.median_ci_ms[0]:.2f}–{x.median_ci_ms[1]:.2f}</td>"
        f"<td>{units.ms(x.iqr_ms)}</td><td>{x.throughput:.1f} img/s</td><td>{(x.tflops or 0):.3f}</td></tr>"
        for n, x in rows)
    verdict = ""
    if base:
        d = difference(base, latency)
        verdict = (f'<div class="pg-legend">difference {d.delta_ms:+.2f} ms ({d.label}): ' +
                   ("the 95% intervals of the medians do not overlap" if d.clear else
                    "the 95% intervals of the medians overlap") + "</div>")
    return (f'<table class="pg-table" id="latency-table" data-median-ms="{latency.median_ms:.4f}"'
            f' data-batch="{latency.batch}" data-started="{latency.started_at:.6f}"><tr><th></th>'
            f'<th>median</th><th>95% CI of median (ms)</th><th>IQR</th><th>throughput</th>'
            f'<th title="{units.FLOPS_NOTE}">TFLOP/s = 2 × MACs / s</th></tr>{cells}</table>{verdict}'
            f'<div class="pg-legend">{esc(latency.device)} · batch '
            f'{latency.batch} · {latency.dtype}{" · channels_last" if latency.channels_last else ""}'
            f'{" · torch.compile" if latency.compiled else ""} · {latency.threads} threads · '
            f'{len(latency.times_ms)} timed blocks</div>{_contention(rows)}')


def _contention(rows: list[tuple[str, Latency]]) -> str:
    """A warning when blocks were timed while analyses of other users ran on the same cores."""
    busy = [f"{n}: {x.contended_blocks} of {len(x.times_ms)} blocks" for n, x in rows if x.contended_blocks]
    if not busy:
        return ""
    return (f'<div class="pg-legend pg-warn" id="latency-contended">⚠ timed while other analyses ran on the same '
            f'cores ({"; ".join(busy)}): slower than on a quiet machine. Measure again when the server is '
            f'quieter.</div>')


def predictions_md(r: Report | None) -> str:
    """Agreement of the stitched model with the base, per image, and a note when the weights are random."""
    preds = (r.predictions if r else None) or []
    if not preds:
        return "Upload a photo or pick a sample to see the top classes of the base and the stitched model."
    out = []
    if not r.pretrained:
        out.append("> ⚠ **random weights**: this spec has `pretrained: false`, so the classes below mean nothing. "
                   "Try the *EfficientNet-Lite0 (pretrained, offline)* preset.")
    for p in preds:
        top = p.top[0]
        line = f"**{esc(p.image)}** — stitched: **{top.label}** ({top.prob:.1%})"
        if p.base_top:
            b = p.base_top[0]
            line += f" · base: **{b.label}** ({b.prob:.1%})"
        a = p.agreement
        if a:
            line += (f" · top-1 {'agrees ✓' if a.top1_agree else 'differs ✗'} · "
                     f"KL(base‖stitched) = {a.kl_divergence:.4f} nats")
            moved = [f"{c.label.split(',')[0]} {c.base_rank}→{c.rank}" for c in a.rank_changes
                     if c.rank != c.base_rank]
            line += "<br>base top-k ranks now: " + (", ".join(moved) if moved else "unchanged")
        out.append(line)
    return "\n\n".join(out)
