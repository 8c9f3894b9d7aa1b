"""The page's spec <-> controls mapping, share links and the insertion editor's rows: plain values, no Gradio.

The spec is the page's one source of truth: the controls (`Controls`) and the YAML editor are two views of it.
`spec_from_controls` reads the controls back into a spec, `controls_from_spec` shows a spec in them, `spec_yaml`
writes it for the editor, and `parse_spec` reads the editor (or a preset name, or an API argument) back.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from ..catalog import catalog
from ..choices import MERGES
from ..errors import SpecError
from ..presets import load_preset, preset_files, preset_name
from ..spec import MAX_SPEC_BYTES, Spec, StemSpec, load_spec, parse_text
from ..sweep.presets import load_sweep_preset, sweep_preset_files
from ..sweep.spec import SweepSpec, load_sweep
from . import backbones

__all__ = ["Controls", "parse_spec", "parse_sweep", "encode_spec", "decode_spec", "spec_yaml", "controls_from_spec",
           "spec_from_controls", "inserts_to_rows", "rows_to_inserts", "add_row", "remove_row", "point_choices",
           "menu_spec", "matching_preset", "preset_yaml", "pretrained_note", "untick_unavailable", "tolerant", "CUSTOM",
           "COMBINE"]

CUSTOM = "custom"  # the preset menu's value when the spec is no preset
COMBINE = ("serial",) + tuple(f"parallel · {m}" for m in MERGES)  # the editor's "if several" menu
_ORDER = ("title", "description", "backbone", "pretrained", "checkpoint", "num_classes", "img_size", "stem",
          "insert", "gate", "head_norm", "drop_path_rate")


# ---- specs from the page: YAML text or a preset name, never a server file path

def parse_spec(text: str) -> Spec:
    """A Spec from YAML text or a preset name, its backbone checked against timm's names (which a worker sent;
    the library checks them when it builds). Text from a browser or an API call is only ever parsed: it can name no
    file on the server (no spec file, no `checkpoint`)."""
    text = text or ""
    if text.strip() in preset_files():
        return load_preset(text.strip())
    spec = Spec.from_dict(parse_text(text))
    backbones.check(spec.backbone)
    if spec.checkpoint:
        raise SpecError("checkpoint: the web app loads no files from the server; use pretrained: true here, or "
                        "a local checkpoint with the CLI or Python (python -m playground report SPEC)")
    return spec


def parse_sweep(text: str) -> SweepSpec:
    """A SweepSpec from YAML text or a sweep preset's name, as `parse_spec` reads a spec: nothing names a server
    file (no `checkpoint` in the base or on an axis)."""
    text = text or ""
    name = text.strip()
    sweep = load_sweep_preset(name) if name in sweep_preset_files() else load_sweep(text)
    if sweep.base.get("checkpoint") or any(a.split(".")[0].split("[")[0] == "checkpoint" for a in sweep.axes):
        raise SpecError("checkpoint: the web app loads no files from the server; sweep pretrained: true here, or "
                        "local checkpoints with the CLI or Python (python -m playground sweep SWEEP)")
    return sweep


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


# ---- YAML for the editor

def _flow(data: Any) -> str:
    """One-line YAML for a table cell: `se`, `{serial: [se, eca]}`, `{rd_ratio: 0.25}`."""
    if data is None or data == {}:
        return ""
    if isinstance(data, str):
        return data
    return yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=10_000).strip()


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


def preset_yaml(name: str) -> str:
    return spec_yaml(load_preset(name))


def matching_preset(spec: Spec | None) -> str:
    """The preset this spec is (title included), else CUSTOM: what the preset menu shows."""
    return preset_name(spec) or CUSTOM


# ---- the controls

def _opt_int(v: Any) -> int | float | None:
    """A number control's value as an int, or None when empty (a fractional value is kept for validation to name)."""
    if v is None or v == "":
        return None
    f = float(v)
    return int(f) if f.is_integer() else f


