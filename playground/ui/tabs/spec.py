"""The spec panel: preset, undo / redo, the controls, the insertion editor and the YAML, as views of one spec.

The spec's history (`History`, in a `gr.State`) is the source of truth. Every edit (a control, a row, the YAML, a
preset the user picked, undo, redo) commits to it and `view` redraws everything else from it, so controls, YAML,
status line and preset menu never disagree. A preset is applied only when it is not already the spec (leaving
the menu without picking does nothing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import yaml

from ...catalog import catalog
from ...choices import HEAD_NORMS, IMG_SIZE, STEM_KERNEL, STEM_PADDING, STEM_STRIDE
from ...errors import SpecError
from ...presets import preset_files
from ...spec import Spec, load_spec
from .. import backbones as known_backbones
from ..errors import user_errors
from ..history import History
from ..render import catalog_html, status_html
from ..runs import point_dicts
from ..specs import (
    COMBINE,
    CUSTOM,
    Controls,
    add_row,
    controls_from_spec,
    matching_preset,
    menu_spec,
    parse_spec,
    point_choices,
    preset_yaml,
    pretrained_note,
    remove_row,
    spec_from_controls,
    spec_yaml,
    tolerant,
    untick_unavailable,
)

__all__ = ["Toolbar", "SpecPanel", "build_toolbar", "build_spec_panel", "wire_spec_panel", "on_img_size"]

PRIVATE = dict(api_visibility="private")
INSERT_ROWS_HELP = ("`at`: a point or a module-path glob · `module`: `se`, `{serial: [se, eca]}` or "
                    "`{parallel: [se, eca], merge: concat}` · `args`: `{rd_ratio: 0.25}`")


@dataclass
class Toolbar:
    preset: gr.Dropdown
    undo: gr.Button
    redo: gr.Button
    analyze: gr.Button


@dataclass
class SpecPanel:
    toolbar: Toolbar
    backbone: gr.Dropdown
    pretrained: gr.Checkbox
    img_size: gr.Number
    stem_stride: gr.Number
    stem_kernel: gr.Number
    stem_padding: gr.Number
    insert: gr.Dataframe
    gate: gr.Checkbox
    num_classes: gr.Number
    head_norm: gr.Dropdown
    at: gr.Dropdown
    modules: gr.Dropdown
    combine: gr.Dropdown
    args: gr.Textbox
    add: gr.Button
    remove: gr.Button
    clear: gr.Button
    selected: gr.State
    yaml: gr.Code
    status: gr.HTML
    history: gr.State
    built: gr.State  # spec_yaml of the spec the report shows (None before the first report)

    @property
    def controls(self) -> list[Any]:
        """The control components, in `Controls` order."""
        return [getattr(self, n) for n in Controls.names()]

    @property
    def view_outputs(self) -> set[Any]:
        """Everything `view` may write."""
        t = self.toolbar
        return {*self.controls, self.yaml, self.status, self.history, t.preset, t.undo, t.redo}


def build_toolbar(presets: dict[str, Spec], default: str) -> Toolbar:
    with gr.Row(elem_id="toolbar", equal_height=True):
        preset = gr.Dropdown([(s.title or n, n) for n, s in presets.items()] + [("— custom spec —", CUSTOM)],
                             value=default, label="Preset", scale=4, min_width=200, elem_id="preset")
        undo = gr.Button("↶ Undo", size="sm", scale=0, min_width=70, interactive=False, elem_id="undo")
        redo = gr.Button("↷ Redo", size="sm", scale=0, min_width=70, interactive=False, elem_id="redo")
        analyze = gr.Button("Analyze", variant="primary", scale=1, min_width=110, elem_id="analyze")
    return Toolbar(preset, undo, redo, analyze)


def build_spec_panel(toolbar: Toolbar, backbones: list[str], default: Spec) -> SpecPanel:
    """The panel, showing `default`; building it asks no worker, so the image size (the backbone's default) and the
    full backbone menu come with the page's load event."""
    c = controls_from_spec(default, default_size=lambda name: None)
    backbone = gr.Dropdown(backbones, value=c.backbone, label="Backbone", allow_custom_value=True,
                           info="the seeds' models and the classics first; any timm name works", elem_id="backbone")
    with gr.Row():
        pretrained = gr.Checkbox(c.pretrained, label="pretrained weights", min_width=120, elem_id="pretrained")
        img_size = gr.Number(c.img_size, label="image size", precision=0, minimum=IMG_SIZE.lo, maximum=IMG_SIZE.hi,
                             min_width=90)
    with gr.Row():
        stem = [gr.Number(None, label=label, precision=0, minimum=r.lo, maximum=r.hi, placeholder="default",
                          min_width=70) for label, r in (("embedding stride", STEM_STRIDE), ("kernel", STEM_KERNEL),
                                                         ("padding", STEM_PADDING))]
    with gr.Group():
        at = gr.Dropdown([], label="Stitch at", allow_custom_value=True, elem_id="at",
                         info="a point, shown with its output shape; or type a module path or glob (see the presets)")
        with gr.Row():
            modules = gr.Dropdown(list(catalog()), value=["se"], multiselect=True, label="module(s)", scale=3,
                                  elem_id="modules")
            combine = gr.Dropdown(list(COMBINE), value="serial", label="if several", scale=2, min_width=110)
        args = gr.Textbox(label="args (YAML mapping, optional)", placeholder="{rd_ratio: 0.25}", max_lines=1)
        with gr.Row():
            add = gr.Button("+ Add", size="sm", variant="secondary", min_width=60, elem_id="add-insert")
            remove = gr.Button("− Remove", size="sm", min_width=60)
            clear = gr.Button("Clear", size="sm", min_width=60)
    insert = gr.Dataframe(c.insert, headers=["at", "module", "args"], datatype="str", type="array",
                          interactive=True, label="Insertions (editable)", column_count=3, wrap=True,
                          column_widths=["30%", "40%", "30%"], elem_id="inserts")
    gr.Markdown(INSERT_ROWS_HELP, elem_classes="pg-hint")
    with gr.Row():
        gate = gr.Checkbox(c.gate, label="zero-init gate", min_width=110, info="keeps pretrained outputs unchanged "
                                                                                "at init")
        num_classes = gr.Number(c.num_classes, label="classes", precision=0, minimum=0, placeholder="keep",
                                min_width=80)
        head_norm = gr.Dropdown(["none", *HEAD_NORMS], value=c.head_norm, label="norm before head", min_width=110)
    with gr.Accordion("Module catalog", open=False):
        gr.HTML(catalog_html())
    text = spec_yaml(default)
    code = gr.Code(text, language="yaml", label="Spec (YAML) · edits here update the controls", lines=12,
                   interactive=True, wrap_lines=False, elem_id="spec-yaml")
    status = gr.HTML(status_html(default), elem_id="status")
    return SpecPanel(toolbar, backbone, pretrained, img_size, *stem, insert, gate, num_classes, head_norm, at,
                     modules, combine, args, add, remove, clear, gr.State(None), code, status,
                     gr.State(History.start(text)), gr.State(None))


# ---- handlers: each returns {component: value} for what it changes

def view(p: SpecPanel, history: History, built: str | None, *, controls: bool = True, write_yaml: bool = True,
         note: str | None = None) -> dict:
    """The panel showing the history's current spec: YAML, controls, status (parsed or built), preset, undo/redo."""
    text = history.current
    out: dict[Any, Any] = {p.history: history, p.toolbar.undo: gr.update(interactive=history.can_undo),
                           p.toolbar.redo: gr.update(interactive=history.can_redo)}
    if write_yaml:
        out[p.yaml] = text
    try:
        spec = parse_spec(text)
    except SpecError as e:
        return out | {p.status: status_html(error=str(e))}
    out[p.status] = status_html(spec, built=spec_yaml(spec) == built, note=note)
    out[p.toolbar.preset] = matching_preset(spec)
    if controls:
        out |= dict(zip(p.controls, controls_from_spec(spec).values()))
    return out


def on_controls(p: SpecPanel, history: History, built: str | None, text: str, *values: Any) -> dict:
    """A control was edited (or a row added / removed): the spec follows. The image size is only written after a
    change of backbone (its new default), never while the user may be typing into it."""
    old = tolerant(text)
    try:
        data = spec_from_controls(text, Controls(*values))
    except SpecError as e:
        return {p.status: status_html(error=str(e))}
    note = untick_unavailable(data, old)
    try:
        spec = load_spec(data)
    except SpecError as e:
        return {p.yaml: yaml.safe_dump(data, sort_keys=False, default_flow_style=None),
                p.status: status_html(error=str(e))}
    out = view(p, history.commit(spec_yaml(spec), "controls"), built, controls=False, note=note)
    if spec.backbone != old.get("backbone"):
        out[p.img_size] = spec.img_size or known_backbones.default_size(spec.backbone)
    if note:
        out[p.pretrained] = False
    return out


def on_yaml(p: SpecPanel, history: History, built: str | None, text: str) -> dict:
    """The YAML was typed into: when it parses it is the spec (typing merges into one undo step)."""
    try:
        spec = parse_spec(text)
    except SpecError as e:
        return {p.status: status_html(error=str(e))}
    before = tolerant(history.current).get("backbone")
    note = pretrained_note(spec) if spec.backbone != before else None
    return view(p, history.commit(text, "yaml"), built, write_yaml=False, note=note)


def on_img_size(p: SpecPanel, history: History, built: str | None, size: int) -> dict:
    """The image size a refusal offered (a stem stride that fits there), set as one undoable step."""
    data = tolerant(history.current)
    data["img_size"] = int(size)
    return view(p, history.commit(spec_yaml(load_spec(data)), "img_size"), built)


def on_preset(p: SpecPanel, history: History, built: str | None, name: str | None) -> dict:
    """A preset was picked: applied when it is not already the spec (focus then blur picks nothing new)."""
    unchanged = {p.history: history}  # not {}: Gradio reads an empty dict as one value
    if name not in preset_files():
        return unchanged
    try:
        if matching_preset(parse_spec(history.current)) == name:
            return unchanged
    except SpecError:
        pass
    return view(p, history.commit(preset_yaml(name), "preset"), built)


def _texts_agree(a: str, b: str) -> bool:
    """Whether two spec texts are the same spec (the editor may hand back its text with other whitespace)."""
    try:
        return parse_spec(a) == parse_spec(b)
    except SpecError:
        return False


def on_step(p: SpecPanel, history: History, built: str | None, text: str, back: bool) -> dict:
    """Undo (back) or redo. An edit not committed yet (YAML that does not parse) is undone first."""
    if back and not _texts_agree(text, history.current):
        return view(p, history, built)
    return view(p, history.undo() if back else history.redo(), built)


def on_points(backbone: str, img_size: Any, stride: Any, kernel: Any, padding: Any, current: str | None):
    """Refresh the position menu for the current backbone; quiet when the backbone is not valid (yet)."""
    try:
        choices = point_choices(point_dicts(menu_spec(backbone, img_size, stride, kernel, padding)))
    except Exception:
        return gr.skip()
    names = [v for _, v in choices]
    stages = [n for n in names if re.fullmatch(r"stage\d+", n)]
    value = current if current in names else (stages[-1] if stages else names[-1])
    return gr.update(choices=choices, value=value)


def wire_spec_panel(p: SpecPanel) -> None:
    """The panel's own events: edits, preset, undo / redo, the insertion editor, the position menu."""
    state = [p.history, p.built]
    out = p.view_outputs
    commit = user_errors(partial(on_controls, p))
    gr.on([c.input for c in p.controls], commit, [*state, p.yaml, *p.controls], out, trigger_mode="always_last",
          **PRIVATE)
    p.yaml.input(user_errors(partial(on_yaml, p)), [*state, p.yaml], out, trigger_mode="always_last", **PRIVATE)
    p.toolbar.preset.input(user_errors(partial(on_preset, p)), [*state, p.toolbar.preset], out, **PRIVATE)
    for button, back in ((p.toolbar.undo, True), (p.toolbar.redo, False)):
        button.click(user_errors(partial(on_step, p, back=back)), [*state, p.yaml], out, **PRIVATE)
    gr.on([c.change for c in (p.backbone, p.img_size, p.stem_stride, p.stem_kernel, p.stem_padding)], on_points,
          [p.backbone, p.img_size, p.stem_stride, p.stem_kernel, p.stem_padding, p.at], p.at,
          trigger_mode="always_last", **PRIVATE)

    def then_commit(dep):
        return dep.success(commit, [*state, p.yaml, *p.controls], out, **PRIVATE)
    then_commit(p.add.click(user_errors(add_row), [p.insert, p.at, p.modules, p.combine, p.args], p.insert,
                            **PRIVATE))
    then_commit(p.remove.click(remove_row, [p.insert, p.selected], p.insert, **PRIVATE)).then(
        lambda: None, None, p.selected, **PRIVATE)
    then_commit(p.clear.click(lambda: [], None, p.insert, **PRIVATE))

    def select_row(evt: gr.SelectData) -> int | None:
        return evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    p.insert.select(select_row, None, p.selected, **PRIVATE)
