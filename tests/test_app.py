"""The app through its API as a client sees it (gradio_client against the app launched in-process), and the UI's
parts without a server: spec <-> controls, history, share links, rendering, the panels' handlers, export."""
import dataclasses
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

gradio_client = pytest.importorskip("gradio_client")

from playground import ui  # noqa: E402
from playground.errors import SpecError  # noqa: E402
from playground.export import onnx_missing  # noqa: E402
from playground.spec import load_spec  # noqa: E402
from playground.ui import render, specs  # noqa: E402
from playground.ui.history import History  # noqa: E402
from playground.ui.tabs.export import export_file, on_export  # noqa: E402

SE_STAGE3 = "backbone: resnet18\ninsert:\n  - {at: stage3, module: se}\n"
SE_256_PARAMS = 256 * 16 + 16 + 16 * 256 + 256  # timm SEModule on 256 channels, reduction 16


def call(client, *args, api_name):
    return json.loads(client.predict(*args, api_name=api_name))


# ---- the API

def test_named_endpoints(client):
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(named) == {"/analyze", "/predict", "/points", "/presets", "/modules", "/backbones", "/compare",
                          "/sweep"}  # (the page's own events are private)


def test_modules_and_backbones_tell_a_client_what_it_can_ask_for(client):
    modules = call(client, api_name="/modules")
    assert modules["eca"]["args"]["kernel_size"] == "int" and "Wang et al." in modules["eca"]["paper"]
    found = call(client, "vit_small_patch16", 3, api_name="/backbones")
    assert list(found)[0].startswith("vit_small_patch16") and len(found) == 3 and found["vit_small_patch16_224"] == 224
    assert "resnet50" in call(client, "resnet5O", api_name="/backbones")  # a misspelling: the close names


def test_presets(client):
    presets = call(client, api_name="/presets")
    assert {"efficientnet_lite0", "se_resnet50"} <= set(presets)
    assert load_spec(presets["se_resnet50"]["yaml"]).insert[0].at == "layer*.*.bn3"


def test_points(client):
    pts = call(client, "resnet18", 160, api_name="/points")
    names = [p["name"] for p in pts]
    assert names[:2] == ["input", "stem"] and "stage3.block2" in names and names[-1] == "final"
    assert next(p for p in pts if p["name"] == "stage3")["shape"] == [1, 256, 10, 10]


def test_analyze_then_bad_spec_then_analyze_again(client):
    r = call(client, SE_STAGE3, api_name="/analyze")
    assert r["params"]["delta"] == SE_256_PARAMS and [i["path"] for i in r["params"]["by_insert"]] == ["layer3_after.0"]
    assert r["latency"] is None and "SEModule" in r["tree"]

    with pytest.raises(Exception) as e:  # gradio_client's AppError carries the gr.Error message
        client.predict("backbone: resnet5O", api_name="/analyze")
    assert "backbone: unknown model 'resnet5O'" in str(e.value) and "resnet50" in str(e.value)
    with pytest.raises(Exception, match="not valid YAML"):
        client.predict("backbone: [resnet18", api_name="/analyze")
    with pytest.raises(Exception, match="expected a mapping"):  # a file name is text, never read from disk
        client.predict("/etc/hostname.yaml", api_name="/analyze")

    assert call(client, "se_resnet50", api_name="/analyze")["params"]["total"] == 28_088_024  # a preset name


def test_analyze_with_latency(client):
    r = call(client, "backbone: resnet18\nimg_size: 64\n", True, "cpu", 1, "fp32", api_name="/analyze")
    assert r["latency"]["device"] == "cpu" and r["latency"]["median_ms"] > 0 and r["latency"]["times_ms"]


def test_predict_cat(client):
    cat = ui.sample_images()[0]
    r = call(client, "efficientnet_lite0", gradio_client.handle_file(cat), 3, api_name="/predict")
    p = r["predictions"][0]
    assert r["pretrained"] and len(p["top"]) == 3
    assert any(k in p["top"][0]["label"] for k in ("tabby", "tiger cat", "Egyptian cat"))
    assert p["agreement"]["top1_agree"] is True  # nothing stitched: the same network


def test_compare(client):
    d = call(client, "backbone: resnet18", SE_STAGE3, False, api_name="/compare")
    a, b = d["sides"]
    assert b["params"] - a["params"] == SE_256_PARAMS and d["latency"] == [] and a["latency"] is None
    assert all(s["same"] for s in d["shapes"]) and len(d["predictions"]) == 2
    assert d["caveats"] == ["specs A, B have random weights (pretrained: false): their predictions, and agreement "
                            "with them, mean nothing"]


