"""ONNX export through `torch.onnx.export`, checked before it is handed out: `onnx.checker` on the file, then
onnxruntime against torch on real photos (scikit-image's chelsea and coffee, preprocessed by timm's eval transform
for the model as predictions are).

Exporter: the dynamo one (`torch.onnx.export(..., dynamo=True)`: `torch.export` captures the graph, onnxscript's
torchlib translates it), torch's default and recommended exporter, rather than the TorchScript one
(`dynamo=False`). Measured with torch 2.14.1 on a 2-core CPU, on the cases `tests/test_onnx.py` checks and
SpectFormer:

==========================================  ===================  ===================  ==========================
case                                        dynamo (opset 20)    TorchScript (17)     max |diff| dynamo / TS
==========================================  ===================  ===================  ==========================
resnet50, SE at layer*.*.bn3                13 s, 112 MB         1.0 s, 98 MB         3e-8 / 3e-8
vit_tiny, serial [se, eca] at final         5 s, 23 MB           0.8 s, 23 MB         7e-7 / 7e-7
swin_tiny, stem stride 8                    10 s, 114 MB         2.2 s, 115 MB        7e-7 / 8e-7
convnext_atto, parallel concat at stage2    3 s, 15 MB           0.5 s, 15 MB         7e-7 / 5e-7
efficientnet_lite0 pretrained, gated SE     5 s, 19 MB           0.4 s, 19 MB         4e-6 / 3e-6
spectformer_s (rfft2 / irfft2)              7 s, 90 MB           fails                2e-6 / -
==========================================  ===================  ===================  ==========================

Both are as exact; TorchScript is 4-10x faster (and folds BatchNorm into convolutions: 98 vs 112 MB), but it cannot
express the FFT of the project's own SpectFormer ("Exporting the operator 'aten::fft_rfft2' to ONNX opset version 17
is not supported"), where the dynamo exporter maps it to ONNX's DFT, and torch deprecates it. So: dynamo.

The batch axis is dynamic (`torch.export.Dim`): captured at batch 2, since `torch.export` specialises a size-1
dimension to a constant, and checked in onnxruntime at batch 1 and 2. A model whose code fixes its batch size is
exported at batch 1 instead, and the check says so.

What ONNX (or torch.export) cannot express is refused with one line naming the op and the module that uses it,
translated from the exporter's own failure (`unsupported_op`): e.g. timm's `MedianPool2d` uses `aten::median.dim`.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import SpecError, first_line, root_cause
from .export import OnnxCheck

__all__ = ["export_onnx", "verify", "unsupported_op", "sample_batch", "TOLERANCE", "SAMPLES"]

# float32 logits from two engines: torch (oneDNN on CPU) and onnxruntime (MLAS) pick different convolution and
# matmul kernels, which sum in different orders and fuse differently (the exporter's optimiser also folds some ops),
# so the last bits differ; measured up to 6e-6 on the test cases (logits of order 10). 1e-4 leaves room for other
# CPUs (AMD vs Intel pick different kernels) and deeper models, and is far below any change a user makes: an
# inserted module left out or a wrong weight moves logits by 1e-2 and more.
TOLERANCE = 1e-4
SAMPLES = ("chelsea", "coffee")  # scikit-image's photos: a tabby cat and an espresso
Progress = Callable[[float, str], None]


def sample_batch(model: nn.Module, img_size: int) -> torch.Tensor:
    """The SAMPLES photos as one (2, 3, H, W) batch, through timm's eval transform for `model` (as predictions)."""
    from skimage import data

    from .images import load_image
    from .predict import eval_transform
    transform = eval_transform(model, img_size)
    return torch.stack([transform(load_image(getattr(data, name)())) for name in SAMPLES])


_OP_IN_NODE = re.compile(r"target=torch\.ops\.(\w+)\.(\w+)\.(\w+)")  # the exporter's "Error when translating node"
_OP_OVERLOAD = re.compile(r"op='(\w+)\.(\w+)', overload='(\w+)'")  # its DispatchError: "No ONNX function found"


def _op_of(e: BaseException) -> tuple[str, str] | None:
    """(namespace.name, overload) of the op whose translation failed, from the exporter's chain of exceptions."""
    while e is not None:
        m = _OP_IN_NODE.search(str(e)) or _OP_OVERLOAD.search(str(e))
        if m:
            return f"{m[1]}.{m[2]}", m[3]
        e = e.__cause__ or e.__context__
    return None


