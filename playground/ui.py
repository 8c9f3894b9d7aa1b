"""The web UI: a Gradio Blocks page that edits a spec and renders its Report. `app.py` only launches it.

Layout: the spec on the left (preset, backbone, stem, the insertion editor, head options, and the same spec as
YAML, kept in sync both ways), the report on the right (summary cards with deltas against the base backbone,
warnings, breakdown, shapes, module tree, layer table, latency, predictions, raw JSON); then Compare, Export & share.

Every handler is a plain function of plain values (YAML text, numbers, file paths) so it can be tested without a
browser; `build_demo` only wires them to components. User mistakes surface as `gr.Error` carrying the SpecError's
one line. Named API endpoints (`analyze`, `predict`, `points`, `presets`, `compare`) return plain JSON.
"""
from __future__ import annotations

import base64
import binascii
import functools
import html
import io
import json
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import yaml

from . import plots, units
from .analyze import analyze, cached_build
from .backbones import HEAD_NORMS, all_backbones, curated_backbones, default_img_size
from .choices import (
    BATCH,
    DEVICES,
    DTYPES,
    EXPORT_LABELS,
    IMG_SIZE,
    MERGES,
    STEM_KERNEL,
    STEM_PADDING,
    STEM_STRIDE,
    TOPK,
)
from .compare import Comparison, compare, named_specs
from .errors import SpecError, first_line
from .export import export, onnx_missing, python_snippet  # noqa: F401  onnx_missing: the page says why
from .modules import catalog
from .presets import list_presets, load_preset, preset_files
from .report import Latency, Report
from .spec import MAX_SPEC_BYTES, Spec, StemSpec, load_spec, parse_text
from .zerogpu import gpu

__all__ = ["build_demo", "launch_kwargs", "warm_up", "api_analyze", "api_predict", "api_points", "api_presets",
           "api_compare", "run_analysis", "analyze_on_device", "compare_on_device", "sample_images"]

log = logging.getLogger(__name__)

DEFAULT_PRESET = "efficientnet_lite0"
MAX_UPLOAD = "10mb"  # launch(max_file_size=...): photos for predictions
MAX_TEXT_CHARS = 300_000  # tree / layer table / diff shown in the page; the JSON keeps everything
LATENCY_GROUP = "latency"  # one latency measurement at a time, UI and API alike
GPU_SECONDS = 180  # ZeroGPU: the longest one device run may hold the GPU (latency with torch.compile)
EXPORT_TTL_S = 3600
COMBINE = ("serial",) + tuple(f"parallel · {m}" for m in MERGES)
INSERT_HEADERS = ["at", "module", "args"]
INSERT_ROWS_HELP = ("`at`: a point or a module-path glob · `module`: `se`, `{serial: [se, eca]}` or "
                    "`{parallel: [se, eca], merge: concat}` · `args`: `{rd_ratio: 0.25}`")


# ---- errors

def user_errors(fn: Callable) -> Callable:
    """Run a handler; a SpecError becomes a `gr.Error` with its one line, anything else a short internal error."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except SpecError as e:
            raise gr.Error(str(e), title="Cannot do that", print_exception=False) from None
        except Exception as e:  # a bug, not the user's fault: log it, say so in one line
            log.exception("handler %s failed", fn.__name__)
            raise gr.Error(f"internal error ({type(e).__name__}): {first_line(e)}", title="Something broke") from None
    return wrapper


def _upload(payload: Any) -> Any:
    """What an image input carries: the uploaded file's path, the bytes of a `data:` URL, or None."""
    url = str(getattr(payload, "url", None) or "")
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.partition(",")[2])
        except (binascii.Error, ValueError):
            return b""
    return getattr(payload, "path", None)


def photo_input(**kwargs: Any) -> gr.Image:
    """A `gr.Image` (filepath) whose upload, when it is not a decodable image of an accepted size, is refused with
    the one-line message of `images.load_image` ("image 'x.png' is not a recognised image: ...") instead of
    Gradio's "the upstream app has raised an exception" and a traceback in the log. The pixel limit is checked on
    the header, before Gradio decodes (and converts) the image: a 13000x13000 grey PNG is 160 KB, and a `data:`
    URL does not even count against the upload limit.

    The component's `preprocess` is wrapped on the instance: a subclass would make Gradio write a `.pyi` stub next
    to this module.
    """
    image = gr.Image(type="filepath", **kwargs)
    gradio_preprocess = image.preprocess

    def preprocess(payload: Any) -> Any:
        from PIL import Image

        from .images import ACCEPTED, MAX_IMAGE_PIXELS, load_image
        source = _upload(payload)
        try:
            if source:
                with Image.open(source if isinstance(source, str) else io.BytesIO(source)) as im:  # the header
                    if im.width * im.height > MAX_IMAGE_PIXELS:
                        raise ValueError("too many pixels")  # load_image below says so in its words
            return gradio_preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:
            name = Path(getattr(payload, "orig_name", None) or getattr(payload, "path", None) or "image").name
            if source is not None:
                try:
                    load_image(source, name=name)
                except SpecError as bad:
                    raise gr.Error(str(bad), title="Cannot read that image", print_exception=False) from None
                except Exception:  # not decodable either way: the generic message below
                    pass
            raise gr.Error(f"image '{name}' cannot be read ({type(e).__name__}): give {ACCEPTED}",
                           title="Cannot read that image", print_exception=False) from None

    image.preprocess = preprocess
    return image


# ---- specs from the page: YAML text or a preset name, never a server file path

def parse_spec(text: str) -> Spec:
    """A Spec from YAML text or a preset name. Text from a browser or an API call is only ever parsed: it can
    name no file on the server (no spec file, no `checkpoint`)."""
    text = text or ""
    if text.strip() in preset_files():
        return load_preset(text.strip())
    spec = Spec.from_dict(parse_text(text))
    if spec.checkpoint:
        raise SpecError("checkpoint: the web app loads no files from the server; use pretrained: true here, or "
                        "a local checkpoint with the CLI or Python (python -m playground report SPEC)")
    return spec


# ---- share links: the spec as base64url YAML in the query string

def encode_spec(text: str) -> str:
    """`?spec=` token for a spec: base64url of its normalised YAML, without padding."""
    normal = parse_spec(text).to_yaml()
    return base64.urlsafe_b64encode(normal.encode("utf-8")).decode("ascii").rstrip("=")


def decode_spec(token: str) -> str:
    """The YAML a `?spec=` token carries, validated; a SpecError when it is not one."""
    token = (token or "").strip()
    if len(token) > MAX_SPEC_BYTES * 4 // 3 + 4 or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", token):
        raise SpecError("shared link: the `spec` in the URL is not base64url text")
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SpecError("shared link: the `spec` in the URL does not decode to UTF-8 YAML") from None
    return spec_yaml(Spec.from_dict(parse_text(text)))


# ---- spec <-> controls

