"""Every choice and limit a user can meet, defined once: the spec validator, the library, the CLI's argparse and
the page's controls import them from here (no torch: argument parsing stays fast).

    >>> IMG_SIZE.lo, IMG_SIZE.hi, IMG_SIZE.clamp(4096)
    (16, 1024, 1024)
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Range", "DEVICES", "DTYPES", "BATCH", "MEMORY_BATCH", "OPTIMIZERS",
           "IMG_SIZE", "NUM_CLASSES", "STEM_STRIDE", "STEM_KERNEL", "STEM_PADDING", "SUMMARY_DEPTH", "TOPK",
           "LATENCY_OPTIONS", "MERGES", "HEAD_NORMS", "REMOVE_HEAD_NORM", "CURATED_BACKBONES", "EXPORT_FORMATS",
           "EXPORT_LABELS"]


class Range(NamedTuple):
    """Inclusive integer bounds."""
    lo: int
    hi: int

    def __contains__(self, v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and self.lo <= v <= self.hi

    def clamp(self, v: int) -> int:
        return min(max(v, self.lo), self.hi)


DEVICES = ("auto", "cpu", "cuda")  # auto: CUDA when there is one
DTYPES = ("fp32", "bf16", "fp16")  # bf16 / fp16 run under torch.autocast; fp16 needs CUDA
BATCH = Range(1, 512)  # latency batches; a larger batch is a memory question, not a latency one
MEMORY_BATCH = Range(1, 4096)  # memory estimates (fake tensors: no compute, any batch is quick)
OPTIMIZERS = ("adamw", "sgd")  # the optimizer state of a memory estimate's training step (SGD with momentum)
IMG_SIZE = Range(16, 1024)
NUM_CLASSES = Range(1, 100_000)
STEM_STRIDE = Range(1, 64)
STEM_KERNEL = Range(1, 64)
STEM_PADDING = Range(0, 32)
SUMMARY_DEPTH = Range(1, 10)  # depth of torchinfo's layer table
TOPK = Range(1, 1000)
# `measure_latency` options, and `base`: also time the unmodified backbone (Report.base_latency)
LATENCY_OPTIONS = frozenset({"device", "batch", "dtype", "channels_last", "compile", "min_run_time", "max_run_time",
                             "warmup", "threads", "base"})
MERGES = ("add", "mul", "concat")  # how a parallel composite merges its branches
# `head_norm:` a norm before the classifier (seed 000, tip 2), or `remove`: take out the backbone's own norm there
# (the "without" side of the tip on a model that has one built in)
HEAD_NORMS = ("layernorm", "batchnorm", "groupnorm", "remove")
REMOVE_HEAD_NORM = "remove"
# Backbones listed first (the page's menu before the full list arrives): the seeds' models and the classics.
CURATED_BACKBONES = (
    "efficientnet_lite0", "resnet50", "seresnet50", "ecaresnet50d", "resnet18",
    "vit_tiny_patch16_224", "vit_base_patch16_224", "swin_tiny_patch4_window7_224",
    "fasternet_t0", "poolformer_s12", "convnext_atto", "mobilenetv3_small_100",
    "spectformer_s", "cifar_metaformer_pool", "cifar_metaformer_attn", "cifar_metaformer_hybrid",
)
# export format -> file suffix; and the page's labels for them
EXPORT_FORMATS = {"yaml": ".yaml", "python": ".py", "torchscript": ".pt", "onnx": ".onnx",
                  "safetensors": ".safetensors"}
EXPORT_LABELS = {"Spec (YAML)": "yaml", "Python snippet": "python", "TorchScript (.pt)": "torchscript",
                 "ONNX (.onnx)": "onnx", "State dict (.safetensors)": "safetensors"}