SWEEP = ("base: {backbone: resnet18, img_size: 64, insert: [{at: stage4, module: se}]}\n"
         "axes:\n  insert[0].module: [se, eca]\n  insert[0].at: [stage3, stage9]\n")


def test_sweep_endpoint_returns_the_rows_of_the_cli(client, tmp_path, monkeypatch, capsys):
    from playground.cli import main as cli_main
    monkeypatch.setenv("PLAYGROUND_SWEEP_CACHE", "none")  # both compute: the server runs in this process
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    assert cli_main(["sweep", str(path), "--json", "--where", "params <= 11.69 M"]) == 0
    cli = json.loads(capsys.readouterr().out)
    api = call(client, SWEEP, False, "params <= 11.69 M", "", api_name="/sweep")
    assert api["rows"] == cli["rows"] and api["stats"]["runner"] == "pool" and cli["stats"]["runner"] == "inline"
    assert (api["kept"], api["front"], api["where"]) == (cli["kept"], cli["front"], cli["where"]) == \
        ([2], [2], "params <= 11690000")
    assert [r["error"] for r in api["rows"]][1] == "insert[0].at: 'stage9': this backbone has stages 1 to 4"
    with pytest.raises(Exception) as e:  # above the server's limit: refused before anything runs
        client.predict(SWEEP.replace("[stage3, stage9]", "[stage3, stage9]\n  img_size: [32, 48, 64]\nlimit: 8"),
                       api_name="/sweep")
    assert "12 variants" in str(e.value) and "over the limit of 8" in str(e.value)
    with pytest.raises(Exception) as e:  # a sweep can name no server file
        client.predict(SWEEP + "  checkpoint: [/etc/passwd]\n", api_name="/sweep")
    assert "the web app loads no files from the server" in str(e.value)