def _opt_int(v: Any) -> int | None:
    """A gr.Number value as an int, or None when empty."""
    if v is None or v == "":
        return None
    f = float(v)
    return int(f) if f.is_integer() else f  # a fractional value is kept so that validation names it


def _flow(data: Any) -> str:
    """One-line YAML for a table cell: `se`, `{serial: [se, eca]}`, `{rd_ratio: 0.25}`."""
    if data is None or data == {}:
        return ""
    if isinstance(data, str):
        return data
    return yaml.safe_dump(data, default_flow_style=True, sort_keys=False).strip()


def spec_yaml(spec: Spec) -> str:
    """The spec as YAML for the editor: block style at the top, `stem` and each insertion on one line."""
    data = spec.to_dict()
    out = []
    for key, value in sorted(data.items(), key=lambda kv: _ORDER.index(kv[0]) if kv[0] in _ORDER else len(_ORDER)):
        if key == "insert":
            out.append("insert:\n" + "".join(f"  - {_flow(i)}\n" for i in value))
        elif isinstance(value, (dict, list)):
            out.append(f"{key}: {_flow(value)}\n")
        else:
            out.append(yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=10_000))
    return "".join(out)


def inserts_to_rows(inserts: Sequence[dict]) -> list[list[str]]:
    """The spec's `insert` list as editor rows [at, module, args]."""
    return [[str(i["at"]), _flow(i["module"]), _flow(i.get("args"))] for i in inserts]


def rows_to_inserts(rows: Any) -> list[dict]:
    """Editor rows back to `insert` entries; blank rows are skipped, a bad cell is a SpecError naming its row."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.values.tolist()
    out = []
    for n, row in enumerate(rows or [], 1):
        cells = [("" if c is None else str(c)).strip() for c in list(row)[:3]] + [""] * (3 - len(row))
        at, module, args = cells[:3]
        if not (at or module or args):
            continue
        entry: dict[str, Any] = {"at": at, "module": parse_text(module) if module else None}
        if args:
            entry["args"] = parse_text(args)
        if not at or entry["module"] is None:
            raise SpecError(f"insertion row {n}: needs a position (`at`) and a module")
        out.append(entry)
    return out


CONTROLS = ("backbone", "pretrained", "img_size", "stem_stride", "stem_kernel", "stem_padding", "insert", "gate",
            "num_classes", "head_norm")
_ORDER = ("title", "description", "backbone", "pretrained", "checkpoint", "num_classes", "img_size", "stem",
          "insert", "gate", "head_norm", "drop_path_rate")


def controls_from_spec(spec: Spec) -> list[Any]:
    """Control values (in CONTROLS order) showing a spec."""
    data = spec.to_dict()
    return [spec.backbone, spec.pretrained, spec.img_size or default_img_size(spec.backbone), spec.stem.stride,
            spec.stem.kernel, spec.stem.padding, inserts_to_rows(data.get("insert", [])), spec.gate,
            spec.num_classes, spec.head_norm or "none"]


def _tolerant(text: str) -> dict:
    try:
        data = parse_text(text or "")
    except SpecError:
        return {}
    return data if isinstance(data, dict) else {}


def _default_size(backbone: str | None) -> int | None:
    try:
        return default_img_size(backbone) if backbone else None
    except Exception:  # an unknown name: validation will say so
        return None


@functools.lru_cache(maxsize=1)
def _presets_by_title() -> dict[str, Spec]:
    return {s.title: s for s in list_presets().values() if s.title}


def _without_text(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("title", "description")}


def spec_from_controls(text: str, backbone: str, pretrained: bool, img_size: Any, stride: Any, kernel: Any,
                       padding: Any, rows: Any, gate: bool, num_classes: Any, head_norm: str) -> dict:
    """The spec the controls describe, as data; fields without a control (title, ...) are kept from `text`.

    The image size is left out when it is the backbone's default (or the old backbone's, after a change of
    backbone). A preset's title and description go once the spec is no longer that preset.
    """
    old = _tolerant(text)
    data: dict[str, Any] = {k: v for k, v in old.items() if k not in _ORDER or k in
                            ("title", "description", "checkpoint", "drop_path_rate")}
    data["backbone"] = (backbone or "").strip()
    data["pretrained"] = bool(pretrained)
    size = _opt_int(img_size)
    if size is not None and size not in (_default_size(data["backbone"]), _default_size(old.get("backbone"))):
        data["img_size"] = size
    data["stem"] = {k: v for k, v in (("stride", _opt_int(stride)), ("kernel", _opt_int(kernel)),
                                      ("padding", _opt_int(padding))) if v is not None}
    data["insert"] = rows_to_inserts(rows)
    data["gate"] = bool(gate)
    data["num_classes"] = _opt_int(num_classes) or None
    data["head_norm"] = None if head_norm in (None, "", "none") else head_norm
    preset = _presets_by_title().get(data.get("title"))
    if preset is not None:
        try:
            same = load_spec(_without_text(data)) == load_spec(_without_text(preset.to_dict()))
        except SpecError:
            same = False
        if not same:
            data.pop("title", None), data.pop("description", None)
    return {k: data[k] for k in _ORDER if k in data} | {k: v for k, v in data.items() if k not in _ORDER}


def status_html(spec: Spec | None = None, error: str | None = None) -> str:
    """The one line under the YAML editor: the spec is valid (and what it is), or why not."""
    if error:
        return f'<div class="pg-status bad">✗ {html.escape(error)}</div>'
    n = len(spec.insert)
    what = f"{n} insertion{'s' if n != 1 else ''}" if n else "no insertions"
    return (f'<div class="pg-status ok">✓ valid spec · {html.escape(spec.backbone)} · {what} · '
            f'click <b>Analyze</b> to see it</div>')


@user_errors
def on_controls(text: str, *values: Any) -> tuple[Any, str, Any]:
    """A control was edited: (YAML, status, image size shown).

    The image size control is only written after a change of backbone (to show the new default), never while
    the user may be typing into it.
    """
    try:
        data = spec_from_controls(text, *values)
    except SpecError as e:
        return gr.skip(), status_html(error=str(e)), gr.skip()
    try:
        spec = load_spec(data)
    except SpecError as e:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=None), status_html(error=str(e)), gr.skip()
    new_backbone = spec.backbone != _tolerant(text).get("backbone")
    size = (spec.img_size or default_img_size(spec.backbone)) if new_backbone else gr.skip()
    return spec_yaml(spec), status_html(spec), size


@user_errors
def on_yaml(text: str) -> list[Any]:
    """The YAML was edited (or replaced by a preset / a shared link): the controls follow when it is valid."""
    try:
        spec = parse_spec(text)
    except SpecError as e:
        return [gr.skip()] * len(CONTROLS) + [status_html(error=str(e))]
    return controls_from_spec(spec) + [status_html(spec)]


# ---- insertion editor

def _shape_label(p: dict) -> str:
    s = p["shape"][1:]
    if p["layout"] == "NLC":
        return f"{s[0]} tokens × {s[1]}"
    return "×".join(map(str, s)) + ("" if p["layout"] == "NCHW" else f" ({p['layout']})")


def point_choices(backbone: str, img_size: Any = None, stride: Any = None, kernel: Any = None,
                  padding: Any = None) -> list[tuple[str, str]]:
    """Insertion positions of a backbone (after the stem change) as (label with shape, point name) pairs.

    `stage<i>.block*` (after every block of a stage) follows each stage's blocks.
    """
    stem = StemSpec(_opt_int(stride), _opt_int(kernel), _opt_int(padding))
    spec = Spec(backbone=backbone, img_size=_opt_int(img_size), stem=stem)
    load_spec(spec.to_dict())  # validate
    if stem.is_default():
        from .build import points
        pts = [p.to_dict() for p in points(backbone, spec.img_size)]
    else:
        pts = [p.to_dict() for p in cached_build(spec).points]
    out: list[tuple[str, str]] = []
    for k, p in enumerate(pts):
        out.append((f"{p['name']}  ·  {_shape_label(p)}", p["name"]))
        m = re.fullmatch(r"(stage\d+)\.block\d+", p["name"])
        nxt = pts[k + 1]["name"] if k + 1 < len(pts) else ""
        if m and not nxt.startswith(m.group(1) + ".block"):
            out.append((f"{m.group(1)}.block*  ·  after every block of {m.group(1)}", f"{m.group(1)}.block*"))
    return out


def on_points(backbone: str, img_size: Any, stride: Any, kernel: Any, padding: Any, current: str | None):
    """Refresh the position menu for the current backbone; quiet when the backbone is not valid (yet)."""
    try:
        choices = point_choices(backbone, img_size, stride, kernel, padding)
    except Exception:
        return gr.skip()
    names = [v for _, v in choices]
    stages = [n for n in names if re.fullmatch(r"stage\d+", n)]
    value = current if current in names else (stages[-1] if stages else names[-1])
    return gr.update(choices=choices, value=value)


def add_row(rows: Any, at: str, modules: Sequence[str], combine: str, args: str) -> list[list[str]]:
    """Append an insertion row from the editor's form (one module, or several in series / in parallel)."""
    rows = _row_list(rows)
    if not at or not str(at).strip():
        raise SpecError("add insertion: choose a position (a point, or type a module-path glob)")
    modules = [m for m in (modules or []) if m]
    if not modules:
        raise SpecError(f"add insertion: choose one or more modules ({', '.join(catalog())})")
    args_data = parse_text(args) if args and args.strip() else None
    if args_data is not None and not isinstance(args_data, dict):
        raise SpecError(f"add insertion: args must be a mapping such as {{rd_ratio: 0.25}}, got {args!r}")
    if len(modules) == 1:
        module: Any = modules[0]
    else:
        if args_data:
            raise SpecError("add insertion: args apply to a single module; for a composite, edit its row, "
                            "e.g. {serial: [{name: eca, args: {kernel_size: 5}}, se]}")
        module = ({"serial": modules} if combine == "serial" else
                  {"parallel": modules, "merge": (combine or "parallel · add").split("· ")[-1]})
    row = [str(at).strip(), _flow(module), _flow(args_data)]
    rows_to_inserts([row])  # the cells parse
    return rows + [row]


