"""Load: concurrent API users against a local server (the app's worker processes), giants among them, then the
server's memory over many different specs.

    .venv/bin/python bench/bench_load.py [--duration 60] [--users 8] [--giant-duration 40] [--max-requests 2000]
                                         [--memory-requests 200] [--sample-every 10] [--json out.json]

Starts `app.py` in a subprocess on a free loopback port (127.0.0.1 only) with the app's default budgets and waits
until it answers; everything is bounded in time and count, and the server is stopped at the end whatever happens.

1. Load: `--users` gradio_client users, each in its own process with its own client, for `--duration` seconds (or
   `--max-requests` in all), each doing a fixed-seed mix of
   - `/analyze` of several common specs (presets and small stitched specs),
   - `/analyze` with `latency=True` (CPU, batch 1) of small models,
   - `/predict` with the bundled EfficientNet-Lite0 on scikit-image's photos saved as PNG files.
   Reported: requests and errors per endpoint, p50 / p95 / max latency of the request as the client sees it
   (queueing included); whether any two latency measurements overlapped (every `latency` in the answers carries
   `started_at` / `finished_at`, compared pairwise); and how many timed blocks ran beside an analysis
   (`contended_blocks`: 0 means no measurement shared the cores with an analysis).
2. Giants: 5 users of the same mix alone for `--giant-duration` seconds, then the same 5 while 3 more users keep
   asking for giant models (ViT-g/14 at 518 px, EVA02-E, ViT-H/14 at 448 px, ConvNeXt-XXL), which the budgets
   refuse. Reported: the giants' refusal times, and the 5 users' p95 without and with them.
3. Memory: `--memory-requests` sequential `/analyze` requests cycling through 20 different specs (small to medium
   backbones, image sizes, insertions), sampling the server's resident memory (VmRSS of its process) every
   `--sample-every` requests.

Exits with status 1 when a request failed, two latency runs overlapped or a giant was not refused. Numbers go to
BENCHMARKS.md ("Load").
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Common specs: presets and small stitched models (the analysis itself, no latency).
ANALYZE_SPECS = [
    "efficientnet_lite0",
    "se_resnet50",
    "eca_resnet50",
    "backbone: resnet18\ninsert:\n  - {at: stage3, module: se}\n",
    "backbone: mobilenetv3_small_100\ninsert:\n  - {at: stage2, module: eca}\n",
    "backbone: vit_tiny_patch16_224\ninsert:\n  - {at: stage6, module: se}\n",
    "backbone: convnext_atto\ninsert:\n  - {at: stage2, module: {parallel: [se, eca], merge: add}}\n",
]
# Latency runs on small models (CPU, batch 1): each takes the measurement section for a second or two.
LATENCY_SPECS = [
    "backbone: resnet18\nimg_size: 96\ninsert:\n  - {at: stage3, module: se}\n",
    "backbone: mobilenetv3_small_100\nimg_size: 128\n",
    "backbone: efficientnet_lite0\nimg_size: 96\ninsert:\n  - {at: final, module: eca}\n",
]
MIX = (("analyze", 0.45), ("latency", 0.15), ("predict", 0.40))
# Over the app's default budgets (700 M parameters, 200 GMACs per forward pass): refused before anything is built.
GIANT_SPECS = [
    "backbone: vit_giant_patch14_dinov2\nimg_size: 518\n",
    "backbone: eva02_enormous_patch14_clip_224\n",
    "backbone: vit_huge_patch14_224\nimg_size: 448\n",
    "backbone: convnext_xxlarge\n",
]
NORMAL_USERS, GIANT_USERS = 5, 3

# Memory phase: 20 different specs, small to medium backbones.
MEMORY_SPECS = [
    "backbone: resnet18\nimg_size: 128\n",
    "backbone: resnet18\nimg_size: 160\ninsert:\n  - {at: stage2, module: se}\n",
    "backbone: resnet34\nimg_size: 128\ninsert:\n  - {at: stage4, module: eca}\n",
    "backbone: resnet50\ninsert:\n  - {at: 'layer*.*.bn3', module: se}\n",
    "backbone: resnet50\nimg_size: 160\ninsert:\n  - {at: final, module: cbam}\n",
    "backbone: mobilenetv3_small_100\nimg_size: 160\n",
    "backbone: mobilenetv3_large_100\ninsert:\n  - {at: stage3, module: eca}\n",
    "backbone: efficientnet_lite0\nimg_size: 192\ninsert:\n  - {at: stage4, module: se}\n",
    "backbone: efficientnet_b0\nimg_size: 160\n",
    "backbone: convnext_atto\nimg_size: 160\ninsert:\n  - {at: stage3, module: {serial: [se, eca]}}\n",
    "backbone: convnext_femto\ninsert:\n  - {at: stage2, module: coord}\n",
    "backbone: vit_tiny_patch16_224\ninsert:\n  - {at: stage3, module: se}\n",
    "backbone: vit_small_patch16_224\nimg_size: 160\ninsert:\n  - {at: stage12, module: eca}\n",
    "backbone: deit_tiny_patch16_224\ninsert:\n  - {at: input, module: se}\n",
    "backbone: poolformer_s12\nimg_size: 160\n",
    "backbone: fasternet_t0\ninsert:\n  - {at: stage2, module: {parallel: [se, eca], merge: concat}}\n",
    "backbone: regnety_004\nimg_size: 160\n",
    "backbone: ghostnet_100\nimg_size: 160\ninsert:\n  - {at: stage3, module: eca}\n",
    "backbone: swin_tiny_patch4_window7_224\ninsert:\n  - {at: stage2, module: se}\n",
    "backbone: resnet18\nimg_size: 96\nstem: {stride: 4, kernel: 7, padding: 3}\n",
]


# ---- the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Server:
    """`python app.py [args]` on a free loopback port, stopped on exit."""

    def __init__(self, start_timeout: float = 180.0, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
               "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
               **(env or {})}
        self.started = time.monotonic()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait(start_timeout)

    def _wait(self, timeout: float) -> None:
        import httpx
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "config", timeout=2).status_code == 200:
                    self.ready_after = time.monotonic() - self.started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, n: int = 4000) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-n:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.log.close()


# ---- phase 1: concurrent users

def photos(folder: Path) -> list[str]:
    """scikit-image's photos (cat, coffee, astronaut, rocket) as PNG files to upload."""
    from PIL import Image
    from skimage import data
    out = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        path = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        out.append(str(path))
    return out


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _request(client, rng: random.Random, kind: str, rec: dict, images: list[str]) -> None:
    """One request of a user: what it asks and what the answer must hold."""
    from gradio_client import handle_file
    if kind == "analyze":
        r = json.loads(client.predict(rng.choice(ANALYZE_SPECS), api_name="/analyze"))
        assert r["params"]["total"] > 0 and r["latency"] is None
    elif kind == "latency":
        r = json.loads(client.predict(rng.choice(LATENCY_SPECS), True, "cpu", 1, "fp32", api_name="/analyze"))
        lat = r["latency"]
        assert lat["median_ms"] > 0
        rec["interval"] = (lat["started_at"], lat["finished_at"])
        rec["blocks"], rec["contended"] = len(lat["times_ms"]), lat["contended_blocks"]
    elif kind == "predict":
        photo = rng.choice(images)
        r = json.loads(client.predict("efficientnet_lite0", handle_file(photo), 3, api_name="/predict"))
        top = r["predictions"][0]["top"]
        assert len(top) == 3 and r["pretrained"]
        rec["top1"] = (Path(photo).stem, top[0]["label"])
    else:  # a giant: must be refused by a budget, in one line
        from gradio_client.exceptions import AppError
        try:
            client.predict(rng.choice(GIANT_SPECS), api_name="/analyze")
        except AppError as e:
            assert "limit here" in str(e) and "\n" not in str(e).strip(), str(e)
        else:
            raise AssertionError("a giant model was analysed, not refused")


