"""Calls the app's named endpoints `/analyze` and `/predict` with gradio_client, as docker-smoke.sh's last check.

Runs wherever gradio_client, scikit-image and Pillow are installed: docker-smoke.sh pipes it into `python -` inside
the container (which has no network), so the bundled weights must serve `/predict` offline.

    python scripts/docker_smoke_client.py http://127.0.0.1:7860/
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import skimage.data
from gradio_client import Client, handle_file
from PIL import Image

SPEC = "efficientnet_lite0"  # the preset: EfficientNet-Lite0 with the bundled ImageNet weights (pretrained: true)
PARAMS = 4_652_008


def main(url: str) -> int:
    client = Client(url, verbose=False)
    failures = []

    t = time.perf_counter()
    report = json.loads(client.predict(SPEC, True, "cpu", 1, "fp32", api_name="/analyze"))
    analyze_s = time.perf_counter() - t
    params, macs, latency = report["params"]["total"], report["macs"]["total"], report["latency"] or {}
    print(f"/analyze {SPEC} (latency, cpu, batch 1, fp32): {params:,} params, {macs / 1e9:.2f} GMACs, "
          f"median {latency.get('median_ms', float('nan')):.1f} ms on {latency.get('threads')} threads, "
          f"call {analyze_s:.1f} s")
    if params != PARAMS:
        failures.append(f"/analyze: {params} params, expected {PARAMS}")
    if not latency.get("median_ms"):
        failures.append("/analyze: no latency in the report")

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "chelsea.png"  # scikit-image's sample photo of a tabby cat
        Image.fromarray(skimage.data.chelsea()).save(photo)
        t = time.perf_counter()
        out = json.loads(client.predict(SPEC, handle_file(str(photo)), 3, api_name="/predict"))
        predict_s = time.perf_counter() - t
    (pred,) = out["predictions"]
    top = pred["top"]
    print(f"/predict {SPEC} on chelsea.png: pretrained={out['pretrained']}, "
          + ", ".join(f"{c['label']} {c['prob']:.3f}" for c in top) + f", call {predict_s:.1f} s")
    for warning in out["warnings"]:
        print(f"  warning: {warning}")
    if "cat" not in top[0]["label"].lower():
        failures.append(f"/predict: top-1 is {top[0]['label']!r}, expected a cat")

    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7860/"))
