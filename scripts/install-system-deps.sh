#!/usr/bin/env bash
# System packages the lab needs on a machine without Docker: Debian's prometheus (host mode and the
# dashboard tests) and docker-compose v1 (to validate docker-compose.yml without an engine).
# Idempotent; needs root (CI and these machines run as root). Elsewhere it says what to install.
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] && { echo "[deps] system packages present"; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "[deps] missing: ${missing[*]}. Install them with your package manager (Debian: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "[deps] installing ${missing[*]} from Debian"
# Keep the packages' services from starting: the lab starts its own Prometheus on its own port.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[deps] installed: $(prometheus --version 2>&1 | head -1)"