def _user(url: str, k: int, giant: bool, seed: int, duration: float, max_requests: int, counter, start,
          images: list[str], out, niceness: int = 0) -> None:
    """One user, in a process of its own (as a real user's client is: users do not share an interpreter and its
    GIL), until the shared deadline; its records go to `out`, then its CPU seconds. `niceness`: this client yields
    the cores to the server (as a client on another machine would not compete for them)."""
    import resource

    from gradio_client import Client
    os.nice(niceness)
    rng = random.Random(seed * 1000 + k)
    client = Client(url, verbose=False)
    records: list[dict] = []
    start.wait(timeout=180)
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        with counter.get_lock():
            counter.value += 1
            if counter.value > max_requests:
                break
        kind = "giant" if giant else rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
        t0 = time.perf_counter()
        rec: dict = {"user": k, "kind": kind, "ok": True}
        try:
            _request(client, rng, kind, rec, images)
        except Exception as e:  # counted and reported
            rec["ok"], rec["error"] = False, f"{type(e).__name__}: {str(e)[:300]}"
        rec["seconds"] = time.perf_counter() - t0
        rec["done_at"] = time.time()
        records.append(rec)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put((records, {"giant" if giant else "user": usage.ru_utime + usage.ru_stime}))


def load_phase(url: str, users: int, duration: float, max_requests: int, images: list[str], seed: int,
               giants: int = 0, server_pid: int | None = None, giant_niceness: int = 0) -> dict:
    """`users` users of the mix (and `giants` users asking for giant models) for `duration` seconds, each user a
    process of its own; with `server_pid`, the CPU seconds the server process spent meanwhile."""
    import multiprocessing as mp

    import psutil
    ctx = mp.get_context("spawn")  # fresh interpreters: this process holds threads and a server's pipes
    counter, start, out = ctx.Value("i", 0), ctx.Barrier(users + giants + 1), ctx.Queue()
    procs = [ctx.Process(target=_user, args=(url, k, k >= users, seed, duration, max_requests, counter, start,
                                             images, out, giant_niceness if k >= users else 0), daemon=True)
             for k in range(users + giants)]
    for p in procs:
        p.start()
    start.wait(timeout=180)  # every client connected: the clock starts for all at once
    server = psutil.Process(server_pid) if server_pid else None
    cpu0 = sum(server.cpu_times()[:2]) if server else None
    started = time.time()
    records: list[dict] = []
    client_cpu = {"user": 0.0, "giant": 0.0}
    for _ in procs:  # a request in flight at the deadline finishes; a hung user is abandoned
        got, cpu = out.get(timeout=duration + 600)
        records.extend(got)
        for kind, seconds in cpu.items():
            client_cpu[kind] += seconds
    wall = time.time() - started
    server_cpu = sum(server.cpu_times()[:2]) - cpu0 if server else None
    for p in procs:
        p.join(timeout=30)

    intervals = sorted(r["interval"] for r in records if "interval" in r)
    overlaps = [(a, b) for a, b in itertools.combinations(intervals, 2) if a[0] < b[1] and b[0] < a[1]]
    gaps = [b[0] - a[1] for a, b in zip(intervals, intervals[1:])]
    by_kind = {}
    static = [r for r in records if r["kind"] in ("analyze", "predict")]  # what giants could delay
    for kind in [m for m, _ in MIX] + (["giant"] if giants else []):
        rs = [r for r in records if r["kind"] == kind]
        by_kind[kind] = {"requests": len(rs), "errors": sum(not r["ok"] for r in rs), **_spread(rs)}
    top1 = sorted({f"{photo} -> {label}" for r in records if "top1" in r for photo, label in [r["top1"]]})
    return {"users": users, "giants": giants, "duration_s": duration, "wall_s": wall, "requests": len(records),
            "errors": sum(not r["ok"] for r in records), "throughput_rps": len(records) / wall,
            "by_kind": by_kind, "static": _spread(static), "latency_runs": len(intervals),
            "latency_overlaps": len(overlaps), "min_gap_between_latency_runs_s": min(gaps) if gaps else None,
            "timed_blocks": sum(r.get("blocks", 0) for r in records),
            "contended_blocks": sum(r.get("contended", 0) for r in records),
            "latency_busy_fraction": sum(b - a for a, b in intervals) / wall, "predictions": top1,
            "error_samples": [r["error"] for r in records if not r["ok"]][:5],
            "server_cpu_s": server_cpu, "client_cpu_s": client_cpu}