@dataclasses.dataclass
class Controls:
    """What the spec panel's controls show (one field per control, in the panel's order)."""
    backbone: str
    pretrained: bool
    img_size: int | None
    stem_stride: int | None
    stem_kernel: int | None
    stem_padding: int | None
    insert: list[list[str]]
    gate: bool
    num_classes: int | None
    head_norm: str

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def values(self) -> list[Any]:
        return [getattr(self, n) for n in self.names()]


def controls_from_spec(spec: Spec, default_size: Callable[[str], int | None] = backbones.default_size) -> Controls:
    """The control values that show a spec; the image size control shows the backbone's default when the spec
    gives none (`default_size`: building the page passes one that asks no worker)."""
    return Controls(spec.backbone, spec.pretrained, spec.img_size or default_size(spec.backbone),
                    spec.stem.stride, spec.stem.kernel, spec.stem.padding,
                    inserts_to_rows(spec.to_dict().get("insert", [])), spec.gate, spec.num_classes,
                    spec.head_norm or "none")


def tolerant(text: str) -> dict:
    """The spec text as data, or {} when it does not parse (yet)."""
    try:
        data = parse_text(text or "")
    except SpecError:
        return {}
    return data if isinstance(data, dict) else {}


def _default_size(backbone: str | None) -> int | None:
    return backbones.default_size(backbone) if isinstance(backbone, str) and backbone else None


def _same_spec(a: dict, b: dict) -> bool:
    strip = ("title", "description")
    try:
        return load_spec({k: v for k, v in a.items() if k not in strip}) == load_spec(
            {k: v for k, v in b.items() if k not in strip})
    except SpecError:
        return False


def spec_from_controls(text: str, c: Controls) -> dict:
    """The spec the controls describe, as data; fields without a control (title, ...) are kept from `text`.

    The image size is left out when it is the backbone's default (or the old backbone's, after a change of
    backbone). A title and description go once the spec is no longer the one they were written for.
    """
    old = tolerant(text)
    data: dict[str, Any] = {k: v for k, v in old.items() if k not in _ORDER or k in
                            ("title", "description", "checkpoint", "drop_path_rate")}
    data["backbone"] = (c.backbone or "").strip()
    data["pretrained"] = bool(c.pretrained)
    size = _opt_int(c.img_size)
    if size is not None and size not in (_default_size(data["backbone"]), _default_size(old.get("backbone"))):
        data["img_size"] = size
    data["stem"] = {k: v for k, v in (("stride", _opt_int(c.stem_stride)), ("kernel", _opt_int(c.stem_kernel)),
                                      ("padding", _opt_int(c.stem_padding))) if v is not None}
    data["insert"] = rows_to_inserts(c.insert)
    data["gate"] = bool(c.gate)
    data["num_classes"] = _opt_int(c.num_classes) or None
    data["head_norm"] = None if c.head_norm in (None, "", "none") else c.head_norm
    if "title" in data and not _same_spec(data, old):
        data.pop("title", None), data.pop("description", None)
    return {k: data[k] for k in _ORDER if k in data} | {k: v for k, v in data.items() if k not in _ORDER}


def pretrained_note(spec: Spec) -> str | None:
    """Why this spec's `pretrained: true` cannot load weights here (one line), else None."""
    return backbones.pretrained_unavailable(spec.backbone) if spec.pretrained and not spec.checkpoint else None


# ---- the insertion editor's rows [at, module, args]

def inserts_to_rows(inserts: Sequence[dict]) -> list[list[str]]:
    """The spec's `insert` list as editor rows [at, module, args]."""
    return [[str(i["at"]), _flow(i["module"]), _flow(i.get("args"))] for i in inserts]


