"""One request cannot take the server down (issue 13), through the API of a real `python app.py` with small budgets:
a worker killed mid-analysis, a spec over each budget, a worker over its memory limit. Each gets one line, the next
request (from another client) succeeds, no traceback reaches a user, and the server's memory stays flat.

The budgets are set so that each case is far from its edge on any 2-core machine: a prediction with ViT-L/16 and a
stitched SE builds two initialised copies of 304 M parameters (2.4 GB; static analyses count a lean build, which
fits) against a 1.25 GB memory limit; 13+ forward passes of ResNet-18 at batch 32
(1.3 s each here) against a 6 s time limit.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

gradio_client = pytest.importorskip("gradio_client")
psutil = pytest.importorskip("psutil")

from gradio_client.exceptions import AppError  # noqa: E402

from bench.bench_load import Server  # noqa: E402

LIMITS = {"PLAYGROUND_WORKERS": "2", "PLAYGROUND_MAX_PARAMS_M": "400", "PLAYGROUND_MAX_GMACS": "100",
          "PLAYGROUND_MAX_IMG_SIZE": "704", "PLAYGROUND_MAX_SECONDS": "6", "PLAYGROUND_WORKER_MEMORY_GB": "1.25"}
SMALL = "backbone: resnet18\nimg_size: 96\ninsert:\n  - {at: stage3, module: se}\n"
SERVER_RSS_SLACK_MB = 100  # allocator and queue noise of a Python server; a model would be hundreds of MB


@pytest.fixture(scope="module")
def app_server():
    server = Server(env=LIMITS)
    try:
        yield server
    finally:
        server.stop()


def new_client(server) -> gradio_client.Client:
    return gradio_client.Client(server.url, verbose=False)


def analyze(client, spec: str, latency: bool = False, batch: int = 1) -> str:
    return client.predict(spec, latency, "cpu", batch, "fp32", api_name="/analyze")


def refusal(client, spec: str, photo: str | None = None, **kw) -> str:
    """The error a request (an analysis, or a prediction of `photo`) gets: exactly one line, with no traceback."""
    with pytest.raises(AppError) as e:
        if photo:
            client.predict(spec, gradio_client.handle_file(photo), 3, api_name="/predict")
        else:
            analyze(client, spec, **kw)
    message = str(e.value)
    assert "\n" not in message.strip() and "Traceback" not in message and "torch" not in message, message
    return message


def workers(server, lane: str) -> list[psutil.Process]:
    """The server's worker processes of a lane."""
    return [p for p in psutil.Process(server.proc.pid).children()
            if "playground.workers.serve" in p.cmdline() and p.cmdline()[p.cmdline().index("--lane") + 1] == lane]


def server_rss_mb(server) -> float:
    return psutil.Process(server.proc.pid).memory_info().rss / 2 ** 20


@pytest.fixture(scope="module")
def warm(app_server):
    """Every worker up and the small spec analysed once; the server's memory then."""
    client = new_client(app_server)
    assert '"params"' in analyze(client, SMALL)
    return server_rss_mb(app_server)


@pytest.mark.parametrize("spec, words", [
    ("backbone: vit_huge_patch14_224", ["630.8 M parameters", "limit here of 400 M", "PLAYGROUND_MAX_PARAMS_M"]),
    ("backbone: vit_base_patch16_224\nimg_size: 640", ["GMACs per image", "100 GMACs", "PLAYGROUND_MAX_GMACS"]),
    ("backbone: resnet18\nimg_size: 768", ["768 px", "704 px", "PLAYGROUND_MAX_IMG_SIZE"]),
])
def test_a_spec_over_a_budget_is_refused_before_it_is_built(app_server, warm, spec, words):
    pids = {p.pid for p in workers(app_server, "analysis")}
    message = refusal(new_client(app_server), spec)
    assert all(w in message for w in words), message
    assert {p.pid for p in workers(app_server, "analysis")} == pids  # refused, not killed
    assert '"params"' in analyze(new_client(app_server), SMALL)


def test_a_request_over_the_time_budget_stops_its_worker_only(app_server, warm):
    message = refusal(new_client(app_server), "backbone: resnet18", latency=True, batch=32)
    assert "took more than 6 s; the limit here is 6 s (PLAYGROUND_MAX_SECONDS)" in message, message
    assert "latency run" in message
    assert '"params"' in analyze(new_client(app_server), SMALL)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from PIL import Image
    from skimage import data
    path = tmp_path_factory.mktemp("photos") / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return str(path)


