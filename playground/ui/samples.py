"""The sample photos: scikit-image's chelsea (a tabby cat) and coffee (an espresso), saved once as PNGs."""
from __future__ import annotations

import functools
import uuid
from pathlib import Path

from ..cache import cache_dir

__all__ = ["sample_dir", "sample_images"]


def sample_dir() -> Path:
    return cache_dir() / "samples"


@functools.lru_cache(maxsize=1)
def sample_images() -> list[str]:
    """Paths of the sample photos in the cache, written on first use (atomically: several servers may start).
    scikit-image is imported only to write them: the server starts without it once they are there."""
    d = sample_dir()
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("chelsea", "coffee"):
        path = d / f"{name}.png"
        if not path.is_file():
            from PIL import Image
            from skimage import data
            tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            Image.fromarray(getattr(data, name)()).save(tmp, format="PNG")
            tmp.replace(path)
        paths.append(str(path))
    return paths
