#!/usr/bin/env bash
# A Docker engine for compose mode and the container tests, on a machine that has none running.
#   docker-engine.sh start   install Debian's docker.io if dockerd is missing, start dockerd in the
#                            background unless an engine already answers; wait for `docker info`
#   docker-engine.sh stop    stop the dockerd this script started (by its recorded PID), nothing else
# An engine that was already answering is left alone by both. Needs root; elsewhere it says in one
# line what to do.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${LAB_DOCKER_ENGINE_STATE:-/run/serverless-boundary-lab-dockerd}
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log

answers() { timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

start() {
    if answers; then
        echo "[docker] an engine already answers ($(docker info --format '{{.ServerVersion}}' 2>/dev/null)); using it"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "[docker] no Docker engine answers: start Docker (or Docker Desktop), or use LAB_MODE=host" >&2
        return 1
    fi
    command -v dockerd >/dev/null 2>&1 || bash scripts/install-system-deps.sh docker-engine
    mkdir -p "$STATE"
    echo "[docker] starting dockerd (log: $LOG)"
    # setsid: the engine outlives this script, and a Ctrl-C in the caller's terminal does not reach it
    setsid dockerd --host=unix:///var/run/docker.sock >"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    local began=$SECONDS
    until answers; do
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "[docker] dockerd exited at start; last lines of $LOG:" >&2
            tail -n 15 "$LOG" >&2
            rm -f "$PIDFILE"
            return 1
        fi
        if [ $((SECONDS - began)) -gt 60 ]; then
            echo "[docker] dockerd did not answer within 60 s: see $LOG" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "[docker] engine $(docker info --format '{{.ServerVersion}} ({{.Driver}})') answers after $((SECONDS - began)) s"
}

stop() {
    if [ ! -f "$PIDFILE" ]; then
        echo "[docker] no engine started by this script; nothing to stop"
        return 0
    fi
    local pid
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        echo "[docker] stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        # dockerd stops its containers first (10 s each at most); containerd goes with it
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "[docker] dockerd still running after 30 s; killing it" >&2
            kill -KILL "$pid"
        fi
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
