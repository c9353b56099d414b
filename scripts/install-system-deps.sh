#!/usr/bin/env bash
# System packages the lab needs on a machine without Docker, from Debian:
#   prometheus      host mode's Prometheus, and the dashboard tests
#   docker-compose  validates docker-compose.yml without an engine (tests)
# Usage: install-system-deps.sh [package...]   (default: all of them). Idempotent; needs root
# and apt-get; elsewhere it says in one line what to install.
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(prometheus docker-compose)
missing=()
for package in "${wanted[@]}"; do
    command -v "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && { echo "[deps] present: ${wanted[*]}"; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "[deps] missing: ${missing[*]}. Install them with your package manager (Debian/Ubuntu: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "[deps] installing ${missing[*]} from Debian"
# Keep the packages' services from starting: the lab starts its own Prometheus on its own port.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[deps] installed: ${missing[*]}"
