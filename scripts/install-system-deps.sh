#!/usr/bin/env bash
# System packages the lab needs, from Debian (each named by what it is for):
#   prometheus      host mode's Prometheus, and the dashboard tests
#   docker-compose  compose mode's tool (Debian's Compose v1.29.2: bookworm has no Compose v2), and
#                   validates docker-compose.yml without an engine (tests)
#   docker-engine   Debian's docker.io: dockerd for compose mode and the container tests (CI)
#   debootstrap     builds the Debian base image where no image registry answers (build/images.sh)
# Usage: install-system-deps.sh [name...]   (default: prometheus docker-compose). Idempotent; needs
# root and apt-get; elsewhere it says in one line what to install.
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(prometheus docker-compose)
# name -> the command that shows it is installed, and the Debian package that provides it
declare -A command_of=([prometheus]=prometheus [docker-compose]=docker-compose [docker-engine]=dockerd [debootstrap]=debootstrap)
declare -A package_of=([prometheus]=prometheus [docker-compose]=docker-compose [docker-engine]=docker.io [debootstrap]=debootstrap)
missing=()
for name in "${wanted[@]}"; do
    [ -n "${package_of[$name]:-}" ] || { echo "[deps] unknown: $name (known: ${!package_of[*]})" >&2; exit 2; }
    command -v "${command_of[$name]}" >/dev/null 2>&1 || [ -x "/usr/sbin/${command_of[$name]}" ] || missing+=("${package_of[$name]}")
done
[ ${#missing[@]} -eq 0 ] && { echo "[deps] present: ${wanted[*]}"; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "[deps] missing: ${missing[*]}. Install them with your package manager (Debian/Ubuntu: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "[deps] installing ${missing[*]} from Debian"
# Keep the packages' services from starting: the lab starts its own Prometheus on its own port,
# and its own dockerd only when it needs one (scripts/docker-engine.sh).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[deps] installed: ${missing[*]}"
