"""The project's own backbones, registered into timm on import.

    >>> import playground.models  # noqa: F401
    >>> model = timm.create_model('spectformer_s')

One family per file, in timm's style: ``spectformer`` (SpectFormer-H, arXiv:2304.06446) and
``metaformer_cifar`` (the small CIFAR-10 MetaFormer of seed 000).
"""
from .metaformer_cifar import CifarMetaFormer
from .spectformer import SpectFormer

__all__ = ["CifarMetaFormer", "SpectFormer"]
