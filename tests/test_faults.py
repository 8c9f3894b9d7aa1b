"""Faults through the API, as a client sends them: generated and hand-made bad specs through /analyze, a corpus of
bad files through /predict, an oversized upload, and two clients interleaved. Each bad input gets a clear one-line
error (gradio_client's AppError), never a traceback or Gradio's "the upstream app has raised an exception"; the
server keeps serving; nothing of one client's request shows up in another's answer.

The app is launched in-process on a free loopback port, as in test_app.py. Specs use small backbones at small image
sizes, and hypothesis runs a fixed (derandomized) set of examples, so the module stays well under a minute.
"""
import base64
import io
import json
import struct
import threading
import uuid
import zlib
from pathlib import Path

import httpx
import pytest
import yaml

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("hypothesis")

from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from playground import ui  # noqa: E402
from playground.build import MAX_STITCHED_MODULES  # noqa: E402
from playground.errors import MAX_MESSAGE_CHARS  # noqa: E402
from playground.modules import MERGES  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the pixel-bomb files

GOOD = "backbone: resnet18\nimg_size: 64\ninsert:\n  - {at: stage3, module: se}\n"
SMALL = ("resnet18", "mobilenetv3_small_050", "vit_tiny_patch16_224", "efficientnet_lite0")
NOT_CLEAN = ("Traceback", "upstream Gradio app", "internal error", "show_error", 'File "')


def assert_clean(error: BaseException) -> str:
    """A user-facing error: AppError, one line, short, no traceback, not an internal error."""
    assert isinstance(error, AppError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert message and "\n" not in message and len(message) <= MAX_MESSAGE_CHARS + 100, message[:300]
    assert not any(s in message for s in NOT_CLEAN), message[:300]
    return message


def analyze(client, spec: str, *args) -> dict:
    return json.loads(client.predict(spec, *args, api_name="/analyze"))


def assert_serving(client) -> None:
    r = analyze(client, GOOD)
    assert [i["path"] for i in r["params"]["by_insert"]] == ["layer3_after.0"] and r["params"]["delta"] == 256 * 16 * 2 + 16 + 256


# ---- generated specs

def long_text() -> st.SearchStrategy:
    return st.builds(lambda c, n: c * n, st.characters(), st.integers(200, 20_000))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2 ** 80, 2 ** 80),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), long_text(),
                    st.sampled_from(["", "1e309", "~", "null", "yes", "0x10", "résnet18", "🙂", "\x00", "\u202e"]))
JUNK = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4), max_leaves=10)
NAMES = st.sampled_from(["se", "eca", "cbam", "identity", "gc", "coord", "ecam", "ceca"]) | st.sampled_from(
    ["", "SE", "se ", "torch.nn.Linear", "__import__('os')", "ｓｅ", "se\x00"]) | st.text(max_size=12)
ARGS = st.dictionaries(
    st.sampled_from(["rd_ratio", "rd_channels", "rd_divisor", "kernel_size", "act_layer", "gate_layer", "gamma",
                     "beta", "use_mlp", "bogus", "__class__"]),
    st.integers(-10, 10 ** 12) | st.floats(allow_nan=True) | st.booleans() | JUNK
    | st.sampled_from(["relu", "gelu", "sigmoid", "os.system", "torch.nn.ReLU"]),
    max_size=3)
LEAF = NAMES | st.fixed_dictionaries({"name": NAMES}, optional={"args": ARGS | JUNK})


def _nest(depth: int, kind: str) -> dict:
    return {kind: ["se" if depth <= 1 else _nest(depth - 1, kind)]}


MODULES = st.one_of(
    st.recursive(LEAF, lambda inner: st.fixed_dictionaries({"serial": st.lists(inner, max_size=9)})
                 | st.fixed_dictionaries({"parallel": st.lists(inner, max_size=9)},
                                         optional={"merge": st.sampled_from(MERGES + ("max", "")) | JUNK}),
                 max_leaves=30),
    st.builds(_nest, st.integers(1, 12), st.sampled_from(["serial", "parallel"])),  # deeply nested composites
    JUNK)
POINTS = st.sampled_from(["stage1", "stage2", "stage3", "stage4", "final", "input", "stem", "stage1.block1",
                          "stage2.block*", "stage9", "stage0", "stage1.block99", "layer*.*.bn2", "layer1.0.conv1",
                          "blocks.*", "*", "**", "*" * 300 + "x", "", "[", "layer[1-3].0.bn1"])
