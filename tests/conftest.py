"""Shared fixtures: real photos from scikit-image, preprocessed the way ImageNet models expect."""
import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def cat_photo():
    """`cat_photo(size)`: scikit-image's chelsea (a tabby cat) as a normalised (1, 3, size, size) tensor."""
    from PIL import Image
    from skimage import data

    def make(size: int = 224) -> torch.Tensor:
        img = Image.fromarray(data.chelsea()).convert("RGB").resize((size, size), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.).permute(2, 0, 1)
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        return ((x - mean[:, None, None]) / std[:, None, None]).unsqueeze(0)
    return make


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on a shared, busy 2-core machine OpenMP's spinning threads make forwards ~30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server():
    """The app (fresh Blocks, app.py's queue and launch settings) on a free loopback port; closed afterwards."""
    import socket

    import app
    from playground import ui
    demo = ui.build_demo()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(server, verbose=False)
