# syntax=docker/dockerfile:1
# Architecture Playground on a GPU box:
#   docker build -t playground . && docker run --gpus all -p 7860:7860 playground
# torch 2.14.1 from PyPI is the CUDA build (its CUDA libraries come as pip packages), so the slim Python image
# is enough: only the NVIDIA driver comes from the host (--gpus all). Without a GPU the app runs on CPU.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HOME=/home/user \
    XDG_CACHE_HOME=/home/user/.cache

RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# Dependencies first, in their own layer, with pip's cache kept between builds (BuildKit cache mount). pip is told
# where the mount is: with HOME and XDG_CACHE_HOME set to the app user's above, root's pip would look for its cache
# in /home/user/.cache/pip, find it not its own, and cache nothing.
COPY --chown=user:user requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip PIP_CACHE_DIR=/root/.cache/pip pip install -r requirements.txt

COPY --chown=user:user . .
USER 1000
# The bundled EfficientNet-Lite0 ImageNet weights, converted to timm's layout once at build time, so the default
# backbone predicts with no network at all.
RUN python -c "from playground.weights import BUNDLED; print(BUNDLED['efficientnet_lite0'].path())"

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GRADIO_SERVER_PORT', '7860') + '/', timeout=4)"]
# Python as PID 1 has no default action for SIGTERM, so it ignores `docker stop`'s SIGTERM and is killed after the
# grace period; on SIGINT it raises KeyboardInterrupt and Gradio closes its server (exit 0 within 2 s here).
STOPSIGNAL SIGINT
CMD ["python", "app.py"]
