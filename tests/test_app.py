"""The app through its API as a client sees it (gradio_client against the app launched in-process), and the UI's
pure helpers: spec <-> controls, share links, rendering, export."""
import json
import shutil

import httpx
import pytest

gradio_client = pytest.importorskip("gradio_client")

from playground import ui  # noqa: E402
from playground.errors import SpecError  # noqa: E402
from playground.spec import load_spec  # noqa: E402

SE_STAGE3 = "backbone: resnet18\ninsert:\n  - {at: stage3, module: se}\n"
SE_256_PARAMS = 256 * 16 + 16 + 16 * 256 + 256  # timm SEModule on 256 channels, reduction 16


def call(client, *args, api_name):
    return json.loads(client.predict(*args, api_name=api_name))


# ---- the API

def test_named_endpoints(client):
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/analyze", "/predict", "/points", "/presets", "/compare"} <= set(named)
    assert len(named) == 5  # the page's own events are private


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


def test_queue_cannot_be_bypassed_and_uploads_are_limited(server):
    r = httpx.post(server + "gradio_api/run/analyze", json={"data": [SE_STAGE3]}, timeout=10)
    assert r.status_code == 404
    big = {"files": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")}
    assert httpx.post(server + "gradio_api/upload", files=big, timeout=30).status_code == 413


# ---- the UI's helpers (no server)

def test_share_link_round_trip():
    token = ui.encode_spec(SE_STAGE3)
    assert "=" not in token and load_spec(ui.decode_spec(token)) == load_spec(SE_STAGE3)
    for bad in ("!!", "bm90IHlhbWw6IFs"):  # not base64url; base64 of broken YAML
        with pytest.raises(SpecError, match="shared link|not valid YAML"):
            ui.decode_spec(bad)


def test_controls_and_yaml_agree():
    spec = load_spec(ui.preset_yaml("eca_resnet50"))
    values = ui.controls_from_spec(spec)
    data = ui.spec_from_controls(ui.spec_yaml(spec), *values)
    assert load_spec(data) == spec  # the preset survives a round trip, title included
    values[ui.CONTROLS.index("gate")] = True
    data = ui.spec_from_controls(ui.spec_yaml(spec), *values)
    assert data["gate"] is True and "title" not in data  # no longer the preset: its title goes
    values[ui.CONTROLS.index("backbone")] = "resnet18"
    values[ui.CONTROLS.index("img_size")] = 224  # the default: not written
    assert "img_size" not in ui.spec_from_controls("", *values)


def test_insertion_editor_rows():
    rows = ui.add_row([], "stage2", ["se", "eca"], "parallel · concat", "")
    rows = ui.add_row(rows, "layer*.*.bn3", ["eca"], "serial", "{kernel_size: 5}")
    assert ui.rows_to_inserts(rows) == [
        {"at": "stage2", "module": {"parallel": ["se", "eca"], "merge": "concat"}},
        {"at": "layer*.*.bn3", "module": "eca", "args": {"kernel_size": 5}}]
    assert ui.remove_row(rows, 0) == rows[1:] and ui.remove_row(rows, None) == rows[:1]
    with pytest.raises(SpecError, match="args apply to a single module"):
        ui.add_row([], "stage2", ["se", "eca"], "serial", "{rd_ratio: 0.25}")


def test_tree_highlights_stitched_modules():
    tree = "Net(\n  (a): Conv(\n    (after): Stitch(\n      after a\n      (0): SE(\n        k=1\n" \
           "      )\n    )\n  )\n)"
    assert ui.tree_paths(tree)[4:7] == ["a.after.0", "a.after.0", "a.after.0"]
    html = ui.tree_html(tree, ["a.after.0"])
    assert html.count('class="ln ins"') == 3 and html.count('class="ln wrap"') == 1


def test_report_panel_renders():
    out = dict(zip(ui.REPORT_OUTPUTS, ui.analyze_ui(SE_STAGE3, None, 5, progress=None)))
    assert f"{11_689_512 + SE_256_PARAMS:,} params" in out["summary"] and "+8,464" in out["summary"]
    assert "SEModule" in out["tree"] and 'class="ln ins"' in out["tree"]
    assert [i["path"] for i in out["json"]["params"]["by_insert"]] == ["layer3_after.0"]


def test_exports():
    spec = load_spec(SE_STAGE3)
    paths = [ui.export_file(spec, fmt) for fmt in ("Spec (YAML)", "Python snippet", "State dict (.safetensors)")]
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
    if ui.onnx_missing():
        with pytest.raises(SpecError, match="pip install onnx"):
            ui.export_file(spec, "ONNX (.onnx)")