def _module_of(model: nn.Module, x: torch.Tensor, op: str) -> str | None:
    """The module path (as `named_modules` spells it) of the first call of `op` in `model`'s graph, or in its
    decomposition when the op only appears there; None when it cannot be found. Captures the graph again: for the
    message of a failed export only."""
    try:
        program = torch.export.export(model, (x,), strict=False)
    except Exception:
        return None
    for graph in (lambda: program.graph, lambda: program.run_decompositions().graph):
        try:
            nodes = list(graph().nodes)
        except Exception:
            return None
        for node in nodes:
            if node.op == "call_function" and str(node.target).startswith(op + "."):
                stack = node.meta.get("nn_module_stack") or {}
                return next(reversed(stack.values()))[0] if stack else None
    return None


def unsupported_op(e: BaseException, model: nn.Module, x: torch.Tensor) -> str | None:
    """The exporter's failure `e` as "ONNX cannot express aten::<op> (used by <module path>)" when it names an op
    it could not translate, else None."""
    found = _op_of(e)
    if found is None:
        return None
    (op, overload), where = found, _module_of(model, x, found[0])
    name = op.replace(".", "::", 1) + ("" if overload == "default" else f".{overload}")
    return (f"ONNX cannot express {name}{f' (used by {where})' if where else ''}: the ONNX exporter of torch "
            f"{torch.__version__} has no translation of it to ONNX operators")


def verify(path: Path, model: nn.Module, x: torch.Tensor, dynamic: bool) -> OnnxCheck:
    """Check the file with `onnx.checker` (path-based, so files over 2 GB with external data work), then run it in
    onnxruntime (CPUExecutionProvider) on `x` at batch 1 and, when `dynamic`, the whole batch, against `model`.

    The largest absolute logit difference is reported; above TOLERANCE the check is not `ok`, never silently.
    """
    import onnx
    import onnxruntime as ort

    from .predict import class_labels
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:
        raise SpecError(f"ONNX export: the file fails onnx.checker: {first_line(e)}") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the worker's share of the cores, as torch has
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    diff, got1, want1 = 0.0, None, None
    for batch in [x[:1], x] if dynamic else [x[:1]]:
        with torch.inference_mode():
            want = model(batch).float().numpy()
        got = session.run(None, {name: batch.numpy()})[0]
        diff = max(diff, float(np.abs(got - want).max()))
        if got1 is None:
            got1, want1 = got[0], want[0]
    top1 = None
    if got1.ndim == 1:  # a classifier's logits: name onnxruntime's top class
        labels = class_labels(model, got1.shape[0])[0]
        top1 = labels[int(got1.argmax())].split(",")[0]
    proto = onnx.load(str(path), load_external_data=False)
    return OnnxCheck(max_abs_diff=diff, tolerance=TOLERANCE, images=SAMPLES if dynamic else SAMPLES[:1],
                     top1=top1, top1_agree=bool(got1.ndim != 1 or got1.argmax() == want1.argmax()),
                     opset=next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                     onnxruntime=ort.__version__, providers=tuple(session.get_providers()), dynamic_batch=dynamic)


def _export(model: nn.Module, x: torch.Tensor, dynamic: bool) -> torch.onnx.ONNXProgram:
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=shapes, verbose=False,
                                 input_names=["image"], output_names=["logits"])


def export_onnx(model: nn.Module, img_size: int, path: Path, progress: Progress | None = None) -> OnnxCheck:
    """Export `model` (in eval mode) to `path` with the dynamo exporter and verify it (`verify`).

    Weights go into the file, or beside it as `<path>.data` when they pass ONNX's 2 GB protobuf limit (the
    exporter decides). What cannot be exported raises a one-line SpecError naming the op and where it is used.
    """
    step = progress or (lambda f, m: None)
    model = model.eval()
    x = sample_batch(model, img_size)
    step(0.3, "exporting to ONNX (torch.export, then onnxscript)")
    try:
        onnx_program, dynamic = _export(model, x, dynamic=True), True
    except Exception as e:
        if (op := unsupported_op(e, model, x)) is not None:
            raise SpecError(f"ONNX export: {op}") from None
        step(0.5, "exporting to ONNX at batch 1 (the model fixes its batch size)")
        try:
            onnx_program, dynamic = _export(model, x[:1], dynamic=False), False
        except Exception as e:
            why = unsupported_op(e, model, x[:1]) or f"the exporter cannot take this model: {first_line(root_cause(e))}"
            raise SpecError(f"ONNX export: {why}") from None
    step(0.7, "writing the file")
    for node in onnx_program.model.graph.all_nodes():  # keep module paths (name_scopes), not this machine's files
        node.metadata_props.pop("pkg.torch.onnx.stack_trace", None)
    path.with_name(path.name + ".data").unlink(missing_ok=True)  # an earlier export's external weights
    onnx_program.save(str(path))
    step(0.8, "checking the file with onnxruntime")
    return verify(path, model, x, dynamic)