def _spread(records: list[dict]) -> dict:
    ok = [r["seconds"] for r in records if r["ok"]]
    return {"p50_s": percentile(ok, 50) if ok else None, "p95_s": percentile(ok, 95) if ok else None,
            "max_s": max(ok) if ok else None}


def first_analysis(url: str) -> float:
    """Seconds until the default preset's first analysis answers: the workers' start-up, which the load waits for."""
    from gradio_client import Client
    t0 = time.perf_counter()
    assert json.loads(Client(url, verbose=False).predict("efficientnet_lite0", api_name="/analyze"))["params"]
    return time.perf_counter() - t0


# ---- phase 2: memory over many specs

def memory_phase(url: str, pid: int, requests: int, every: int) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False)
    samples = [{"requests": 0, "rss_mib": rss_mib(pid)}]
    errors, times = [], []
    for i in range(requests):
        spec = MEMORY_SPECS[i % len(MEMORY_SPECS)]
        t0 = time.perf_counter()
        try:
            r = json.loads(client.predict(spec, api_name="/analyze"))
            assert r["params"]["total"] > 0
        except Exception as e:  # counted and reported
            errors.append(f"{spec.splitlines()[0]}: {type(e).__name__}: {str(e)[:200]}")
        times.append(time.perf_counter() - t0)
        if (i + 1) % every == 0 or i + 1 == requests:
            samples.append({"requests": i + 1, "rss_mib": rss_mib(pid)})
    first_pass = samples[min(len(MEMORY_SPECS) // every, len(samples) - 1)]["rss_mib"]
    later = [s["rss_mib"] for s in samples if s["requests"] >= len(MEMORY_SPECS)]
    return {"requests": requests, "specs": len(MEMORY_SPECS), "errors": len(errors), "error_samples": errors[:5],
            "samples": samples, "rss_after_first_pass_mib": first_pass, "rss_max_after_first_pass_mib": max(later),
            "rss_last_mib": samples[-1]["rss_mib"], "p50_s": percentile(times, 50), "p95_s": percentile(times, 95)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the load phase (default 60)")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--giant-duration", type=float, default=40.0, help="seconds of each giants phase; 0 skips")
    ap.add_argument("--giant-nice", type=int, default=0,
                    help="niceness of the giant users' client processes (19: as if they ran on other machines)")
    ap.add_argument("--max-requests", type=int, default=2000, help="at most this many load-phase requests")
    ap.add_argument("--memory-requests", type=int, default=200, help="0 skips the memory phase")
    ap.add_argument("--sample-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if not (1 <= args.users <= 32 and 0 < args.duration <= 600 and 0 <= args.memory_requests <= 1000):
        ap.error("bounded runs only: 1-32 users, at most 600 s, at most 1000 memory requests")

    result: dict = {"giant_nice": args.giant_nice,
                    "machine": {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg(),
                                "python": platform.python_version()}}
    server = Server()
    result["startup_s"] = server.ready_after
    try:
        import gradio
        import torch
        result["machine"].update(torch=torch.__version__, gradio=gradio.__version__)
        result["server_rss_start_mib"] = rss_mib(server.proc.pid)
        result["first_analysis_s"] = first_analysis(server.url)  # the workers start once the page is served
        with tempfile.TemporaryDirectory() as tmp:
            images = photos(Path(tmp))
            print(f"load: {args.users} users for {args.duration:.0f} s against {server.url} ...", flush=True)
            result["load"] = load_phase(server.url, args.users, args.duration, args.max_requests, images, args.seed,
                                        server_pid=server.proc.pid)
            result["machine"]["load_avg_after_load"] = os.getloadavg()
            result["server_rss_after_load_mib"] = rss_mib(server.proc.pid)
            if args.giant_duration:
                print(f"giants: {NORMAL_USERS} users for {args.giant_duration:.0f} s alone, then with "
                      f"{GIANT_USERS} users asking for giants ...", flush=True)
                result["alone"] = load_phase(server.url, NORMAL_USERS, args.giant_duration, args.max_requests,
                                             images, args.seed + 1, server_pid=server.proc.pid)
                result["giants"] = load_phase(server.url, NORMAL_USERS, args.giant_duration, args.max_requests,
                                              images, args.seed + 1, giants=GIANT_USERS, server_pid=server.proc.pid,
                                              giant_niceness=args.giant_nice)
        if args.memory_requests:
            print(f"memory: {args.memory_requests} requests over {len(MEMORY_SPECS)} specs ...", flush=True)
            result["memory"] = memory_phase(server.url, server.proc.pid, args.memory_requests, args.sample_every)
        result["machine"]["load_avg_after"] = os.getloadavg()
    finally:
        server.stop()

    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    phases = [result[k] for k in ("load", "alone", "giants") if k in result]
    failed = any(p["errors"] or p["latency_overlaps"] for p in phases) or (
        args.memory_requests and result["memory"]["errors"])
    return 1 if failed else 0


def report(result: dict) -> None:
    m, load = result["machine"], result["load"]
    print(f"server: serving {result['startup_s']:.1f} s after `python app.py`; first analysis (workers starting) "
          f"{result['first_analysis_s']:.1f} s later")
    print(f"\nmachine: {m['cpus']} CPUs, load average {m['load_avg_before'][0]:.2f} before, "
          f"{m['load_avg_after_load'][0]:.2f} after the load phase; torch {m['torch']}, gradio {m['gradio']}")
    print(f"load: {load['users']} users, {load['wall_s']:.1f} s, {load['requests']} requests "
          f"({load['throughput_rps']:.2f}/s), {load['errors']} errors")
    print("| endpoint | requests | errors | p50 s | p95 s | max s |")
    print("|---|---:|---:|---:|---:|---:|")
    names = {"analyze": "/analyze", "latency": "/analyze latency=True", "predict": "/predict"}
    for kind, s in load["by_kind"].items():
        fmt = (lambda v: f"{v:.2f}" if v is not None else "—")
        print(f"| {names[kind]} | {s['requests']} | {s['errors']} | {fmt(s['p50_s'])} | {fmt(s['p95_s'])} | "
              f"{fmt(s['max_s'])} |")
    gap = load["min_gap_between_latency_runs_s"]
    print(f"latency runs: {load['latency_runs']}, overlapping pairs: {load['latency_overlaps']}"
          + (f", smallest gap between two runs {gap * 1e3:.1f} ms" if gap is not None else "")
          + f"; a measurement was running {load['latency_busy_fraction']:.0%} of the time")
    print(f"timed blocks: {load['timed_blocks']}, of which beside an analysis: {load['contended_blocks']}")
    print("predictions:", "; ".join(load["predictions"]))
    for e in load["error_samples"]:
        print("  error:", e)
    if "giants" in result:
        alone, giants = result["alone"], result["giants"]
        g = giants["by_kind"]["giant"]
        change = giants["static"]["p95_s"] / alone["static"]["p95_s"] - 1
        print(f"\ngiants: {g['requests']} giant requests, {g['errors']} not refused as they should be; refused in "
              f"p50 {g['p50_s']:.2f} s, p95 {g['p95_s']:.2f} s, max {g['max_s']:.2f} s")
        print(f"the {alone['users']} other users' /analyze and /predict: p50 {alone['static']['p50_s']:.2f} s / "
              f"p95 {alone['static']['p95_s']:.2f} s alone ({alone['requests']} requests in all), p50 "
              f"{giants['static']['p50_s']:.2f} s / p95 {giants['static']['p95_s']:.2f} s beside the giants "
              f"({giants['requests'] - g['requests']} requests): p95 {change:+.0%}; errors {alone['errors']} / "
              f"{giants['errors']}")
        print(f"CPU seconds (of {(os.cpu_count() or 1) * giants['wall_s']:.0f} core-seconds): server process "
              f"{alone['server_cpu_s']:.1f} alone, {giants['server_cpu_s']:.1f} beside the giants; the 5 users' "
              f"clients {alone['client_cpu_s']['user']:.1f} / {giants['client_cpu_s']['user']:.1f}; the giants' "
              f"clients {giants['client_cpu_s']['giant']:.1f} (niceness {result.get('giant_nice', 0)})")
        for e in alone["error_samples"] + giants["error_samples"]:
            print("  error:", e)
    mem = result.get("memory")
    if mem:
        print(f"\nmemory: {mem['requests']} /analyze requests over {mem['specs']} specs, {mem['errors']} errors, "
              f"p50 {mem['p50_s']:.2f} s, p95 {mem['p95_s']:.2f} s; server RSS at start "
              f"{result['server_rss_start_mib']:.0f} MiB, after the load phase "
              f"{result['server_rss_after_load_mib']:.0f} MiB")
        print("requests: " + " ".join(f"{s['requests']:>5}" for s in mem["samples"]))
        print("RSS MiB:  " + " ".join(f"{s['rss_mib']:>5.0f}" for s in mem["samples"]))
        for e in mem["error_samples"]:
            print("  error:", e)


if __name__ == "__main__":
    sys.exit(main())