INSERT = st.fixed_dictionaries({"at": POINTS | st.text(max_size=30) | JUNK, "module": MODULES},
                               optional={"args": ARGS | JUNK}) | JUNK


def maybe(draw, p_valid: float, valid: st.SearchStrategy, other: st.SearchStrategy):
    return draw(valid if draw(st.floats(0, 1)) < p_valid else other)


@st.composite
def spec_data(draw) -> dict:
    """A spec as data: mostly well-formed with small backbones, with wrong types, huge numbers, unicode, long
    strings, deep composites and garbage keys mixed in."""
    backbone = maybe(draw, 0.85, st.sampled_from(SMALL), st.text(max_size=30) | long_text() | JUNK)
    d: dict = {"backbone": backbone}
    optional = {
        "img_size": lambda: maybe(draw, 0.7, st.sampled_from([32, 48, 64]),
                                  SCALARS | st.sampled_from([15, 1025, 10 ** 30, -64, 64.5, "64"])),
        "insert": lambda: maybe(draw, 0.85, st.lists(INSERT, max_size=4),
                                JUNK | st.builds(lambda e: [e] * 70, INSERT)),
        "stem": lambda: maybe(draw, 0.7, st.fixed_dictionaries({}, optional={
            k: st.integers(-2, 80) | JUNK for k in ("stride", "kernel", "padding")}), JUNK),
        "gate": lambda: draw(st.booleans() | JUNK),
        "head_norm": lambda: draw(st.sampled_from([None, "layernorm", "batchnorm", "groupnorm", "rms"]) | JUNK),
        "num_classes": lambda: draw(st.sampled_from([None, 0, 1, 10, -1, 100_001, 10 ** 9]) | JUNK),
        "title": lambda: draw(st.text(max_size=300) | long_text() | JUNK),
        "description": lambda: draw(st.text(max_size=50) | long_text()),
        "pretrained": lambda: draw(st.just(False) | JUNK) if backbone != "efficientnet_lite0" else draw(
            st.booleans()),
        "checkpoint": lambda: draw(st.sampled_from(["/etc/passwd", "weights.pth", "/nonexistent/w.safetensors",
                                                    "../../x.bin", ""]) | JUNK),
        "drop_path_rate": lambda: draw(st.floats(allow_nan=True) | JUNK),
    }
    for key, value in optional.items():
        if draw(st.integers(0, 9)) < (5 if key in ("img_size", "insert") else 1):
            d[key] = value()
    if draw(st.integers(0, 9)) == 0:
        d.update(draw(st.dictionaries(st.text(max_size=20) | st.integers() | st.none(), JUNK, min_size=1,
                                      max_size=2)))
    return d


@st.composite
def spec_texts(draw) -> str:
    """YAML text of a generated spec, or JSON, truncated YAML, plain text, or YAML of a non-mapping."""
    form = draw(st.integers(0, 9))
    if form == 8:
        return draw(st.text(max_size=200))
    data = draw(spec_data()) if form < 9 else draw(JUNK)
    text = json.dumps(data) if form == 6 else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if form == 7:
        text = text[:draw(st.integers(0, len(text)))]
    return text


def test_generated_specs_through_analyze(client):
    outcomes = {"report": 0, "error": 0}

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                     HealthCheck.filter_too_much])
    @given(spec_texts())
    def run(text):
        try:
            r = analyze(client, text)
        except Exception as e:  # noqa: BLE001 (the assertion says what it was)
            assert_clean(e)
            outcomes["error"] += 1
            return
        assert r["params"]["total"] > 0 and r["backbone"] in SMALL and r["latency"] is None
        outcomes["report"] += 1

    run()
    assert_serving(client)
    assert outcomes["error"] and outcomes["report"], outcomes  # both paths were exercised


# ---- hand-made bad specs: one per fault found (each was an internal error, a hang or gigabytes before)

def _nest_aliases(depth: int) -> str:
    """A flow mapping whose anchors multiply the module count by 4 per level: 8 * 4^(depth-1) modules, a few bytes."""
    text = "{serial: [&l0 se, *l0, *l0, *l0, *l0, *l0, *l0, *l0]}"
    for i in range(1, depth):
        text = f"{{serial: [&l{i} {text}, *l{i}, *l{i}, *l{i}]}}"
    return f"backbone: resnet18\ninsert:\n  - at: stage3\n    module: {text}\n"


