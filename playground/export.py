"""Export a spec or its model: the spec as YAML, a Python snippet that rebuilds it, TorchScript, ONNX, safetensors.

Every failure (an export the model cannot take, a missing optional package) is a one-line SpecError.
"""
from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from .build import Built
from .choices import EXPORT_FORMATS
from .compute import COMPUTE
from .errors import SpecError, close_matches, first_line
from .spec import Spec

__all__ = ["export", "onnx_missing", "FORMATS"]

FORMATS = EXPORT_FORMATS
Progress = Callable[[float, str], None]


def onnx_missing() -> str | None:
    """Why ONNX export is impossible here, or None."""
    missing = [p for p in ("onnx", "onnxscript") if importlib.util.find_spec(p) is None]
    if missing:
        return (f"ONNX export needs the {' and '.join(missing)} package{'s' if len(missing) > 1 else ''}, not "
                f"installed here (pip install onnx onnxscript); TorchScript and safetensors work without them")
    return None


def _write(model: torch.nn.Module, x: torch.Tensor, fmt: str, path: Path, spec: Spec) -> None:
    if fmt == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about python-side shape arithmetic
            torch.jit.save(torch.jit.trace(model, x, check_trace=False), str(path))
    elif fmt == "onnx":
        torch.onnx.export(model, (x,), str(path), dynamo=True)
    else:
        from safetensors.torch import save_model
        save_model(model, str(path), metadata={"spec": spec.to_yaml(), "format": "pt"})


def export(spec_or_built: Spec | Built, fmt: str, path: str | Path,
           progress: Progress | None = None) -> Path:
    """Write a spec, or the model it builds, to a file.

    Args:
        spec_or_built: a Spec (built through the cache when the format needs the model) or a Built.
        fmt: one of `choices.EXPORT_FORMATS`: yaml, python, torchscript, onnx, safetensors.
        path: where to write; its suffix is set from the format.
        progress: optional `progress(fraction, message)` callback.

    Returns:
        The path written. A format that cannot be produced raises a one-line SpecError.

    >>> import tempfile, pathlib
    >>> out = export(Spec(backbone="resnet18"), "yaml", pathlib.Path(tempfile.mkdtemp()) / "r18")
    >>> out.name, out.read_text().strip()
    ('r18.yaml', '{backbone: resnet18}')
    """
    from .analyze import cached_build
    step = progress or (lambda f, m: None)
    if fmt not in FORMATS:
        raise SpecError(f"export: {fmt!r} is not a format{close_matches(str(fmt), FORMATS)}; "
                        f"allowed: {', '.join(FORMATS)}")
    built = spec_or_built if isinstance(spec_or_built, Built) else None
    spec = built.spec if built else spec_or_built
    path = Path(path).with_suffix(FORMATS[fmt])
    if fmt == "yaml":
        path.write_text(spec.to_yaml(), encoding="utf-8")
        return path
    if fmt == "python":
        path.write_text(spec.to_python(), encoding="utf-8")
        return path
    if fmt == "onnx" and onnx_missing():
        raise SpecError(f"export: {onnx_missing()}")
    step(0.1, "building the model")
    built = built or cached_build(spec)
    model = built.model.eval()
    x = torch.zeros(1, 3, built.img_size, built.img_size)
    step(0.4, f"exporting {fmt}")
    try:
        with COMPUTE.shared():  # tracing runs the model: not while a latency times
            _write(model, x, fmt, path, spec)
    except Exception as e:
        first = first_line(e)
        raise SpecError(f"export: {fmt} failed for {spec.backbone}: {first}") from None
    step(1.0, "done")
    return path