def _row_list(rows: Any) -> list[list[str]]:
    if isinstance(rows, pd.DataFrame):
        rows = rows.values.tolist()
    return [[("" if c is None else str(c)) for c in r] for r in (rows or [])
            if any(str(c).strip() for c in r if c is not None)]


def remove_row(rows: Any, index: int | None) -> list[list[str]]:
    """Drop the selected row (the last one when none is selected)."""
    rows = _row_list(rows)
    if not rows:
        return rows
    i = index if isinstance(index, int) and 0 <= index < len(rows) else len(rows) - 1
    return rows[:i] + rows[i + 1:]


def catalog_table() -> pd.DataFrame:
    """The insertable modules: name, paper, arguments, where they work."""
    rows = [[e.name, e.paper, ", ".join(e.arg_types) or "—", "2-D maps" if e.needs_grid else "any layout"]
            for e in catalog().values()]
    return pd.DataFrame(rows, columns=["module", "paper / source", "args", "works on"])


# ---- rendering a Report

def _delta(delta: float, base: float, fmt: Callable[[float], str], unit: str = "") -> str:
    """`+2.53 M (+9.9%) vs base 25.56 M`, coloured by sign."""
    if not delta:
        return f'<div class="pg-delta same">= base ({fmt(base)}{unit})</div>'
    pct = units.percent(delta, base)
    pct = f" ({pct})" if pct else ""
    cls = "up" if delta > 0 else "down"
    sign = "+" if delta > 0 else "−"
    return f'<div class="pg-delta {cls}">{sign}{fmt(abs(delta))}{unit}{pct} vs base {fmt(base)}{unit}</div>'


def _card(label: str, value: str, exact: str, delta: str, title: str = "") -> str:
    t = f' title="{html.escape(title)}"' if title else ""
    return (f'<div class="pg-card"{t}><div class="pg-label">{label}</div><div class="pg-value">{value}</div>'
            f'<div class="pg-exact">{exact}</div>{delta}</div>')


def latency_card(latency: Latency | None, base: Latency | None, modified: bool) -> str:
    if not latency:
        return _card("Latency", "—", "not measured", '<div class="pg-delta same">Latency tab → Measure</div>')
    exact = (f"IQR {latency.iqr_ms:.2f} ms · {html.escape(latency.device)} · batch {latency.batch} · "
             f"{latency.dtype}")
    if base:
        delta = _delta(latency.median_ms - base.median_ms, base.median_ms, lambda v: f"{v:.2f}", " ms")
    else:
        delta = '<div class="pg-delta same">= base (unmodified backbone)</div>' if not modified else ""
    return _card("Latency (median)", units.ms(latency.median_ms), exact, delta)


def summary_html(r: Report, seconds: float | None = None) -> str:
    """Title line and the cards: params, GMACs, latency (each with its delta against the base), weights."""
    p, m = r.params, r.macs
    n_ins = len(r.inserted)
    wtext = (f"weights: {html.escape(r.weights.source)}" if r.weights else "random init (pretrained: false)")
    sub = [f"{html.escape(r.backbone)}", f"{r.img_size}×{r.img_size}",
           f"{n_ins} stitched module{'s' if n_ins != 1 else ''}", wtext]
    cards = [
        _card("Parameters", units.millions(p.total), f"{p.total:,} params · {p.trainable:,} trainable",
              _delta(p.delta, p.base_total, units.params)),
        _card("GMACs · the “FLOPs” of papers", units.giga(m.total, ""), f"{m.total:,} multiply-accumulates",
              _delta(m.delta, m.base_total, units.macs), title=units.MACS_NOTE),
        latency_card(r.latency, r.base_latency, r.modified),
    ]
    final = r.shape_at("final")
    if final:
        cards.append(_card("Final feature map", f"{final.channels}×{final.height}×{final.width}" if final.height
                           else str(final.channels), f"{final.layout} {final.shape}",
                           f'<div class="pg-delta same">stride {final.reduction:g}</div>' if final.reduction else ""))
    took = f" · analysed in {seconds:.2f} s" if seconds is not None else ""
    return (f'<div class="pg-summary"><div class="pg-title">{html.escape(r.title)}'
            f'<span class="pg-sub">{" · ".join(sub)}{took}</span></div>'
            f'<div class="pg-cards">{"".join(cards)}</div></div>')