def test_a_worker_over_its_memory_limit_is_stopped_and_replaced(app_server, warm, photo):
    before = {p.pid for p in workers(app_server, "analysis")}
    message = refusal(new_client(app_server), "backbone: vit_large_patch16_224\ninsert:\n  - {at: final, module: se}",
                      photo)
    assert "prediction needed more than 1.25 GB of memory; the limit here is 1.25 GB (PLAYGROUND_WORKER_MEMORY_GB)" \
        in message, message
    assert '"params"' in analyze(new_client(app_server), SMALL)
    assert {p.pid for p in workers(app_server, "analysis")} != before  # one was replaced


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    return {p.pid: sum(p.cpu_times()[:2]) for p in procs}


def settled(server, timeout: float = 120.0) -> list[psutil.Process]:
    """Both analysis workers up and idle (a replacement importing torch is busy for seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = workers(server, "analysis")
        before = cpu_seconds(procs)
        time.sleep(0.5)
        if len(procs) == 2 and all(v - before[k] < 0.02 for k, v in cpu_seconds(procs).items()):
            return procs
    raise AssertionError("the analysis workers did not settle")


def busy_worker(procs: list[psutil.Process], timeout: float = 60.0) -> psutil.Process:
    """The worker of `procs` that starts computing (CPU time rising) first."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(procs)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        for p in procs:
            now = sum(p.cpu_times()[:2])
            if now - last[p.pid] > 0.1:  # more than half of the 0.2 s on a core
                return p
            last[p.pid] = now
    raise AssertionError("no analysis worker started computing")


def test_a_worker_killed_mid_analysis_costs_one_line_and_the_next_request_succeeds(app_server, warm):
    client = new_client(app_server)
    idle = settled(app_server)
    job = client.submit("backbone: convnext_small\ninsert:\n  - {at: stage2, module: cbam}", False, "cpu", 1,
                        "fp32", api_name="/analyze")
    victim = busy_worker(idle)
    time.sleep(0.3)
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(AppError) as e:
        job.result(timeout=120)
    message = str(e.value)
    assert "was stopped (SIGKILL" in message and "\n" not in message and "Traceback" not in message, message
    # another client, at once: served by the other worker or the replacement
    assert '"params"' in analyze(new_client(app_server), SMALL)


def test_other_users_are_served_while_a_worker_fails(app_server, warm, photo):
    """A user's analyses keep succeeding while another user's request blows the memory budget."""
    results: list[str] = []

    def steady():
        c = new_client(app_server)
        for size in (64, 80, 96, 112):
            results.append(analyze(c, f"backbone: resnet18\nimg_size: {size}\n"))
    t = threading.Thread(target=steady)
    t.start()
    refusal(new_client(app_server), "backbone: vit_large_patch16_224\ninsert:\n  - {at: final, module: eca}", photo)
    t.join(timeout=300)
    assert len(results) == 4 and all('"params"' in r for r in results)


def test_the_server_holds_no_models(app_server, warm):
    """After every fault above (run last in this module): the server process grew by less than the slack, and
    imports no model code of its own (its workers do)."""
    assert server_rss_mb(app_server) - warm < SERVER_RSS_SLACK_MB, (server_rss_mb(app_server), warm)
    assert [len(workers(app_server, lane)) for lane in ("analysis", "latency", "gate")] == [2, 1, 1]


def test_a_refusal_crosses_the_process_boundary_with_what_fits():
    """The worker sends the SpecError itself: a refused stem stride keeps the image size where it works, which the
    page offers as one click."""
    from playground.errors import StemRefusal
    from playground.spec import load_spec
    from playground.workers.pool import WorkerPool
    pool = WorkerPool(workers=1, lanes=("analysis",))
    try:
        with pytest.raises(StemRefusal, match="stride 4 fits at img_size 256") as e:
            pool.run("analyze", spec=load_spec({"backbone": "dla46x_c", "stem": {"stride": 4}}))
        assert e.value.fits.img_size == 256 and e.value.fits.strides == [1, 2]
    finally:
        pool.close()
