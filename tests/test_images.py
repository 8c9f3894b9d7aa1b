"""load_image: every kind of awkward or bad input gives a correct RGB image or a one-line SpecError."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data

from playground import images
from playground.errors import SpecError
from playground.images import load_image


def _encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims width x height: opens lazily, would be a bomb if decoded."""
    png = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


@pytest.fixture(scope="module")
def cat_jpeg() -> bytes:
    return _encode(Image.fromarray(data.chelsea()), "JPEG", quality=90)


def _assert_still_works(cat_jpeg: bytes) -> None:
    im = load_image(cat_jpeg)
    assert im.mode == "RGB" and im.size == (451, 300)


def test_photo_from_path_bytes_pil_and_array(tmp_path, cat_jpeg):
    path = tmp_path / "chelsea.jpg"
    path.write_bytes(cat_jpeg)
    for source in (path, str(path), cat_jpeg, Image.open(path), data.chelsea()):
        im = load_image(source)
        assert im.mode == "RGB" and im.size == (451, 300)
    assert images.image_name(path) == "chelsea.jpg"


def test_exif_rotation_is_applied(cat_jpeg):
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the left half ends up on top
    out = load_image(_encode(im, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == (20, 40)
    r, g, b = out.getpixel((10, 5))
    assert r > 200 and b < 60
    _assert_still_works(cat_jpeg)


@pytest.mark.parametrize("mode, fmt, value, expected", [
    ("L", "PNG", 128, (128, 128, 128)),
    ("1", "PNG", 1, (255, 255, 255)),
    ("I;16", "PNG", 65535, (255, 255, 255)),  # 16-bit grayscale
    ("I", "TIFF", 32896, (128, 128, 128)),  # 16-bit values in a 32-bit mode
    ("F", "TIFF", 0.5, (128, 128, 128)),  # float in 0..1
    ("CMYK", "JPEG", (0, 255, 255, 0), (255, 0, 0)),  # red
    ("RGBA", "PNG", (255, 0, 0, 0), (255, 255, 255)),  # fully transparent -> white
    ("RGBA", "PNG", (255, 0, 0, 255), (255, 0, 0)),
    ("LA", "PNG", (0, 0), (255, 255, 255)),
])
def test_modes_become_rgb(mode, fmt, value, expected, cat_jpeg):
    out = load_image(_encode(Image.new(mode, (8, 6), value), fmt))
    assert out.mode == "RGB" and out.size == (8, 6)
    assert all(abs(a - b) <= 3 for a, b in zip(out.getpixel((4, 3)), expected))
    _assert_still_works(cat_jpeg)


def test_palette_with_and_without_transparency(cat_jpeg):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    assert load_image(_encode(im, "GIF")).getpixel((0, 0)) == (0, 255, 0)
    assert load_image(_encode(im, "PNG", transparency=1)).getpixel((0, 0)) == (255, 255, 255)
    _assert_still_works(cat_jpeg)


def test_animated_gif_gives_first_frame(cat_jpeg):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(gif)).n_frames == 2
    assert load_image(gif).getpixel((5, 5)) == (255, 0, 0)
    _assert_still_works(cat_jpeg)


def test_one_pixel_image(cat_jpeg):
    out = load_image(_encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"))
    assert out.size == (1, 1) and out.getpixel((0, 0)) == (1, 2, 3)
    _assert_still_works(cat_jpeg)


@pytest.mark.parametrize("width, height", [(8000, 8000), (30000, 30000)])  # ours, then PIL's own bomb limit
def test_huge_dimensions_are_refused_before_decoding(width, height, cat_jpeg):
    with pytest.raises(SpecError, match="pixel"):
        load_image(_png_with_size(width, height), name="huge.png")
    _assert_still_works(cat_jpeg)


def _bad_inputs(cat_jpeg: bytes) -> dict[str, bytes]:
    return {
        "truncated.jpg": cat_jpeg[: len(cat_jpeg) // 2],
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "noise.jpg": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "empty.jpg": b"",
        "notes.txt": b"this is not an image\n",
    }


@pytest.mark.parametrize("name", ["truncated.jpg", "corrupt.png", "noise.jpg", "empty.jpg", "notes.txt"])
def test_bad_files_raise_one_line_spec_error(name, tmp_path, cat_jpeg):
    path = tmp_path / name
    path.write_bytes(_bad_inputs(cat_jpeg)[name])
    for source in (path, path.read_bytes()):
        with pytest.raises(SpecError) as info:
            load_image(source, name=name)
        message = str(info.value)
        assert name in message and "\n" not in message
        assert "image" in message
    _assert_still_works(cat_jpeg)


def test_missing_file_size_limit_and_wrong_types(tmp_path, monkeypatch, cat_jpeg):
    with pytest.raises(SpecError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(SpecError, match="not an image"):
        load_image(12)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="shape"):
        load_image(np.zeros((2, 3, 5), np.uint8))
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 1000)
    with pytest.raises(SpecError, match="limit"):
        load_image(cat_jpeg)
    monkeypatch.undo()
    _assert_still_works(cat_jpeg)


def test_arrays_of_other_dtypes():
    assert load_image(np.full((4, 5), 0.5, np.float32)).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.full((4, 5, 1), 65535, np.uint16)).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(np.zeros((4, 5, 4), np.uint8)).getpixel((0, 0)) == (255, 255, 255)  # transparent