def warnings_html(warns: Sequence[str]) -> str:
    if not warns:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warns)
    return (f'<div class="pg-warn"><b>⚠ {len(warns)} warning{"s" if len(warns) > 1 else ""}</b>'
            f'<ul>{items}</ul></div>')


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
    """The module tree with the stitched modules highlighted (and their `Stitch` chains marked)."""
    tree, more = _clip(tree)
    prefixes = tuple(p + "." for p in inserted)
    ins = set(inserted)
    lines = []
    for line, path in zip(tree.splitlines(), tree_paths(tree)):
        cls = "ins" if path in ins or path.startswith(prefixes) else ("wrap" if "): Stitch(" in line else "")
        lines.append(f'<div class="ln {cls}">{html.escape(line) or " "}</div>')
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
    lines = [f'<div class="ln {cls.get(line[:1], "")}">{html.escape(line) or " "}</div>'
             for line in diff.splitlines()]
    tail = f'<div class="pg-more">{more}</div>' if more else ""
    return f'<div class="pg-code pg-tree">{"".join(lines)}</div>{tail}'


def pre_html(text: str) -> str:
    text, more = _clip(text)
    return f'<pre class="pg-code">{html.escape(text)}</pre>' + (f'<div class="pg-more">{more}</div>' if more else "")


def shapes_table(r: Report) -> pd.DataFrame:
    rows = [[s.point, s.layout, str(s.shape), s.channels, f"{s.height}×{s.width}" if s.height else "—",
             f"{s.reduction:g}" if s.reduction else "—"] for s in r.shapes]
    return pd.DataFrame(rows, columns=["point", "layout", "shape", "channels", "H×W", "stride"])


def inserts_table(r: Report) -> pd.DataFrame:
    rows = [[x["index"], x["at"], x["module"], x["instances"], f"{x['params']:,}", f"{x['macs'] / 1e6:,.3f}"]
            for x in plots.insert_rows(r)]
    return pd.DataFrame(rows, columns=["#", "at", "module", "instances", "params", "MMACs"])


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
        line = f"**{html.escape(p.image)}** — stitched: **{top.label}** ({top.prob:.1%})"
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


def latency_html(latency: Latency | None, base: Latency | None) -> str:
    if not latency:
        return '<div class="pg-legend">Not measured yet for this spec. Choose the options and press Measure.</div>'
    rows = [("stitched" if base else "model", latency)] + ([("base", base)] if base else [])
    cells = "".join(
        f"<tr><td>{n}</td><td>{units.ms(x.median_ms)}</td><td>{units.ms(x.iqr_ms)}</td>"
        f"<td>{x.throughput:.1f} img/s</td><td>{(x.tflops or 0):.3f}</td></tr>" for n, x in rows)
    return (f'<table class="pg-table"><tr><th></th><th>median</th><th>IQR</th><th>throughput</th>'
            f'<th title="{units.FLOPS_NOTE}">TFLOP/s (2 × MACs)</th></tr>{cells}</table>'
            f'<div class="pg-legend">{html.escape(latency.device)} · batch '
            f'{latency.batch} · {latency.dtype}{" · channels_last" if latency.channels_last else ""}'
            f'{" · torch.compile" if latency.compiled else ""} · {latency.threads} threads · '
            f'{len(latency.times_ms)} timed blocks (torch.utils.benchmark)</div>')


REPORT_OUTPUTS = ("summary", "warnings", "breakdown_plot", "inserts_plot", "inserts_df", "shapes_plot", "shapes_df",
                  "tree", "diff", "layers", "pred_plot", "pred_md", "latency_html", "latency_plot", "json")


def render_report(r: Report, seconds: float | None = None) -> list[Any]:
    """Every output of the report panel, in REPORT_OUTPUTS order."""
    ins_fig = plots.inserts_figure(r)
    preds = r.predictions or []
    return [
        summary_html(r, seconds=seconds), warnings_html(r.warnings), plots.breakdown_figure(r),
        gr.update(value=ins_fig, visible=ins_fig is not None), gr.update(value=inserts_table(r), visible=bool(
            r.inserted)), plots.shapes_figure(r), shapes_table(r), tree_html(r.tree, r.inserted),
        diff_html(r.tree_diff), pre_html(r.summary), plots.predictions_figure(preds[0]) if preds else None,
        predictions_md(r), latency_html(None, None), None, r.to_dict(),
    ]


# ---- runs of the model on the device (ZeroGPU: these hold a GPU while they run; see zerogpu.py)

@gpu(duration=GPU_SECONDS)
def analyze_on_device(spec: Spec, *, latency: dict | None = None, images: list | None = None, topk: int = 5,
                      progress: Callable[[float, str], None] | None = None) -> Report:
    """`analyze` for an analysis that runs the model (a latency run, predictions); holds a GPU on ZeroGPU."""
    return analyze(spec, latency=latency, images=images, topk=topk, progress=progress)


@gpu(duration=GPU_SECONDS)
def compare_on_device(*specs: Spec, latency: dict | None = None, images: list | None = None,
                      progress: Callable[[float, str], None] | None = None) -> Comparison:
    """`compare` (which runs the models on the sample photos); holds a GPU on ZeroGPU."""
    return compare(*specs, latency=latency, images=images, progress=progress)


def run_analysis(spec: Spec, *, latency: dict | None = None, images: list | None = None, topk: int = 5,
                 progress: Callable[[float, str], None] | None = None) -> Report:
    """`analyze`, on the device when it runs the model; a static analysis (counts, shapes) needs no GPU."""
    if latency or images:
        return analyze_on_device(spec, latency=latency, images=images, topk=topk, progress=progress)
    return analyze(spec, topk=topk, progress=progress)


# ---- actions

def _progress(progress: Any, lo: float = 0.0, hi: float = 1.0) -> Callable[[float, str], None]:
    """analyze's `progress(fraction, message)` onto a gr.Progress, mapped into [lo, hi]."""
    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(lo + (hi - lo) * fraction, desc=message)
    return step


def _images(image: str | None) -> list | None:
    return [image] if image else None


@user_errors
def analyze_ui(text: str, image: str | None, topk: int, progress=gr.Progress()) -> list[Any]:
    """Analyze button: build, count, tabulate (and predict when a photo is there)."""
    start = time.perf_counter()
    report = run_analysis(parse_spec(text), images=_images(image), topk=int(topk or 5), progress=_progress(progress))
    return render_report(report, time.perf_counter() - start)