def test_queue_cannot_be_bypassed_and_uploads_are_limited(server):
    r = httpx.post(server + "gradio_api/run/analyze", json={"data": [SE_STAGE3]}, timeout=10)
    assert r.status_code == 404
    big = {"files": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")}
    assert httpx.post(server + "gradio_api/upload", files=big, timeout=30).status_code == 413


# ---- the UI's parts (no server)

def test_share_link_round_trip():
    token = ui.encode_spec(SE_STAGE3)
    assert "=" not in token and load_spec(ui.decode_spec(token)) == load_spec(SE_STAGE3)
    for bad in ("!!", "bm90IHlhbWw6IFs"):  # not base64url; base64 of broken YAML
        with pytest.raises(SpecError, match="shared link|not valid YAML"):
            ui.decode_spec(bad)


def test_controls_and_yaml_agree():
    spec = load_spec(specs.preset_yaml("eca_resnet50"))
    controls = specs.controls_from_spec(spec)
    assert load_spec(specs.spec_from_controls(specs.spec_yaml(spec), controls)) == spec  # title included
    assert specs.matching_preset(spec) == "eca_resnet50"
    gated = dataclasses.replace(controls, gate=True)
    data = specs.spec_from_controls(specs.spec_yaml(spec), gated)
    assert data["gate"] is True and "title" not in data  # no longer the preset: its title goes
    assert specs.matching_preset(load_spec(data)) == specs.CUSTOM
    other = dataclasses.replace(controls, backbone="resnet18", img_size=224)  # the default size: not written
    assert "img_size" not in specs.spec_from_controls("", other)


def test_pretrained_is_unticked_for_a_backbone_without_weights_here(monkeypatch):
    monkeypatch.setattr(specs.backbones, "pretrained_unavailable",
                        lambda b: None if b == "efficientnet_lite0" else "offline")
    data = {"backbone": "vit_base_patch16_224", "pretrained": True}
    assert specs.untick_unavailable(data, {"backbone": "efficientnet_lite0"}) == "pretrained unticked: offline"
    assert data["pretrained"] is False
    kept = {"backbone": "efficientnet_lite0", "pretrained": True}
    assert specs.untick_unavailable(kept, {"backbone": "resnet18"}) is None and kept["pretrained"] is True


def test_point_menu_puts_each_stage_before_its_blocks():
    names = [v for _, v in specs.point_choices(ui.runs.point_dicts(specs.menu_spec("resnet18")))]
    assert names[names.index("stage3"):names.index("stage3") + 4] == [
        "stage3", "stage3.block1", "stage3.block2", "stage3.block*"]
    for k, name in enumerate(names):  # a menu that takes the first substring match gives the exact name
        assert next(n for n in names if name in n) == name, (name, names[:k])


def test_history_undo_redo_and_typing_groups():
    h = History.start("a: 1\n")
    for k in range(2, 60):
        h = h.commit(f"a: {k}\n", "controls")
    assert len(h.items) == 50 and h.current == "a: 59\n"
    h = h.commit("a: 60", "yaml").commit("a: 601", "yaml")  # typing: one step
    assert h.undo().current == "a: 59\n" and h.undo().redo().current == "a: 601"
    assert h.undo().commit("b: 1\n", "preset").can_redo is False  # a new step drops the redo branch
    assert h.commit(h.current) is h
    big = History.start("x" * 400_000).commit("y" * 400_000).commit("z" * 400_000)  # 1.2 MB of spec text
    assert big.items == ("y" * 400_000, "z" * 400_000) and big.current == "z" * 400_000  # the oldest went


def test_insertion_editor_rows():
    rows = specs.add_row([], "stage2", ["se", "eca"], "parallel · concat", "")
    rows = specs.add_row(rows, "layer*.*.bn3", ["eca"], "serial", "{kernel_size: 5}")
    assert specs.rows_to_inserts(rows) == [
        {"at": "stage2", "module": {"parallel": ["se", "eca"], "merge": "concat"}},
        {"at": "layer*.*.bn3", "module": "eca", "args": {"kernel_size": 5}}]
    assert specs.remove_row(rows, 0) == rows[1:] and specs.remove_row(rows, None) == rows[:1]
    with pytest.raises(SpecError, match="args apply to a single module"):
        specs.add_row([], "stage2", ["se", "eca"], "serial", "{rd_ratio: 0.25}")


def test_tree_highlights_stitched_modules():
    tree = "Net(\n  (a): Conv(\n    (after): Stitch(\n      after a\n      (0): SE(\n        k=1\n" \
           "      )\n    )\n  )\n)"
    assert render.tree_paths(tree)[4:7] == ["a.after.0", "a.after.0", "a.after.0"]
    html = render.tree_html(tree, ["a.after.0"])
    assert html.count('class="ln ins') == 3 and html.count('class="ln wrap"') == 1
    assert html.count('data-path="a.after.0"') == 1  # the target of "show in tree"


def test_messages_keep_their_angle_brackets():
    assert render.status_html(error="stage<i>.block<j>").count("stage&lt;i&gt;.block&lt;j&gt;") == 1
    assert "&lt;stream end&gt;" in render.stale_html("'<stream end>'")


@pytest.fixture(scope="module")
def panels():
    """The Playground tab's parts, built in a Blocks that is never launched."""
    import gradio as gr

    from playground.presets import list_presets, load_preset
    from playground.ui.tabs import report, spec
    with gr.Blocks():
        toolbar = spec.build_toolbar(list_presets(), "efficientnet_lite0")
        summary = report.build_summary()
        panel = spec.build_spec_panel(toolbar, ["resnet18"], load_preset("efficientnet_lite0"))
        tabs = report.build_report_tabs([])
    return panel, summary, tabs


def test_analyze_fills_the_report_and_a_failure_marks_it_stale(panels):
    from playground.ui.tabs.report import on_analyze
    panel, summary, tabs = panels
    out = on_analyze(panel, summary, tabs, SE_STAGE3, None, 5, progress=None)
    assert f"{11_689_512 + SE_256_PARAMS:,} params" in out[summary.summary] and "+8,464" in out[summary.summary]
    assert "SEModule" in out[tabs.tree] and 'class="ln ins"' in out[tabs.tree] and out[summary.banner] == ""
    assert [i["path"] for i in out[tabs.json]["params"]["by_insert"]] == ["layer3_after.0"]
    assert "show in tree" in out[tabs.inserts]["value"] and "built" in out[panel.status]
    assert load_spec(out[panel.built]) == load_spec(SE_STAGE3)

    bad = on_analyze(panel, summary, tabs, "backbone: resnet18\ninsert:\n  - {at: stage9, module: se}\n", None, 5,
                     progress=None)
    # the old report stays, marked stale; no image size to offer (an unknown point, not a stem stride)
    assert set(bad) == {summary.banner, summary.fit, summary.fit_size, panel.status} and bad[summary.fit_size] is None
    assert "stale" in bad[summary.banner] and "does not build" in bad[panel.status]
    unparsed = on_analyze(panel, summary, tabs, "backbone: [resnet18", None, 5, progress=None)
    assert "stale" in unparsed[summary.banner] and "not valid YAML" in unparsed[panel.status]
    assert "does not build" not in unparsed[panel.status]  # it did not even parse


def test_spec_panel_edits_presets_and_undo(panels):
    from playground.ui.tabs import spec
    panel, _, _ = panels
    h = History.start(specs.preset_yaml("efficientnet_lite0"))
    assert spec.on_preset(panel, h, None, "efficientnet_lite0") == {panel.history: h}  # already shown: nothing
    out = spec.on_preset(panel, h, None, "se_resnet50")
    h2 = out[panel.history]
    assert out[panel.toolbar.preset] == "se_resnet50" and "layer*.*.bn3" in out[panel.yaml]
    undone = spec.on_step(panel, h2, None, h2.current, back=True)
    assert undone[panel.yaml] == h.current and undone[panel.toolbar.preset] == "efficientnet_lite0"
    typed = spec.on_yaml(panel, h2, None, "backbone: resnet18\n")
    assert panel.yaml not in typed and typed[panel.backbone] == "resnet18"  # the editor is not rewritten
    assert typed[panel.toolbar.preset] == specs.CUSTOM


def test_exports():
    spec = load_spec(SE_STAGE3)
    paths = [export_file(spec, fmt).path for fmt in ("Spec (YAML)", "Python snippet", "State dict (.safetensors)")]
    try:
        assert load_spec(paths[0].read_text()) == spec
        scope: dict = {}
        exec(paths[1].read_text().replace("print(", "(lambda *a: None)("), scope)  # the snippet rebuilds the model
        assert scope["built"].delta_params == SE_256_PARAMS
        from safetensors import safe_open
        with safe_open(str(paths[2]), "pt") as f:
            assert "layer3_after.0.module.fc1.weight" in f.keys() and "insert" in f.metadata()["spec"]
    finally:
        for path in paths:
            shutil.rmtree(path.parent, ignore_errors=True)
    if onnx_missing():
        with pytest.raises(SpecError, match="pip install onnx"):
            export_file(spec, "ONNX (.onnx)")
        return
    path, status = on_export(SE_STAGE3, "ONNX (.onnx)", progress=None)  # through a worker, as the page does
    try:
        lines = status.split("  \n")
        assert Path(path).suffix == ".onnx" and lines[0] == f"✓ {Path(path).name} · {Path(path).stat().st_size / 1e6:.2f} MB"
        assert lines[1].startswith("ONNX verified: max |diff| ") and "on chelsea, coffee" in lines[1]
        assert re.search(r"\(top-1 [\w ]+; onnxruntime [\d.]+, opset \d+, dynamic batch\)$", lines[1])
    finally:
        shutil.rmtree(Path(path).parent, ignore_errors=True)


def test_latency_in_the_page_says_within_noise_when_the_intervals_overlap():
    from playground.report import Latency

    def lat(median, lo, hi):
        return Latency(device="cpu", batch=1, dtype="fp32", channels_last=False, compiled=False, threads=2,
                       median_ms=median, iqr_ms=hi - lo, median_ci_ms=(lo, hi), throughput=1e3 / median, tflops=0.1)
    base = lat(80.0, 78.0, 83.0)
    noisy, slower = lat(84.0, 82.5, 86.0), lat(92.0, 90.0, 95.0)  # +5% overlapping; +15% clear of it
    assert "within noise" in render.latency_card(noisy, base, True) and 'class="pg-delta same"' in \
        render.latency_card(noisy, base, True)
    assert 'class="pg-delta up"' in render.latency_card(slower, base, True)
    assert "82.50–86.00" in render.latency_html(noisy, base) and "(within noise)" in render.latency_html(noisy, base)
    assert "TFLOP/s = 2 × MACs / s" in render.latency_html(slower, base)
    assert "latency-contended" not in render.latency_html(slower, base)
    busy = dataclasses.replace(slower, times_ms=[92.0] * 12, contended_blocks=3)
    assert "stitched: 3 of 12 blocks" in render.latency_html(busy, base)
