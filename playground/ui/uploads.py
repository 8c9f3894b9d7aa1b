"""Photo uploads refused in one line before Gradio decodes them: a bad file, a decompression bomb, a `data:` URL."""
from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import SpecError
from .errors import shown

__all__ = ["photo_input"]


def _upload(payload: Any) -> Any:
    """What an image input carries: the uploaded file's path, the bytes of a `data:` URL, or None."""
    url = str(getattr(payload, "url", None) or "")
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.partition(",")[2])
        except (binascii.Error, ValueError):
            return b""
    return getattr(payload, "path", None)


def _refusal(payload: Any, source: Any, e: Exception) -> gr.Error:
    """The one line for an upload that cannot be read: `images.load_image`'s words where it has them."""
    from ..images import ACCEPTED, load_image
    name = Path(getattr(payload, "orig_name", None) or getattr(payload, "path", None) or "image").name
    if source is not None:
        try:
            load_image(source, name=name)
        except SpecError as bad:
            return gr.Error(shown(str(bad)), title="Cannot read that image", print_exception=False)
        except Exception:  # not decodable either way: the generic message below
            pass
    return gr.Error(shown(f"image '{name}' cannot be read ({type(e).__name__}): give {ACCEPTED}"),
                    title="Cannot read that image", print_exception=False)


def photo_input(**kwargs: Any) -> gr.Image:
    """A `gr.Image` (filepath) whose upload, when it is not a decodable image of an accepted size, is refused with
    the one-line message of `images.load_image` ("image 'x.png' is not a recognised image: ...") instead of
    Gradio's "the upstream app has raised an exception" and a traceback in the log. The pixel limit is checked on
    the header, before Gradio decodes (and converts) the image: a 13000x13000 grey PNG is 160 KB, and a `data:`
    URL does not even count against the upload limit.

    The component's `preprocess` is wrapped on the instance: a subclass would make Gradio write a `.pyi` stub next
    to this module.
    """
    image = gr.Image(type="filepath", **kwargs)
    gradio_preprocess = image.preprocess

    def preprocess(payload: Any) -> Any:
        from PIL import Image

        from ..images import MAX_IMAGE_PIXELS
        source = _upload(payload)
        try:
            if source:
                with Image.open(source if isinstance(source, str) else io.BytesIO(source)) as im:  # the header
                    if im.width * im.height > MAX_IMAGE_PIXELS:
                        raise ValueError("too many pixels")  # load_image says so in its words
            return gradio_preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:
            raise _refusal(payload, source, e) from None

    image.preprocess = preprocess
    return image