@user_errors
def predict_ui(text: str, image: str | None, topk: int) -> tuple[Any, str]:
    """A photo was uploaded or picked: top-k of the base and the stitched model."""
    if not image:
        return None, predictions_md(None)
    r = run_analysis(parse_spec(text), images=[image], topk=int(topk or 5))
    return plots.predictions_figure(r.predictions[0]), predictions_md(r)


def latency_options(device: str, batch: Any, dtype: str, channels_last: bool, compile: bool) -> dict:
    return {"device": device or "auto", "batch": int(_opt_int(batch) or 1), "dtype": dtype or "fp32",
            "channels_last": bool(channels_last), "compile": bool(compile)}


@user_errors
def latency_ui(text: str, device: str, batch: Any, dtype: str, channels_last: bool, compile: bool,
               progress=gr.Progress()) -> tuple[str, str, Any]:
    """Measure button: (summary with the latency card, latency table, distribution plot). The model and, when the
    spec changes the backbone, the base are timed by `analyze`'s one latency path."""
    opts = {**latency_options(device, batch, dtype, channels_last, compile), "base": True}
    r = run_analysis(parse_spec(text), latency=opts, progress=_progress(progress))
    return summary_html(r), latency_html(r.latency, r.base_latency), plots.latency_figure(r.latency, r.base_latency)


# ---- compare

def compare_specs(*texts: str, latency: bool = False,
                  progress: Callable[[float, str], None] | None = None) -> Comparison:
    """`compare` of the page's spec texts on the sample photos (timed when asked), the bad one named."""
    specs = named_specs(texts, parse_spec)
    opts = {"device": "auto", "batch": 1, "dtype": "fp32"} if latency else None
    return compare_on_device(*specs, latency=opts, images=sample_images(), progress=progress)


def _num(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


@user_errors
def compare_ui(text_a: str, text_b: str, latency: bool, progress=gr.Progress()) -> tuple[Any, ...]:
    """Compare button: (metrics table, shapes table, per-stage figure, predictions table)."""
    c = compare_specs(text_a, text_b, latency=latency, progress=_progress(progress))
    sa, sb = c.sides
    lat = c.latency[0] if c.latency else None
    lat_delta = "" if lat is None else f"{lat.delta_ms:+.2f}" + ("" if lat.clear else " (within spread)")
    rows = [["spec", sa.title, sb.title, ""],
            ["backbone @ size", f"{sa.backbone} @ {sa.img_size}", f"{sb.backbone} @ {sb.img_size}", ""],
            ["parameters", f"{sa.params:,}", f"{sb.params:,}", f"{sb.params - sa.params:+,}"],
            ["GMACs", units.giga(sa.macs, ""), units.giga(sb.macs, ""), units.signed(sb.macs - sa.macs, units.macs)],
            ["params vs own base", f"{sa.params_vs_base:+,}", f"{sb.params_vs_base:+,}", ""],
            ["stitched modules", sa.stitched, sb.stitched, f"{sb.stitched - sa.stitched:+d}"],
            ["latency (median ms)", _num(sa.latency and sa.latency.median_ms, ".2f"),
             _num(sb.latency and sb.latency.median_ms, ".2f"), lat_delta],
            ["pretrained weights", "yes" if sa.pretrained else "no", "yes" if sb.pretrained else "no", ""]]
    metrics = pd.DataFrame([[str(x) for x in row] for row in rows], columns=["", "A", "B", "B − A"])
    shapes = pd.DataFrame([[s.point, str(s.shapes[0] or "—"), str(s.shapes[1] or "—"), "" if s.same else "≠"]
                           for s in c.shapes], columns=["point", "A", "B", ""])
    preds = pd.DataFrame([[p.image, p.top1[0], p.top1[1], "✓" if p.agrees_with_a[1] else "✗",
                           f"{p.topk_overlap_with_a[1]:.0%}"] for p in c.predictions],
                         columns=["photo", "A top-1", "B top-1", "top-1 agrees", "top-5 overlap"])
    for caveat in c.caveats:
        gr.Info(caveat, title="Compare")
    return metrics, shapes, plots.compare_figure(c), preds


# ---- export

# Export labels shown in the page -> playground.export formats
EXPORTS = EXPORT_LABELS


def _slug(spec: Spec) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (spec.title or spec.backbone).lower()).strip("-")[:60] or "model"


