#!/usr/bin/env bash
# Build the repo's Dockerfile and check the image for real, with podman (no Docker engine needed):
#   1. the base image `python:3.11-slim-bookworm` (a local stand-in where no registry can be reached: docker-base.sh),
#   2. the build, timed,
#   3. the container started with no network at all (--network none: only its own loopback),
#   4. its HEALTHCHECK polled until it passes (no systemd timer runs it here, so `podman healthcheck run`),
#   5. every process in it runs as uid 1000,
#   6. `/analyze` and `/predict` called with gradio_client from inside the container (no port can be mapped to
#      a container with no network): EfficientNet-Lite0 with its bundled weights must name the cat photo a cat,
#   7. the container stopped (it must exit 0 on its STOPSIGNAL, not wait for SIGKILL), and removed whatever happens,
#   8. a summary: image size, build time, start-to-healthy time, stop time.
#
#   scripts/docker-smoke.sh                  # about 5 min cold (pip downloads ~3 GB), under a minute cached
#   IMAGE=playground:dev scripts/docker-smoke.sh
#
# Needs root (podman here runs rootful), podman + runc + debootstrap (docker-base.sh installs them with apt-get),
# Debian's mirror and PyPI, and ~12 GB of disk. pip's downloads persist between builds in the Dockerfile's cache
# mount (buildah keeps it on the host), so only the first build downloads torch and the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/architecture-playground:smoke}
CONTAINER=playground-smoke-$$
HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-180}  # the HEALTHCHECK's start period is 90 s

# shellcheck source=scripts/podman-env.sh
source scripts/podman-env.sh  # CONTAINERS_CONF (runc, rlimits) and BUILD_MOUNTS (the host's CA bundle for pip)

started=""
cleanup() {  # 7. whatever happens, the container goes (with its log first when something failed)
  local rc=$?
  if [ -n "$started" ]; then
    if [ "$rc" -ne 0 ]; then
      echo "--- container log (last 40 lines) ---" >&2
      podman logs --tail 40 "$CONTAINER" >&2 || true
    fi
    podman rm --force --time 2 "$CONTAINER" >/dev/null 2>&1 || true
  fi
  podman_env_cleanup
  exit "$rc"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. The base image (made once: about 80 s).
t0=$(now)
bash scripts/docker-base.sh
base_s=$(since "$t0")

# 2. The build. --format docker: the OCI format has no HEALTHCHECK (buildah drops it with a warning).
# --network host: pip reaches PyPI from the RUN steps.
echo "== build $IMAGE"
t0=$(now)
podman build --pull=never --format docker --network host "${BUILD_MOUNTS[@]}" -t "$IMAGE" -f Dockerfile .
build_s=$(since "$t0")
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")

# 3. Start it with no network: the bundled weights must do, and nothing can be fetched.
echo "== run $CONTAINER (--network none)"
t0=$(now)
started=1
# (podman reports that it cannot set up systemd timers for the HEALTHCHECK: expected here, so that line is dropped)
podman run --detach --name "$CONTAINER" --network none "$IMAGE" 2> >(grep -v 'systemd connection' >&2) >/dev/null

# 4. Wait for the HEALTHCHECK. Podman schedules it with systemd timers, which this machine does not run, so run it
# here until it passes; `podman healthcheck run` records each result in the container's health status.
echo "== waiting for the HEALTHCHECK (up to ${HEALTH_TIMEOUT_S} s)"
deadline=$(( $(date +%s) + HEALTH_TIMEOUT_S ))
until podman healthcheck run "$CONTAINER" >/dev/null 2>&1; do
  state=$(podman inspect --format '{{.State.Status}}' "$CONTAINER")
  if [ "$state" != running ]; then echo "FAIL: the container is $state" >&2; exit 1; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "FAIL: not healthy after ${HEALTH_TIMEOUT_S} s" >&2; exit 1; fi
  sleep 1
done
healthy_s=$(since "$t0")
health=$(podman inspect --format '{{.State.Health.Status}}' "$CONTAINER")
echo "healthy after ${healthy_s} s (health status: $health)"
[ "$health" = healthy ] || { echo "FAIL: health status is '$health'" >&2; exit 1; }

# 5. Every process in the container (the app, any worker it starts, this check itself) runs as uid 1000.
echo "== processes"
podman exec -i "$CONTAINER" python - <<'EOF'
import os
import sys
rows = []
for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
    try:
        uid = next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("Uid:"))
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    except (FileNotFoundError, ProcessLookupError):
        continue  # gone meanwhile
    rows.append((pid, uid, cmd))
    print(f"  pid {pid:>4}  uid {uid}  {cmd[:100]}")
cmd1 = next(cmd for pid, uid, cmd in rows if pid == "1")
bad = [r for r in rows if r[1] != "1000"]
if bad or cmd1 != "python app.py":
    sys.exit(f"FAIL: pid 1 is {cmd1!r}; not uid 1000: {bad}")
EOF

# 6. The named endpoints, from inside (the container has no network, so no port to map).
echo "== /analyze and /predict"
podman exec -i "$CONTAINER" python - "http://127.0.0.1:7860/" <scripts/docker_smoke_client.py

# 7. Stop it as `docker stop` would (the image's STOPSIGNAL, then SIGKILL after 10 s): it should exit by itself.
echo "== stop"
t0=$(now)
podman stop --time 10 "$CONTAINER" >/dev/null 2>&1
stop_s=$(since "$t0")
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
echo "stopped in ${stop_s} s, exit code ${exit_code}"
[ "$exit_code" -eq 0 ] || { echo "FAIL: the app did not exit cleanly on the stop signal" >&2; exit 1; }

# 8. The numbers.
echo "== docker smoke test passed"
awk -v b="$size" 'BEGIN { printf "image size:        %.2f GB (%.0f bytes)\n", b / 1e9, b }'
echo "base image:        ${base_s} s (made if missing)"
echo "build time:        ${build_s} s"
echo "start to healthy:  ${healthy_s} s"
echo "stop:              ${stop_s} s"
