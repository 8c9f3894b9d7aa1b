"""Export a spec or its model: the spec as YAML, a Python snippet that rebuilds it, TorchScript, ONNX, safetensors.

An ONNX file is verified before it is returned (`playground.onnx_export`): `onnx.checker`, then onnxruntime against
torch on a real photo; `ExportResult.check` says how far they differ. Every failure (an export the model cannot
take, a missing optional package) is a one-line SpecError.

This module imports no torch until it writes a model: the page's server unpickles an `ExportResult`.
"""
from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .choices import EXPORT_FORMATS
from .compute import COMPUTE
from .errors import SpecError, close_matches, first_line
from .spec import Spec

if TYPE_CHECKING:
    from .build import Built

__all__ = ["export", "ExportResult", "OnnxCheck", "onnx_missing", "FORMATS", "ONNX_PACKAGES"]

FORMATS = EXPORT_FORMATS
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # the `onnx` extra: export, its translation, its check
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class OnnxCheck:
    """How an ONNX file was verified: `onnx.checker` passed, and onnxruntime's outputs on `images` differ from
    torch's by at most `max_abs_diff` (`ok` when within `tolerance`)."""
    max_abs_diff: float
    tolerance: float
    images: tuple[str, ...]  # the photos run, at batch 1 (the first) and, with a dynamic batch, all together
    top1: str | None  # onnxruntime's top class on the first photo, for a classifier
    top1_agree: bool  # the same top class as torch
    opset: int
    onnxruntime: str  # its version
    providers: tuple[str, ...]
    dynamic_batch: bool

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def line(self) -> str:
        """One line for the CLI, the page and Python, e.g. "ONNX verified: max |diff| 3.8e-06 on chelsea, coffee
        (top-1 tabby; onnxruntime 1.32.0, opset 20, dynamic batch)"."""
        top = f"top-1 {self.top1}{'' if self.top1_agree else ' (torch: another class)'}; " if self.top1 else ""
        where = (f"on {', '.join(self.images)} ({top}onnxruntime {self.onnxruntime}, opset {self.opset}, "
                 f"{'dynamic batch' if self.dynamic_batch else 'batch 1 only'})")
        if self.ok:
            return f"ONNX verified: max |diff| {self.max_abs_diff:.1e} {where}"
        return (f"ONNX parity FAILED: max |diff| {self.max_abs_diff:.1e} is over the tolerance "
                f"{self.tolerance:.0e} {where}: onnxruntime does not compute what torch does")


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote: `path`, every file that belongs to it (`files`: an ONNX model over 2 GB keeps its
    weights beside it in `<path>.data`), and for ONNX how it was verified."""
    path: Path
    fmt: str
    files: tuple[Path, ...]
    check: OnnxCheck | None = None

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def onnx_missing() -> str | None:
    """Why ONNX export is impossible here, or None."""
    missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        return (f"ONNX export needs the {' and '.join(missing)} package{'s' if len(missing) > 1 else ''}, not "
                f"installed here (pip install onnx onnxscript onnxruntime); TorchScript and safetensors work "
                f"without them")
    return None


def _write(built: Built, fmt: str, path: Path, progress: Progress) -> OnnxCheck | None:
    import torch
    model = built.model.eval()
    if fmt == "onnx":
        from .onnx_export import export_onnx
        return export_onnx(model, built.img_size, path, progress)
    if fmt == "torchscript":
        x = torch.zeros(1, 3, built.img_size, built.img_size)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about python-side shape arithmetic
            torch.jit.save(torch.jit.trace(model, x, check_trace=False), str(path))
    else:
        from safetensors.torch import save_model
        save_model(model, str(path), metadata={"spec": built.spec.to_yaml(), "format": "pt"})
    return None


def export(spec_or_built: Spec | Built, fmt: str, path: str | Path,
           progress: Progress | None = None) -> ExportResult:
    """Write a spec, or the model it builds, to a file.

    Args:
        spec_or_built: a Spec (built through the cache when the format needs the model) or a Built.
        fmt: one of `choices.EXPORT_FORMATS`: yaml, python, torchscript, onnx, safetensors.
        path: where to write; its suffix is set from the format.
        progress: optional `progress(fraction, message)` callback.

    Returns:
        An ExportResult: the path written, and for ONNX its check (`result.check.ok`, `result.check.line()`). A
        format that cannot be produced raises a one-line SpecError; an ONNX file whose outputs are off by more
        than the tolerance is returned with a check that is not ok, and a warning.

    >>> import tempfile, pathlib
    >>> out = export(Spec(backbone="resnet18"), "yaml", pathlib.Path(tempfile.mkdtemp()) / "r18")
    >>> out.path.name, out.path.read_text().strip(), out.check
    ('r18.yaml', '{backbone: resnet18}', None)
    """
    step = progress or (lambda f, m: None)
    if fmt not in FORMATS:
        raise SpecError(f"export: {fmt!r} is not a format{close_matches(str(fmt), FORMATS)}; "
                        f"allowed: {', '.join(FORMATS)}")
    built = None if isinstance(spec_or_built, Spec) else spec_or_built
    spec = built.spec if built else spec_or_built
    path = Path(path).with_suffix(FORMATS[fmt])
    if fmt in ("yaml", "python"):
        path.write_text(spec.to_yaml() if fmt == "yaml" else spec.to_python(), encoding="utf-8")
        return ExportResult(path, fmt, (path,))
    if fmt == "onnx" and onnx_missing():
        raise SpecError(f"export: {onnx_missing()}")
    from .analyze import cached_build
    step(0.1, "building the model")
    built = built or cached_build(spec)
    step(0.2, f"exporting {fmt}")
    try:
        with built.lock, COMPUTE.shared():  # tracing runs the model: not while a latency times, nor hooks it
            check = _write(built, fmt, path, step)
    except SpecError:
        raise
    except Exception as e:
        raise SpecError(f"export: {fmt} failed for {spec.backbone}: {first_line(e)}") from None
    data = path.with_name(path.name + ".data")
    result = ExportResult(path, fmt, (path, data) if data.exists() else (path,), check)
    if check is not None and not check.ok:
        warnings.warn(check.line(), stacklevel=2)
    step(1.0, "done")
    return result
