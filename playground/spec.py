"""The spec: what to build, as validated dataclasses loaded from YAML, JSON or a dict.

    title: SE-ResNet-50
    backbone: resnet50
    insert:
      - at: "layer*.*.bn3"
        module: se
        args: {rd_ratio: 0.0625}
      - at: stage3
        module: {serial: [se, eca]}
      - at: final
        module: {parallel: [se, {name: eca, args: {kernel_size: 5}}], merge: concat}

Specs are plain data: loaded with `yaml.safe_load`, every name is looked up in a registry (the module catalog, the
head-norm table, timm's model registry), so a spec can never name an arbitrary Python object. Every problem is a
`SpecError` whose one line names the field, the bad value and what is allowed. Module names and arguments are
checked here, from data (`playground.catalog`, `playground.choices`), so parsing a spec imports no torch: the web
server parses specs and never imports it. The backbone name (timm's registry) and the points (which depend on the
backbone's shapes) are checked by the builder, in a worker for the web app.
"""
from __future__ import annotations

import json
import pprint
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .catalog import check_args, get_info
from .choices import HEAD_NORMS, IMG_SIZE, MERGES, NUM_CLASSES, STEM_KERNEL, STEM_PADDING, STEM_STRIDE
from .errors import SpecError, close_matches, first_line

__all__ = ["Spec", "StemSpec", "InsertSpec", "Leaf", "Composite", "ModuleSpec", "load_spec", "parse_text",
           "parse_module", "module_to_data", "module_label", "module_count", "spec_key"]

MAX_SPEC_BYTES = 256 * 1024
MAX_INSERTS = 64
MAX_MODULE_DEPTH = 4  # composites nested in composites, at most this deep
MAX_MODULE_LEAVES = 16  # catalog modules in one insertion's module (YAML anchors make nesting exponential)


@dataclass(frozen=True)
class Leaf:
    """A catalog module with its arguments."""
    name: str
    args: dict = field(default_factory=dict)

    def __hash__(self):
        return hash((self.name, json.dumps(self.args, sort_keys=True)))


@dataclass(frozen=True)
class Composite:
    """Modules in series (`serial`) or in parallel merged by add, mul or concat."""
    kind: str  # 'serial' | 'parallel'
    items: tuple
    merge: str | None = None  # parallel only


ModuleSpec = Leaf | Composite


@dataclass(frozen=True)
class StemSpec:
    """The embedding: stride, and optionally kernel and padding, of the first downsampling conv."""
    stride: int | None = None
    kernel: int | None = None
    padding: int | None = None

    def is_default(self) -> bool:
        return self.stride is None and self.kernel is None and self.padding is None


@dataclass(frozen=True)
class InsertSpec:
    at: str
    module: ModuleSpec