def _export_dir() -> Path:
    """A fresh folder for one export under the system temp dir (Gradio serves from there); old ones pruned."""
    root = Path(tempfile.gettempdir()) / "playground-exports"
    root.mkdir(exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        if now - old.stat().st_mtime > EXPORT_TTL_S:
            shutil.rmtree(old, ignore_errors=True)
    d = root / uuid.uuid4().hex
    d.mkdir()
    return d


def export_file(spec: Spec, label: str, progress: Callable[[float, str], None] = lambda f, m: None) -> Path:
    """Write the spec or the model as the page's export `label` (a key of EXPORTS) into a fresh download folder."""
    if label not in EXPORTS:
        raise SpecError(f"export: {label!r} is not one of {', '.join(EXPORTS)}")
    return export(spec, EXPORTS[label], _export_dir() / _slug(spec), progress)


@user_errors
def export_ui(text: str, fmt: str, progress=gr.Progress()) -> tuple[str | None, str]:
    """Export button: (file to download, a line saying what it is)."""
    spec = parse_spec(text)
    try:
        path = export_file(spec, fmt, _progress(progress))
    except SpecError as e:
        return None, f"✗ {e}"
    size = path.stat().st_size
    return str(path), f"✓ {path.name} · {size / 1e6:.2f} MB" if size > 1e5 else f"✓ {path.name} · {size:,} bytes"


@user_errors
def snippet_ui(text: str) -> Any:
    try:
        return python_snippet(parse_spec(text))
    except SpecError:
        return gr.skip()


@user_errors
def share_ui(text: str) -> str:
    """The query string of a link that restores this spec (the page prefixes its own address)."""
    return f"?spec={encode_spec(text)}"


# ---- page load

def preset_yaml(name: str) -> str:
    return spec_yaml(load_preset(name))


@user_errors
def on_load(request: gr.Request) -> tuple[str, Any]:
    """The spec to start from: `?spec=<base64url YAML>` or `?preset=<name>` from the URL, else the default."""
    params = dict(request.query_params) if request is not None else {}
    try:
        if params.get("spec"):
            return decode_spec(params["spec"]), None
        if params.get("preset"):
            return preset_yaml(params["preset"]), params["preset"]
    except SpecError as e:
        gr.Warning(f"{e}; showing the default preset instead", title="Shared link")
    return preset_yaml(DEFAULT_PRESET), DEFAULT_PRESET


# ---- sample photos

def sample_dir() -> Path:
    from .weights import cache_dir
    return cache_dir() / "samples"


@functools.lru_cache(maxsize=1)
def sample_images() -> list[str]:
    """scikit-image's chelsea (a tabby cat) and coffee (an espresso) saved as PNGs in the cache, made once."""
    from PIL import Image
    from skimage import data
    d = sample_dir()
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("chelsea", "coffee"):
        path = d / f"{name}.png"
        if not path.is_file():
            tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            Image.fromarray(getattr(data, name)()).save(tmp, format="PNG")
            tmp.replace(path)
        paths.append(str(path))
    return paths


# ---- API endpoints: JSON text in, JSON text out
# Results are JSON *text*: gradio_client takes any returned dict with a "path" key for a file to download, and
# reports name module paths `path`. `json.loads` the result (it is the CLI's `--json` output for a report).

def _json(data: Any) -> str:
    return json.dumps(data)


def api_analyze(spec: str, latency: bool = False, device: str = "auto", batch: int = 1, dtype: str = "fp32") -> str:
    """Analyze a spec (YAML text or a preset name): the Report as JSON text (params, MACs, shapes, tree, ...).

    With latency=true the forward pass is timed (one measurement at a time on the server).
    """
    opts = latency_options(device, batch, dtype, False, False) if latency else None
    return run_analysis(parse_spec(spec), latency=opts).to_json()


def api_predict(spec: str, image: str | None, topk: float = 5) -> str:
    """Top-k classes of the stitched and the base model for one photo, with their agreement (JSON text)."""
    if not image:
        raise SpecError("predict: give an image (gradio_client.handle_file('photo.jpg'))")
    r = run_analysis(parse_spec(spec), images=[image], topk=int(topk or 5))
    return _json({"predictions": r.to_dict()["predictions"], "warnings": r.warnings, "pretrained": r.pretrained})


def api_points(backbone: str, img_size: int = 0) -> str:
    """The insertion points of a backbone with layout, channels and shape (img_size 0: its default), JSON text."""
    from .build import points
    return _json([p.to_dict() for p in points(backbone, img_size or None)])


def api_presets() -> str:
    """Every preset as JSON text: {name: {title, description, yaml}}."""
    return _json({n: {"title": s.title, "description": s.description, "yaml": spec_yaml(s)}
                  for n, s in list_presets().items()})


def api_compare(spec_a: str, spec_b: str, latency: bool = False) -> str:
    """Two specs side by side (JSON text, a Comparison): totals, per-stage params and MACs, shapes, latency with
    its spread when asked, prediction agreement on the sample photos, caveats."""
    return compare_specs(spec_a, spec_b, latency=latency).to_json()


# ---- the page

THEME = gr.themes.Default(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")

CSS = """
.pg-header h1 {margin: 0 0 2px 0; font-size: 1.5rem}
.pg-header p {margin: 0; color: var(--body-text-color-subdued)}
.pg-summary .pg-title {font-size: 1.15rem; font-weight: 600; margin: 2px 0 8px}
.pg-summary .pg-sub {font-weight: 400; font-size: .85rem; color: var(--body-text-color-subdued); margin-left: .6em}
.pg-cards {display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px}
.pg-card {border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); padding: 10px 14px;
  background: var(--block-background-fill)}
.pg-label {font-size: .72rem; text-transform: uppercase; letter-spacing: .05em; color: var(--body-text-color-subdued)}
.pg-value {font-size: 1.6rem; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.3}
.pg-exact {font-size: .78rem; color: var(--body-text-color-subdued); font-variant-numeric: tabular-nums}
.pg-delta {font-size: .82rem; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums}
.pg-delta.up {color: #b45309} .pg-delta.down {color: #047857} .pg-delta.same {color: var(--body-text-color-subdued)}
.pg-warn {border: 1px solid #f59e0b; background: rgba(245, 158, 11, .10); border-radius: var(--radius-lg);
  padding: 8px 12px; font-size: .85rem}
.pg-warn ul {margin: 4px 0 0 1.2em; padding: 0}
.pg-status {font-size: .82rem; padding: 4px 2px}
.pg-status.ok {color: #047857} .pg-status.bad {color: #b91c1c; font-weight: 600}
.pg-code {font-family: var(--font-mono); font-size: 12px; line-height: 1.45; max-height: 620px; overflow: auto;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); padding: 8px 10px;
  background: var(--block-background-fill); margin: 0; white-space: pre}
.pg-tree .ln {white-space: pre; min-height: 1.2em}
.pg-tree .ln.ins {background: rgba(245, 158, 11, .22); font-weight: 600}
.pg-tree .ln.wrap {background: rgba(79, 70, 229, .10)}
.pg-tree .ln.add {background: rgba(4, 120, 87, .14)} .pg-tree .ln.del {background: rgba(185, 28, 28, .12)}
.pg-tree .ln.hunk {color: var(--body-text-color-subdued)}
.pg-legend {font-size: .8rem; color: var(--body-text-color-subdued); margin: 2px 0 6px}
.pg-legend .ins {background: rgba(245, 158, 11, .22); padding: 0 4px; font-weight: 600}
.pg-legend .wrap {background: rgba(79, 70, 229, .10); padding: 0 4px}
.pg-more {font-size: .8rem; color: var(--body-text-color-subdued)}
.pg-table {border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; margin-bottom: 4px}
.pg-table td, .pg-table th {padding: 3px 14px 3px 0; text-align: left}
.pg-hint {font-size: .8rem; color: var(--body-text-color-subdued)}
"""


def build_demo() -> gr.Blocks:
    """The Blocks of the whole page (not launched; see app.py)."""
    presets = list_presets()
    curated = curated_backbones()
    backbones = curated + [n for n in all_backbones() if n not in curated]
    default = load_preset(DEFAULT_PRESET)
    samples = sample_images()
    c: dict[str, Any] = {}  # components by name

    with gr.Blocks(title="Architecture Playground", analytics_enabled=False) as demo:
        with gr.Row(elem_classes="pg-header"):
            gr.Markdown("# Architecture Playground\nStitch attention modules (SE, ECA, CBAM, …) into timm "
                        "backbones, change the embedding stride, and see what it does to parameters, compute, "
                        "feature-map shapes, latency and predictions.")
        with gr.Tabs():
            with gr.Tab("Playground", id="playground"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5, min_width=340):
                        _spec_panel(c, presets, backbones, default)
                    with gr.Column(scale=9, min_width=480):
                        _report_panel(c, samples)
            with gr.Tab("Compare", id="compare"):
                _compare_panel(c, presets)
            with gr.Tab("Export & share", id="export"):
                _export_panel(c)
        _api_components(c)
        _wire(demo, c)
    return demo


def _spec_panel(c: dict, presets: dict[str, Spec], backbones: list[str], default: Spec) -> None:
    with gr.Row():
        c["preset"] = gr.Dropdown([(s.title or n, n) for n, s in presets.items()], value=DEFAULT_PRESET,
                                  label="Preset", scale=3, elem_id="preset")
        c["analyze"] = gr.Button("Analyze", variant="primary", scale=1, min_width=110, elem_id="analyze")
    values = dict(zip(CONTROLS, controls_from_spec(default)))
    c["backbone"] = gr.Dropdown(backbones, value=default.backbone, label="Backbone", allow_custom_value=True,
                                info="the seeds' models and the classics first; any timm name works",
                                elem_id="backbone")
    with gr.Row():
        c["pretrained"] = gr.Checkbox(values["pretrained"], label="pretrained weights", min_width=120)
        c["img_size"] = gr.Number(values["img_size"], label="image size", precision=0, minimum=IMG_SIZE.lo,
                                  maximum=IMG_SIZE.hi, min_width=90)
    with gr.Row():
        c["stem_stride"] = gr.Number(None, label="embedding stride", precision=0, minimum=STEM_STRIDE.lo,
                                     maximum=STEM_STRIDE.hi,
                                     placeholder="default", min_width=80)
        c["stem_kernel"] = gr.Number(None, label="kernel", precision=0, minimum=STEM_KERNEL.lo, maximum=STEM_KERNEL.hi,
                                     placeholder="default", min_width=70)
        c["stem_padding"] = gr.Number(None, label="padding", precision=0, minimum=STEM_PADDING.lo,
                                      maximum=STEM_PADDING.hi,
                                      placeholder="default", min_width=70)
    with gr.Group():
        c["at"] = gr.Dropdown([], label="Stitch at", allow_custom_value=True, elem_id="at",
                              info="a point, shown with its output shape; or type a module path or glob "
                                   "(see the presets)")
        with gr.Row():
            c["modules"] = gr.Dropdown(list(catalog()), value=["se"], multiselect=True, label="module(s)",
                                       scale=3, elem_id="modules")
            c["combine"] = gr.Dropdown(list(COMBINE), value="serial", label="if several", scale=2, min_width=110)
        c["args"] = gr.Textbox(label="args (YAML mapping, optional)", placeholder="{rd_ratio: 0.25}", max_lines=1)
        with gr.Row():
            c["add"] = gr.Button("+ Add", size="sm", variant="secondary", min_width=60, elem_id="add-insert")
            c["remove"] = gr.Button("− Remove", size="sm", min_width=60)
            c["clear"] = gr.Button("Clear", size="sm", min_width=60)
    c["insert"] = gr.Dataframe(values["insert"], headers=INSERT_HEADERS, datatype="str", type="array",
                               interactive=True, label="Insertions (editable)", column_count=3, wrap=True,
                               elem_id="inserts")
    gr.Markdown(INSERT_ROWS_HELP, elem_classes="pg-hint")
    c["selected"] = gr.State(None)
    with gr.Row():
        c["gate"] = gr.Checkbox(values["gate"], label="zero-init gate", min_width=110,
                                info="keeps pretrained outputs unchanged at init")
        c["num_classes"] = gr.Number(values["num_classes"], label="classes", precision=0, minimum=0,
                                     placeholder="keep", min_width=80)
        c["head_norm"] = gr.Dropdown(["none", *HEAD_NORMS], value=values["head_norm"], label="norm before head",
                                     min_width=110)
    with gr.Accordion("Module catalog", open=False):
        gr.Dataframe(catalog_table(), interactive=False, wrap=True, max_height=320)
    c["yaml"] = gr.Code(spec_yaml(default), language="yaml", label="Spec (YAML) · edits here update the controls",
                        lines=12, interactive=True, wrap_lines=True, elem_id="spec-yaml")
    c["status"] = gr.HTML(status_html(default))


def _report_panel(c: dict, samples: list[str]) -> None:
    c["summary"] = gr.HTML('<div class="pg-legend">Analyzing…</div>', elem_id="summary")
    c["warnings"] = gr.HTML("", elem_id="warnings")
    with gr.Tabs():
        with gr.Tab("Breakdown", id="breakdown"):
            c["breakdown_plot"] = gr.Plot(show_label=False, elem_id="breakdown-plot")
            c["inserts_plot"] = gr.Plot(show_label=False, visible=False)
            c["inserts_df"] = gr.Dataframe(interactive=False, label="Stitched modules", visible=False)
        with gr.Tab("Shapes", id="shapes"):
            c["shapes_plot"] = gr.Plot(show_label=False)
            c["shapes_df"] = gr.Dataframe(interactive=False, label="Feature maps (stages and insertion points)")
        with gr.Tab("Module tree", id="tree"):
            c["tree"] = gr.HTML(elem_id="tree")
            with gr.Accordion("Changes against the base backbone (diff)", open=False):
                c["diff"] = gr.HTML()
        with gr.Tab("Layer table", id="layers"):
            c["layers"] = gr.HTML()
        with gr.Tab("Latency", id="latency"):
            with gr.Row():
                c["device"] = gr.Dropdown(list(DEVICES), value="auto", label="device", min_width=90)
                c["batch"] = gr.Number(1, label="batch", precision=0, minimum=BATCH.lo, maximum=BATCH.hi, min_width=80)
                c["dtype"] = gr.Dropdown(list(DTYPES), value="fp32", label="precision", min_width=90)
                c["channels_last"] = gr.Checkbox(False, label="channels_last", min_width=100)
                c["compile"] = gr.Checkbox(False, label="torch.compile", min_width=100)
            c["measure"] = gr.Button("Measure latency", variant="primary", elem_id="measure")
            gr.Markdown("Median of timed blocks (torch.utils.benchmark), stitched model and base backbone; "
                        "one measurement runs at a time on this server.", elem_classes="pg-hint")
            c["latency_html"] = gr.HTML(latency_html(None, None))
            c["latency_plot"] = gr.Plot(show_label=False)
        with gr.Tab("Predictions", id="predictions"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=220):
                    c["image"] = photo_input(label="Photo", sources=["upload", "clipboard"],
                                          height=240, elem_id="photo")
                    gr.Examples([[p] for p in samples], inputs=[c["image"]], label="Sample photos (scikit-image)",
                                cache_examples=False)
                    c["topk"] = gr.Slider(TOPK.lo, 10, value=5, step=1, label="top-k")
                with gr.Column(scale=3):
                    c["pred_plot"] = gr.Plot(show_label=False)
                    c["pred_md"] = gr.Markdown(predictions_md(None),
                                               elem_id="pred-md")
        with gr.Tab("Report JSON", id="json"):
            c["json"] = gr.JSON(label="Report (the JSON contract of the CLI and the API)")


def _compare_panel(c: dict, presets: dict[str, Spec]) -> None:
    gr.Markdown("Two specs side by side. Predictions are compared on the sample photos (chelsea, coffee).")
    with gr.Row():
        for side, preset in (("a", None), ("b", "se_resnet50")):
            with gr.Column():
                text = spec_yaml(presets[preset]) if preset in presets else "backbone: resnet50\n"
                c[f"cmp_{side}"] = gr.Code(text, language="yaml", label=f"Spec {side.upper()}", lines=8,
                                           interactive=True)
                with gr.Row():
                    c[f"cmp_{side}_preset"] = gr.Dropdown([(s.title or n, n) for n, s in presets.items()],
                                                          value=None, label="load a preset", scale=2)
                    c[f"cmp_{side}_copy"] = gr.Button("← playground spec", size="sm", scale=1)
    with gr.Row():
        c["cmp_latency"] = gr.Checkbox(False, label="also measure latency (CPU/GPU time: slower)")
        c["cmp_run"] = gr.Button("Compare", variant="primary")
    with gr.Row(equal_height=False):
        c["cmp_metrics"] = gr.Dataframe(interactive=False, label="Totals")
        c["cmp_shapes"] = gr.Dataframe(interactive=False, label="Feature-map shapes")
    c["cmp_plot"] = gr.Plot(show_label=False)
    c["cmp_preds"] = gr.Dataframe(interactive=False, label="Prediction agreement")


def _export_panel(c: dict) -> None:
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### Export\nThe spec of the Playground tab, or the stitched model built from it.")
            c["fmt"] = gr.Radio(list(EXPORTS), value=next(iter(EXPORTS)), label="format")
            c["export"] = gr.Button("Export", variant="primary")
            c["export_status"] = gr.Markdown()
            c["export_file"] = gr.File(label="download", interactive=False)
        with gr.Column():
            gr.Markdown("### Share\nA link that opens this page with the same spec.")
            c["share"] = gr.Button("Make a share link")
            c["share_url"] = gr.Textbox(label="link", buttons=["copy"], interactive=False, elem_id="share-url")
            gr.Markdown("### Rebuild in Python")
            c["snippet"] = gr.Code(language="python", label="snippet", interactive=False, lines=8)


def _api_components(c: dict) -> None:
    """Hidden inputs of the `predict` endpoint: an image component, so uploads are checked like the page's."""
    with gr.Row(visible=False):
        c["api_spec"] = gr.Textbox()
        c["api_image"] = photo_input()
        c["api_topk"] = gr.Number(5, precision=0)
        c["api_out"] = gr.Textbox()
        c["api_go"] = gr.Button()


def _wire(demo: gr.Blocks, c: dict) -> None:
    """Events: spec sync, actions, page load, API endpoints."""
    private = dict(api_visibility="private")
    controls = [c[k] for k in CONTROLS]
    report_out = [c[k] for k in REPORT_OUTPUTS]
    analyze_in = [c["yaml"], c["image"], c["topk"]]

    # controls -> YAML (user edits only: `.input`), YAML -> controls
    gr.on([c[k].input for k in CONTROLS], on_controls,
          [c["yaml"], *controls], [c["yaml"], c["status"], c["img_size"]], trigger_mode="always_last", **private)
    c["yaml"].input(on_yaml, c["yaml"], [*controls, c["status"]], trigger_mode="always_last", **private)
    c["preset"].input(preset_yaml, c["preset"], c["yaml"], **private).then(
        on_yaml, c["yaml"], [*controls, c["status"]], **private)
    gr.on([c[k].change for k in ("backbone", "img_size", "stem_stride", "stem_kernel", "stem_padding")], on_points,
          [c["backbone"], c["img_size"], c["stem_stride"], c["stem_kernel"], c["stem_padding"], c["at"]], c["at"],
          trigger_mode="always_last", **private)

    # the insertion editor
    def sync(dep):
        return dep.then(on_controls, [c["yaml"], *controls], [c["yaml"], c["status"], c["img_size"]], **private)
    sync(c["add"].click(user_errors(add_row), [c["insert"], c["at"], c["modules"], c["combine"], c["args"]],
                        c["insert"], **private))
    sync(c["remove"].click(remove_row, [c["insert"], c["selected"]], c["insert"], **private)).then(
        lambda: None, None, c["selected"], **private)
    sync(c["clear"].click(lambda: [], None, c["insert"], **private))

    def select_row(evt: gr.SelectData) -> int | None:
        return evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    c["insert"].select(select_row, None, c["selected"], **private)

    # actions
    c["analyze"].click(analyze_ui, analyze_in, report_out, concurrency_id="analyze", **private)
    c["image"].change(predict_ui, analyze_in, [c["pred_plot"], c["pred_md"]], concurrency_id="analyze",
                      trigger_mode="always_last", **private)
    c["measure"].click(latency_ui, [c["yaml"], c["device"], c["batch"], c["dtype"], c["channels_last"],
                                    c["compile"]], [c["summary"], c["latency_html"], c["latency_plot"]],
                       concurrency_id=LATENCY_GROUP, concurrency_limit=1, **private)
    for side in ("a", "b"):
        c[f"cmp_{side}_preset"].input(preset_yaml, c[f"cmp_{side}_preset"], c[f"cmp_{side}"], **private)
        c[f"cmp_{side}_copy"].click(lambda t: t, c["yaml"], c[f"cmp_{side}"], **private)
    c["cmp_run"].click(compare_ui, [c["cmp_a"], c["cmp_b"], c["cmp_latency"]],
                       [c["cmp_metrics"], c["cmp_shapes"], c["cmp_plot"], c["cmp_preds"]],
                       concurrency_id=LATENCY_GROUP, concurrency_limit=1, **private)
    c["export"].click(export_ui, [c["yaml"], c["fmt"]], [c["export_file"], c["export_status"]],
                      concurrency_id="export", concurrency_limit=1, **private)
    c["share"].click(share_ui, c["yaml"], c["share_url"], **private).then(
        None, c["share_url"], c["share_url"], js="(q) => q ? window.location.origin + window.location.pathname + q : q",
        **private)
    gr.on([c["yaml"].change], snippet_ui, c["yaml"], c["snippet"], trigger_mode="always_last", **private)

    # page load: a shared spec or the default preset, then its report
    demo.load(on_load, None, [c["yaml"], c["preset"]], **private).then(
        on_yaml, c["yaml"], [*controls, c["status"]], **private).then(
        analyze_ui, analyze_in, report_out, concurrency_id="analyze", **private)

    # named API endpoints
    gr.api(user_errors(api_analyze), api_name="analyze", concurrency_id=LATENCY_GROUP, concurrency_limit=1)
    c["api_go"].click(user_errors(api_predict), [c["api_spec"], c["api_image"], c["api_topk"]], c["api_out"],
                      api_name="predict", concurrency_id="analyze")
    gr.api(user_errors(api_points), api_name="points")
    gr.api(user_errors(api_presets), api_name="presets")
    gr.api(user_errors(api_compare), api_name="compare", concurrency_id=LATENCY_GROUP, concurrency_limit=1)


def launch_kwargs() -> dict:
    """What `launch()` needs besides the address: theme, CSS, upload limit, the sample photos' folder."""
    return dict(theme=THEME, css=CSS, max_file_size=MAX_UPLOAD, allowed_paths=[str(sample_dir())],
                footer_links=["api", "settings"])


def warm_up() -> None:
    """Analyze the default preset once (weights conversion, imports), so the first page load is quick."""
    try:
        analyze(load_preset(DEFAULT_PRESET))
        from .build import points
        points(load_preset(DEFAULT_PRESET).backbone)
    except Exception:  # warming is best effort; the page reports real errors
        log.exception("warm-up failed")
