"""Images from users: a path, bytes, a PIL image or an array, decoded defensively into one RGB PIL image.

Handles EXIF orientation, grayscale and 16-bit / float modes, transparency (composited on white), palettes, CMYK and
animations (first frame). Anything that is not a decodable image of an accepted size raises a one-line SpecError
naming the image; no other exception escapes for bad input.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import SpecError, first_line

__all__ = ["ImageSource", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "ACCEPTED", "load_image", "image_name"]

ImageSource = str | Path | bytes | bytearray | Image.Image | np.ndarray

MAX_IMAGE_BYTES = 32 * 1024 ** 2  # encoded file size
MAX_IMAGE_PIXELS = 40_000_000  # decoded width x height; below PIL's own bomb limit (89.5 M), so ours fires first
ACCEPTED = "an image file (JPEG, PNG, WebP, GIF, BMP, TIFF)"


def image_name(source: ImageSource) -> str:
    """A short display name: the file name for paths and opened files, else the kind of input."""
    if isinstance(source, (str, Path)):
        return Path(source).name or str(source)
    if isinstance(source, Image.Image):
        return Path(getattr(source, "filename", "") or "image").name
    if isinstance(source, np.ndarray):
        return "array"
    return "image"


def _read(source: str | Path, name: str) -> bytes:
    path = Path(source).expanduser()
    try:
        if not path.is_file():
            raise SpecError(f"image '{name}' not found: give {ACCEPTED}")
        size = path.stat().st_size
        _check_bytes(size, name)
        return path.read_bytes()
    except OSError as e:
        raise SpecError(f"image '{name}' cannot be read ({e.strerror or e}): give {ACCEPTED}") from e


def _check_bytes(size: int, name: str) -> None:
    if size == 0:
        raise SpecError(f"image '{name}' is empty (0 bytes): give {ACCEPTED}")
    if size > MAX_IMAGE_BYTES:
        raise SpecError(f"image '{name}' is {size / 2 ** 20:.1f} MiB, over the {MAX_IMAGE_BYTES / 2 ** 20:.0f} MiB "
                        f"limit: give a smaller file")


def _check_pixels(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        raise SpecError(f"image '{name}' is {w}x{h} pixels, over the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixel limit: "
                        f"give a smaller image")
    if w < 1 or h < 1:
        raise SpecError(f"image '{name}' has no pixels ({w}x{h}): give {ACCEPTED}")


def _from_array(array: np.ndarray, name: str) -> Image.Image:
    """HxW, HxWx1, HxWx3 or HxWx4 arrays; floats are taken as 0..1 when their maximum is at most 1, else 0..255."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise SpecError(f"image '{name}': array of shape {a.shape} is not an image; use HxW, HxWx3 or HxWx4")
    _check_pixels((a.shape[1], a.shape[0]), name)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float32))
        a = np.clip(a * 255 if a.size and a.max() <= 1 else a, 0, 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.integer):
            raise SpecError(f"image '{name}': array of dtype {a.dtype} is not an image; use uint8 or float")
        a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a))


def _to_8bit(im: Image.Image) -> Image.Image:
    """'I;16*', 'I' and 'F' (16-bit PNG / TIFF, float TIFF) to 'L': 16-bit ranges are scaled, 0..1 floats too."""
    a = np.asarray(im, dtype=np.float64)
    peak = float(a.max()) if a.size else 0.0
    if im.mode == "F" and peak <= 1.0:
        a = a * 255
    elif peak > 255:
        a = a / 257 if peak <= 65535 else a * (255 / peak)
    return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), "L")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparent pixels become white."""
    if im.mode.startswith("I") or im.mode == "F":
        im = _to_8bit(im)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, RGB (always a new image, detached from the file)


def load_image(source: ImageSource, name: str | None = None) -> Image.Image:
    """An RGB PIL image from a path, encoded bytes, a PIL image or an HxW[xC] array; EXIF rotation applied,
    first frame of an animation. Bad input of any kind raises a one-line SpecError naming the image."""
    name = name or image_name(source)
    if isinstance(source, np.ndarray):
        return _to_rgb(_from_array(source, name))
    if isinstance(source, (str, Path)):
        data = _read(source, name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_bytes(len(data), name)
    elif isinstance(source, Image.Image):
        data = None
    else:
        raise SpecError(f"image '{name}': a {type(source).__name__} is not an image; give {ACCEPTED}")

    try:
        im = source if data is None else Image.open(io.BytesIO(data))
        _check_pixels(im.size, name)  # before decoding: open() only reads the header
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()
        im = ImageOps.exif_transpose(im) or im
        return _to_rgb(im)
    except SpecError:
        raise
    except Image.DecompressionBombError:
        raise SpecError(f"image '{name}' is over PIL's decompression-bomb pixel limit: give a smaller image") from None
    except UnidentifiedImageError:
        raise SpecError(f"image '{name}' is not a recognised image: give {ACCEPTED}") from None
    except Exception as e:  # PIL's decoders raise OSError, SyntaxError, ValueError, struct.error, ... on bad data
        detail = first_line(e, 120)
        raise SpecError(f"image '{name}' is truncated or corrupt ({detail}): give {ACCEPTED}") from e
