"""The Export & share tab: the spec or the stitched model as a file, a share link, a Python snippet."""
from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ...choices import EXPORT_LABELS
from ...errors import SpecError
from ...export import ExportResult
from ...spec import Spec
from ..errors import progress_to, shown, user_errors
from ..runs import ANALYSIS_QUEUE, export_to
from ..specs import encode_spec, parse_spec
from .spec import PRIVATE

__all__ = ["ExportPanel", "build_export", "wire_export", "export_file", "EXPORT_TTL_S"]

EXPORT_TTL_S = 3600  # downloads older than this are deleted at the next export


def _slug(spec: Spec) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (spec.title or spec.backbone).lower()).strip("-")[:60] or "model"


def _export_dir() -> Path:
    """A fresh folder for one export under the system temp dir (Gradio serves from there); old ones pruned."""
    root = Path(tempfile.gettempdir()) / "playground-exports"
    root.mkdir(exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        if now - old.stat().st_mtime > EXPORT_TTL_S:
            shutil.rmtree(old, ignore_errors=True)
    d = root / uuid.uuid4().hex
    d.mkdir()
    return d


def export_file(spec: Spec, label: str, progress: Callable[[float, str], None] = lambda f, m: None) -> ExportResult:
    """Write the spec or the model as the page's export `label` (a key of EXPORT_LABELS) into a fresh folder."""
    if label not in EXPORT_LABELS:
        raise SpecError(f"export: {label!r} is not one of {', '.join(EXPORT_LABELS)}")
    return export_to(spec, EXPORT_LABELS[label], _export_dir() / _slug(spec), progress)


def _download(result: ExportResult) -> Path:
    """The one file to download: the export, or a zip of it with its external weights (an ONNX model over 2 GB)."""
    if len(result.files) == 1:
        return result.path
    zipped = result.path.with_suffix(".zip")
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as z:  # weights do not compress
        for f in result.files:
            z.write(f, f.name)
    return zipped


@dataclass
class ExportPanel:
    fmt: gr.Radio
    export: gr.Button
    status: gr.Markdown
    file: gr.File
    share: gr.Button
    share_url: gr.Textbox
    snippet: gr.Code


def build_export() -> ExportPanel:
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### Export\nThe spec of the Playground tab, or the stitched model built from it.")
            fmt = gr.Radio(list(EXPORT_LABELS), value=next(iter(EXPORT_LABELS)), label="format")
            button = gr.Button("Export", variant="primary")
            status = gr.Markdown()
            file = gr.File(label="download", interactive=False)
        with gr.Column():
            gr.Markdown("### Share\nA link that opens this page with the same spec.")
            share = gr.Button("Make a share link")
            share_url = gr.Textbox(label="link", buttons=["copy"], interactive=False, elem_id="share-url")
            gr.Markdown("### Rebuild in Python")
            snippet = gr.Code(language="python", label="snippet", interactive=False, lines=8)
    return ExportPanel(fmt, button, status, file, share, share_url, snippet)


def on_export(text: str, fmt: str, progress=gr.Progress()) -> tuple[str | None, str]:
    """Export: (file to download, a line saying what it is, and for ONNX how it was verified)."""
    spec = parse_spec(text)
    try:
        result = export_file(spec, fmt, progress_to(progress))
    except SpecError as e:
        return None, f"✗ {shown(str(e))}"
    path, size = _download(result), result.size_bytes
    line = f"{path.name} · {size / 1e6:.2f} MB" if size > 1e5 else f"{path.name} · {size:,} bytes"
    if result.check is None:
        return str(path), f"✓ {line}"
    return str(path), f"{'✓' if result.check.ok else '⚠'} {line}  \n{shown(result.check.line())}"


def on_snippet(text: str) -> Any:
    try:
        return parse_spec(text).to_python()
    except SpecError:
        return gr.skip()


def on_share(text: str) -> str:
    """The query string of a link that restores this spec (the page prefixes its own address)."""
    return f"?spec={encode_spec(text)}"


def wire_export(p: ExportPanel, playground_yaml: gr.Code) -> None:
    p.export.click(user_errors(on_export), [playground_yaml, p.fmt], [p.file, p.status], **ANALYSIS_QUEUE, **PRIVATE)
    p.share.click(user_errors(on_share), playground_yaml, p.share_url, **PRIVATE).then(
        None, p.share_url, p.share_url, js="(q) => q ? window.location.origin + window.location.pathname + q : q",
        **PRIVATE)
    playground_yaml.change(user_errors(on_snippet), playground_yaml, p.snippet, trigger_mode="always_last",
                           **PRIVATE)