@dataclass(frozen=True)
class Spec:
    backbone: str
    title: str | None = None
    description: str | None = None
    pretrained: bool = False
    checkpoint: str | None = None
    num_classes: int | None = None
    img_size: int | None = None  # None: the backbone's default input size
    stem: StemSpec = StemSpec()
    insert: tuple = ()
    gate: bool = False
    reparameterize: bool = False  # timm's reparameterize_model: the fused deploy form (RepVGG, MobileOne, FastViT)
    head_norm: str | None = None
    drop_path_rate: float | None = None

    def to_dict(self) -> dict:
        """Plain data; fields at their defaults are left out. `Spec.from_dict(s.to_dict()) == s`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v == f.default or (f.name == "insert" and not v):
                continue
            if f.name == "stem":
                v = {k: x for k, x in vars(v).items() if x is not None}
            elif f.name == "insert":
                v = [_insert_to_dict(i) for i in v]
            out[f.name] = v
        return out

    def changes_backbone(self) -> bool:
        """Whether the built model differs from the unmodified backbone (the "base"): stitched modules, a stem
        change, a head norm, another head width or drop-path rate. The one predicate the builder, the analysis
        and the page use."""
        return (bool(self.insert) or not self.stem.is_default() or bool(self.head_norm)
                or self.num_classes is not None or self.drop_path_rate is not None)

    def changes_only_by_insertion(self) -> bool:
        """Whether every difference from the base that costs params or MACs is a stitched module."""
        return self.stem.is_default() and not self.head_norm and self.num_classes is None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, allow_unicode=True)

    def to_python(self) -> str:
        """Python that rebuilds the model with the builder (the page's and the export's snippet)."""
        data = pprint.pformat(self.to_dict(), sort_dicts=False, width=100)
        return ("import playground as pg\n\n"
                f"built = pg.build({data})\n"
                "model = built.model  # the stitched model, eval mode; built.base is the unmodified backbone\n"
                "for ins in built.insertions:  # where each module went\n"
                "    print(ins.point.name, ins.path, ins.label, ins.params)\n")

    @classmethod
    def from_dict(cls, data: Any) -> Spec:
        return _parse_spec(data)


def spec_key(spec: Spec) -> str:
    """The normalised spec as JSON text with sorted keys: equal specs, equal keys (the caches' key)."""
    return json.dumps(spec.to_dict(), sort_keys=True)


# ---- loading

def read_spec_file(path: Path, what: str) -> str:
    """The text of a spec (or sweep) file the user named, at most MAX_SPEC_BYTES; one line if it cannot be had."""
    if not path.is_file():
        raise SpecError(f"{what} file {str(path)!r} does not exist")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{what} file {path.name!r} is larger than {MAX_SPEC_BYTES // 1024} KiB")
    return path.read_text(encoding="utf-8", errors="replace")


def load_spec(source: str | Path | dict | Spec) -> Spec:
    """A Spec from a Spec, a dict, YAML/JSON text, or a file given as a `pathlib.Path`.

    A `str` is always text, never a file name: specs from the UI or the API cannot make the server read files.
    """
    if isinstance(source, Spec):
        return source
    if isinstance(source, dict):
        return _parse_spec(source)
    if isinstance(source, Path):
        source = read_spec_file(source, "spec")
    if not isinstance(source, str):
        raise SpecError(f"spec: expected YAML text, a pathlib.Path or a mapping, got {type(source).__name__}")
    data = parse_text(source)
    if isinstance(data, str) and data.strip().endswith((".yaml", ".yml", ".json")):
        raise SpecError(f"spec: {data!r} is text, not a spec; to load a file pass pathlib.Path({data!r})")
    return _parse_spec(data)


def parse_text(text: str) -> Any:
    """YAML (a superset of JSON) to plain data, safely."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SPEC_BYTES:
        raise SpecError(f"spec: larger than {MAX_SPEC_BYTES // 1024} KiB")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"spec: not valid YAML{where}: {problem}") from None
    except RecursionError:  # the parser recurses per level: `[[[[...]]]]` thousands deep
        raise SpecError("spec: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as e:  # a constructor's own limit: an integer of more than 4300 digits
        raise SpecError(f"spec: not valid YAML: {first_line(e)}") from None


# ---- validation

_FIELDS = {f.name for f in fields(Spec)}
_STEM_FIELDS = ("stride", "kernel", "padding")


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _int(v: Any, where: str, lo: int, hi: int, optional: bool = True) -> int | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(f"{where}: {v!r} is not an integer ({lo} to {hi}{', or null' if optional else ''})")
    if not lo <= v <= hi:
        raise SpecError(f"{where}: {v} is out of range; allowed: {lo} to {hi}")
    return v


def _str(v: Any, where: str, optional: bool = True, max_len: int = 200) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"{where}: {v!r} is not a non-empty string")
    if len(v) > max_len:
        raise SpecError(f"{where}: longer than {max_len} characters")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise SpecError(f"{where}: {v!r} is not true or false")
    return v


def _mapping(v: Any, where: str, allowed) -> dict:
    if not isinstance(v, dict):
        raise SpecError(f"{where}: expected a mapping, got {_type_name(v)} {v!r}"[:300])
    for k in v:
        if k not in allowed:
            raise SpecError(f"{where}: unknown key {k!r}{close_matches(str(k), allowed)}; "
                            f"allowed: {', '.join(allowed)}")
    return v


def _parse_spec(data: Any) -> Spec:
    if data is None:
        raise SpecError("spec: empty; at least `backbone: <timm model name>` is required")
    d = _mapping(data, "spec", [f.name for f in fields(Spec)])
    if "backbone" not in d:
        raise SpecError("spec: `backbone` is required (a timm model name such as resnet50)")
    stem = _mapping(d.get("stem") or {}, "stem", _STEM_FIELDS)
    inserts = d.get("insert") or []
    if not isinstance(inserts, list):
        raise SpecError(f"insert: expected a list of {{at, module, args}}, got {_type_name(inserts)}")
    if len(inserts) > MAX_INSERTS:
        raise SpecError(f"insert: {len(inserts)} entries; at most {MAX_INSERTS}")
    dpr = d.get("drop_path_rate")
    if dpr is not None and (isinstance(dpr, bool) or not isinstance(dpr, (int, float)) or not 0 <= dpr < 1):
        raise SpecError(f"drop_path_rate: {dpr!r} is not a number in [0, 1), or null")
    return Spec(
        backbone=_str(d["backbone"], "backbone", optional=False),
        title=_str(d.get("title"), "title"),
        description=_str(d.get("description"), "description", max_len=2000),
        pretrained=_bool(d.get("pretrained", False), "pretrained"),
        checkpoint=_str(d.get("checkpoint"), "checkpoint", max_len=1000),
        num_classes=_int(d.get("num_classes"), "num_classes", *NUM_CLASSES),
        img_size=_int(d.get("img_size"), "img_size", *IMG_SIZE),
        stem=StemSpec(
            stride=_int(stem.get("stride"), "stem.stride", *STEM_STRIDE),
            kernel=_int(stem.get("kernel"), "stem.kernel", *STEM_KERNEL),
            padding=_int(stem.get("padding"), "stem.padding", *STEM_PADDING),
        ),
        insert=tuple(_parse_insert(x, f"insert[{i}]") for i, x in enumerate(inserts)),
        gate=_bool(d.get("gate", False), "gate"),
        reparameterize=_bool(d.get("reparameterize", False), "reparameterize"),
        head_norm=_head_norm(d.get("head_norm")),
        drop_path_rate=float(dpr) if dpr is not None else None,
    )


def _head_norm(v: Any) -> str | None:
    if v is not None and v not in HEAD_NORMS:
        raise SpecError(f"head_norm: {v!r} is not one of {', '.join(HEAD_NORMS)}, or null")
    return v


def _parse_insert(x: Any, where: str) -> InsertSpec:
    d = _mapping(x, where, ("at", "module", "args"))
    if "at" not in d or "module" not in d:
        raise SpecError(f"{where}: needs `at` (a point name or glob) and `module` (e.g. se)")
    at = _str(d["at"], f"{where}.at", optional=False)
    module = parse_module(d["module"], f"{where}.module")
    if "args" in d and d["args"] is not None:
        if not isinstance(module, Leaf):
            raise SpecError(f"{where}.args: arguments of a composite go on its items, "
                            f"as {{name: se, args: {{...}}}}")
        if module.args:
            raise SpecError(f"{where}.args: given twice (in module and in args)")
        module = _leaf(module.name, d["args"], f"{where}.args")
    return InsertSpec(at, module)


def module_count(m: ModuleSpec) -> int:
    """How many catalog modules a module spec makes."""
    return 1 if isinstance(m, Leaf) else sum(module_count(x) for x in m.items)


def parse_module(m: Any, where: str, depth: int = 0) -> ModuleSpec:
    """`se` | `{name: se, args: {...}}` | `{serial: [...]}` | `{parallel: [...], merge: add|mul|concat}`.

    Composites nest at most MAX_MODULE_DEPTH deep and hold at most MAX_MODULE_LEAVES catalog modules.
    """
    if isinstance(m, str):
        return _leaf(m, {}, where)
    if not isinstance(m, dict):
        raise SpecError(f"{where}: expected a module name or a mapping, got {_type_name(m)}")
    if "name" in m:
        _mapping(m, where, ("name", "args"))
        return _leaf(_str(m["name"], f"{where}.name", optional=False), m.get("args") or {}, f"{where}.args")
    kinds = [k for k in ("serial", "parallel") if k in m]
    if len(kinds) != 1:
        raise SpecError(f"{where}: a composite is {{serial: [...]}} or {{parallel: [...], merge: ...}}, "
                        f"got keys {', '.join(map(str, m)) or 'none'}")
    kind = kinds[0]
    _mapping(m, where, (kind, "merge") if kind == "parallel" else (kind,))
    if depth >= MAX_MODULE_DEPTH:
        raise SpecError(f"{where}: composites nested more than {MAX_MODULE_DEPTH} deep")
    items = m[kind]
    if not isinstance(items, list) or not 1 <= len(items) <= 8:
        raise SpecError(f"{where}.{kind}: expected a list of 1 to 8 modules")
    merge = None
    if kind == "parallel":
        merge = m.get("merge", "add")
        if merge not in MERGES:
            raise SpecError(f"{where}.merge: {merge!r} is not one of {', '.join(MERGES)}")
    out = Composite(kind, tuple(parse_module(x, f"{where}.{kind}[{i}]", depth + 1) for i, x in enumerate(items)),
                    merge)
    if module_count(out) > MAX_MODULE_LEAVES:
        raise SpecError(f"{where}: {module_count(out)} modules in one composite; at most {MAX_MODULE_LEAVES}")
    return out


def _leaf(name: str, args: Any, where: str) -> Leaf:
    info = get_info(name, where)
    if not isinstance(args, dict):
        raise SpecError(f"{where}: arguments must be a mapping, got {_type_name(args)}")
    check_args(info, args, where)
    return Leaf(name, dict(args))


def module_to_data(m: ModuleSpec) -> Any:
    if isinstance(m, Leaf):
        return {"name": m.name, "args": dict(m.args)} if m.args else m.name
    out: dict[str, Any] = {m.kind: [module_to_data(x) for x in m.items]}
    if m.kind == "parallel":
        out["merge"] = m.merge
    return out


def _insert_to_dict(i: InsertSpec) -> dict:
    if isinstance(i.module, Leaf) and i.module.args:
        return {"at": i.at, "module": i.module.name, "args": dict(i.module.args)}
    return {"at": i.at, "module": module_to_data(i.module)}


def module_label(m: ModuleSpec) -> str:
    """Short human label: `se`, `eca(kernel_size=5)`, `serial[se, eca]`, `parallel[se, eca](concat)`."""
    if isinstance(m, Leaf):
        args = ", ".join(f"{k}={v}" for k, v in m.args.items())
        return f"{m.name}({args})" if args else m.name
    inner = ", ".join(module_label(x) for x in m.items)
    return f"{m.kind}[{inner}]" + (f"({m.merge})" if m.kind == "parallel" else "")