def _row_list(rows: Any) -> list[list[str]]:
    """Editor rows (lists, or the DataFrame Gradio may hand over) as lists of strings, blank rows dropped."""
    if hasattr(rows, "values") and hasattr(rows.values, "tolist"):
        rows = rows.values.tolist()
    return [[("" if c is None else str(c)) for c in r] for r in (rows or [])
            if any(str(c).strip() for c in r if c is not None)]


def rows_to_inserts(rows: Any) -> list[dict]:
    """Editor rows back to `insert` entries; blank rows are skipped, a bad cell is a SpecError naming its row."""
    out = []
    for n, row in enumerate(_row_list(rows), 1):
        at, module, args = [c.strip() for c in (row + ["", "", ""])[:3]]
        entry: dict[str, Any] = {"at": at, "module": parse_text(module) if module else None}
        if args:
            entry["args"] = parse_text(args)
        if not at or entry["module"] is None:
            raise SpecError(f"insertion row {n}: needs a position (`at`) and a module")
        out.append(entry)
    return out


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


def remove_row(rows: Any, index: int | None) -> list[list[str]]:
    """Drop the selected row (the last one when none is selected)."""
    rows = _row_list(rows)
    if not rows:
        return rows
    i = index if isinstance(index, int) and 0 <= index < len(rows) else len(rows) - 1
    return rows[:i] + rows[i + 1:]


# ---- the position menu

def _shape_label(p: dict) -> str:
    s = p["shape"][1:]
    if p["layout"] == "NLC":
        return f"{s[0]} tokens × {s[1]}"
    return "×".join(map(str, s)) + ("" if p["layout"] == "NCHW" else f" ({p['layout']})")


_STAGE_BLOCK = re.compile(r"(stage\d+)\.block\d+")


def menu_spec(backbone: str, img_size: Any = None, stride: Any = None, kernel: Any = None,
              padding: Any = None) -> Spec:
    """The spec whose points the position menu lists: the backbone after its stem change (validated)."""
    stem = StemSpec(_opt_int(stride), _opt_int(kernel), _opt_int(padding))
    return load_spec(Spec(backbone=backbone, img_size=_opt_int(img_size), stem=stem).to_dict())


def point_choices(pts: list[dict]) -> list[tuple[str, str]]:
    """Insertion positions (points as dicts, in forward order) as (label with shape, point name) pairs, as a
    tree: each `stage<i>` (its output) heads its blocks, then `stage<i>.block*` (after every block of the stage).

    A name comes before every longer name that contains it, so a menu that filters by substring and takes the
    first match on Enter gives `stage3` for "stage3", not `stage3.block1`.
    """
    by_name = {p["name"]: p for p in pts}
    out: list[tuple[str, str]] = []
    listed: set[str] = set()

    def add(name: str, label: str) -> None:
        if name not in listed:
            listed.add(name)
            out.append((f"{name}  ·  {label}", name))
    for k, p in enumerate(pts):
        m = _STAGE_BLOCK.fullmatch(p["name"])
        stage = m.group(1) if m else None
        if stage in by_name:
            add(stage, _shape_label(by_name[stage]))  # the stage heads its blocks
        add(p["name"], _shape_label(p))
        nxt = pts[k + 1]["name"] if k + 1 < len(pts) else ""
        if stage and not nxt.startswith(stage + ".block"):
            add(f"{stage}.block*", f"after every block of {stage}")
    return out


def untick_unavailable(data: dict, old: dict) -> str | None:
    """After a change of backbone with `pretrained` ticked: untick it when the new backbone's weights cannot be had
    here, and say why (one line); else None. A user who switches from a pretrained preset to ViT-B/16 offline gets
    a random-init model and a note, not a failed Analyze."""
    backbone = data.get("backbone")
    if not data.get("pretrained") or data.get("checkpoint") or backbone == old.get("backbone") \
            or not isinstance(backbone, str) or not backbones.known(backbone):
        return None
    why = backbones.pretrained_unavailable(backbone)
    if why:
        data["pretrained"] = False
        return f"pretrained unticked: {why}"
    return None