BAD_SPECS = {
    "deeply nested YAML": ("backbone: resnet18\ninsert: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    "an integer of 5000 digits": ("backbone: resnet18\nimg_size: 1" + "0" * 5000, "not valid YAML"),
    "a 4000-digit image size": ("backbone: resnet18\nimg_size: 1" + "0" * 4000, "characters cut"),
    "a 100 KB title": ("backbone: resnet18\ntitle: [" + "a" * 100_000 + "]", "characters cut"),
    "YAML anchors: 8 * 4^7 modules in 300 bytes": (_nest_aliases(8), "nested more than 4 deep"),
    "YAML anchors: 128 modules, 3 deep": (_nest_aliases(3), "32 modules in one composite; at most 16"),
    "composites 6 deep": ("backbone: resnet18\ninsert: [{at: stage3, module: "
                          + json.dumps(_nest(6, "serial")) + "}]", "nested more than 4 deep"),
    "64 modules in one composite": ("backbone: resnet18\ninsert: [{at: stage3, module: {serial: [{serial: ["
                                    + ", ".join(["se"] * 8) + "]}" + ", {serial: [se, se, se, se, se, se, se, se]}"
                                    * 7 + "]}}]", "at most 16"),
    "a glob times a composite": ("backbone: resnet18\nimg_size: 64\ninsert: [{at: 'layer*', module: {serial: "
                                 "[se, eca, se, eca]}}]", f"at most {MAX_STITCHED_MODULES}"),
    "rd_channels of 10^11": ("backbone: resnet18\nimg_size: 64\ninsert: [{at: final, module: se, args: "
                             "{rd_channels: 100000000000}}]", "M parameters; at most 100 M"),
    "rd_ratio 64 on 2048 channels": ("backbone: resnet50\nimg_size: 64\ninsert: [{at: final, module: se, args: "
                                     "{rd_ratio: 64}}]", "M parameters; at most 100 M"),
    "a Python tag": ("backbone: !!python/object/apply:os.system ['echo hi']", "not valid YAML"),
    "a server file name": ("/etc/passwd", "expected a mapping"),
}


def test_bad_specs_get_clean_errors(client):
    for name, (text, expected) in BAD_SPECS.items():
        with pytest.raises(Exception) as info:
            client.predict(text, api_name="/analyze")
        message = assert_clean(info.value)
        assert expected in message, f"{name}: {message}"
    assert_serving(client)


# ---- bad files through /predict

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_only(width: int, height: int, color_type: int = 2) -> bytes:
    """A PNG that claims width x height in its header, with a few bytes of (too short) data: tiny on disk."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b""))


def grey_png(width: int, height: int) -> bytes:
    """A valid all-black greyscale PNG; zeros compress about 1000:1, so 13000 x 13000 is 160 KB."""
    z = zlib.compressobj(9)
    rows = b"".join(z.compress(b"\0" * (width + 1)) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    import torch
    from PIL import Image
    from skimage import data

    d = tmp_path_factory.mktemp("bad_files")
    jpeg = io.BytesIO()
    Image.fromarray(data.chelsea()).save(jpeg, "JPEG")
    files = {
        "truncated.jpg": (jpeg.getvalue()[: len(jpeg.getvalue()) // 2], "truncated or corrupt"),
        "zero.png": (b"", "is empty (0 bytes)"),
        "notes.png": (b"these are notes, not pixels\n" * 20, "not a recognised image"),
        "page.png": (b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
                     "not a recognised image"),
        "header_100000x100000.png": (png_header_only(100_000, 100_000), "pixel limit"),
        "grey_13000x13000.png": (grey_png(13_000, 13_000), "over the 40 megapixel limit"),
        "header_only_64x64.png": (png_header_only(64, 64), "truncated or corrupt"),
    }
    paths = {}
    for name, (content, expected) in files.items():
        (d / name).write_bytes(content)
        paths[name] = (d / name, expected)
    torch.save({"weight": torch.zeros(3)}, d / "weights.png")  # a .pth renamed
    paths["weights.png"] = (d / "weights.png", "not a recognised image")
    (d / "page.html").write_bytes(files["page.png"][0])
    paths["page.html"] = (d / "page.html", "not a recognised image")
    return paths


def test_bad_files_through_predict(client, bad_files):
    for name, (path, expected) in bad_files.items():
        assert path.stat().st_size < 1_000_000
        with pytest.raises(Exception) as info:
            client.predict("efficientnet_lite0", handle_file(str(path)), 3, api_name="/predict")
        message = assert_clean(info.value)
        assert expected in message and path.name in message, f"{name}: {message}"
    cat = ui.sample_images()[0]
    r = json.loads(client.predict("efficientnet_lite0", handle_file(cat), 3, api_name="/predict"))
    assert "cat" in r["predictions"][0]["top"][0]["label"]


def test_images_as_data_urls(client):
    """A `data:` URL is not an upload (no upload limit applies): the same checks, before Gradio decodes it."""
    def data_url(content: bytes) -> dict:
        return {"url": "data:image/png;base64," + base64.b64encode(content).decode(), "meta": {"_type":
                                                                                               "gradio.FileData"}}
    for content, expected in ((b"not a png", "not a recognised image"), (b"", "is empty (0 bytes)"),
                              (grey_png(13_000, 13_000), "over the 40 megapixel limit")):
        with pytest.raises(Exception) as info:
            client.predict("efficientnet_lite0", data_url(content), 3, api_name="/predict")
        assert expected in assert_clean(info.value)
    with open(ui.sample_images()[1], "rb") as f:
        r = json.loads(client.predict("efficientnet_lite0", data_url(f.read()), 3, api_name="/predict"))
    assert "espresso" in r["predictions"][0]["top"][0]["label"]


def test_oversized_upload_is_refused_and_the_server_survives(server, client, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(64, 64) + b"\0" * (10 * 1024 * 1024))  # over the app's 10 MB upload limit
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # gradio_client checks first
        client.predict("efficientnet_lite0", handle_file(str(big)), 3, api_name="/predict")
    with open(big, "rb") as f:  # a client that does not: the server refuses the upload itself
        r = httpx.post(server + "gradio_api/upload", files={"files": ("big.png", f, "image/png")}, timeout=60)
    assert r.status_code == 413
    assert_serving(client)


# ---- isolation: two clients, different specs, interleaved

def test_interleaved_clients_get_their_own_results(server):
    tag = uuid.uuid4().hex[:8]
    specs = {
        "A": f"title: Client A {tag} ✓\nbackbone: resnet18\nimg_size: 64\ninsert:\n  - {{at: stage3, module: se}}\n",
        "B": f"title: Client B {tag} ✓\nbackbone: mobilenetv3_small_050\nimg_size: 48\n"
             f"insert:\n  - {{at: stage2, module: eca}}\n",
    }
    photos = dict(zip("AB", ui.sample_images()))  # chelsea (a cat) for A, coffee for B
    topk = {"A": 2, "B": 4}
    clients = {k: gradio_client.Client(server, verbose=False) for k in "AB"}
    results: dict = {"A": [], "B": []}
    errors: list = []
    start = threading.Barrier(2)

    def user(k: str) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(3):
                results[k].append(("analyze", clients[k].predict(specs[k], api_name="/analyze")))
                results[k].append(("predict", clients[k].predict(specs[k], handle_file(photos[k]), topk[k],
                                                                 api_name="/predict")))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=user, args=(k,)) for k in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors and all(len(v) == 6 for v in results.values()), errors
    for k, other in (("A", "B"), ("B", "A")):
        for kind, text in results[k]:
            assert f"Client {other} {tag}" not in text  # nothing of the other client's spec
            r = json.loads(text)
            if kind == "analyze":
                assert r["spec"]["title"] == f"Client {k} {tag} ✓"
                assert r["backbone"] == ("resnet18" if k == "A" else "mobilenetv3_small_050")
            else:
                (p,) = r["predictions"]
                assert p["image"] == Path(photos[k]).name and len(p["top"]) == topk[k]


def test_specs_from_the_web_name_no_server_file(client):
    """A spec's `checkpoint` would make the server read a file of its own: the web app refuses it in one line."""
    with pytest.raises(Exception) as info:
        client.predict("backbone: resnet18\ncheckpoint: model.safetensors", api_name="/analyze")
    assert "checkpoint: the web app loads no files from the server" in assert_clean(info.value)
    assert_serving(client)
