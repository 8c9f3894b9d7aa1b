# shellcheck shell=bash disable=SC2034  # sourced: BUILD_MOUNTS and HOST_CA are used by the scripts that source it
# Sourced by docker-base.sh and docker-smoke.sh: podman settings for a machine with no Docker engine, and what a
# build on this host needs to reach PyPI. Nothing here goes into an image.

# podman reads only this file (CONTAINERS_CONF): the default rlimits are not permitted on these machines, and crun
# fails on their hybrid cgroups, so runc.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  CONTAINERS_CONF=$(mktemp --suffix=.containers.conf)
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"
  export CONTAINERS_CONF
  _own_containers_conf=$CONTAINERS_CONF
fi

# Where the host reaches PyPI through a TLS-inspecting proxy, its pip trusts an extra CA (PIP_CERT). A build's RUN
# steps see the host's bundle in place of the image's own /etc/ssl/certs/ca-certificates.crt (a bind mount over a
# file the base image has, so nothing is left in a layer); pip >= 24.2 reads the system store (truststore). The
# Dockerfile itself stays free of anything local to this machine.
HOST_CA=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
BUILD_MOUNTS=()
if [ -n "$HOST_CA" ] && [ -f "$HOST_CA" ]; then
  BUILD_MOUNTS=(--volume "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro")
else
  HOST_CA=""
fi

podman_env_cleanup() {  # the temporary file above
  if [ -n "${_own_containers_conf:-}" ]; then rm -f "$_own_containers_conf"; fi
}
