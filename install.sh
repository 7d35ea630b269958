#!/usr/bin/env bash
# Install temps on a Debian host and start the daemon. Idempotent; run as root.
#
#   bash install.sh                      # packages, Docker engine, venv, daemon
#   bash install.sh --engine-only        # only make sure a Docker engine answers
#
# Environment overrides: TEMPS_HOME (default /var/lib/temps), TEMPS_LISTEN (API and git,
# default 127.0.0.1:7000), TEMPS_HTTP (Traefik's web entrypoint, default 127.0.0.1:8080),
# TEMPS_PREFIX (the virtual environment's parent, default /opt/temps), TEMPS_BIN_DIR (where
# the `temps` command is linked, default /usr/local/bin), TEMPS_CLIENT_FILE (where the CLI
# reads the local daemon's URL and home, default /etc/temps/client.toml).
#
# Sourcing this file (`source install.sh`) only defines the functions; tests/run.sh does that
# so the package and engine logic lives in one place.

TEMPS_PREFIX="${TEMPS_PREFIX:-/opt/temps}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
DOCKER_SOCK="/var/run/docker.sock"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

systemd_running() { [[ -d /run/systemd/system ]]; }

# Install the given Debian packages that are not installed yet; `apt-get update` runs only
# when something is missing, so a second run touches no network.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
}

engine_answers() { docker info >/dev/null 2>&1; }

wait_for_engine() {
    local deadline=$((SECONDS + 60))
    until [[ -S "$DOCKER_SOCK" ]] && engine_answers; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

# Make sure a Docker engine answers. An engine that already answers (docker-ce, rootful
# docker.io, ...) is used as it is; otherwise Debian's docker.io is installed and started.
ensure_engine() {
    engine_answers && return 0
    command -v dockerd >/dev/null 2>&1 || ensure_packages docker.io
    if systemd_running; then
        log "starting docker.service"
        systemctl enable --now docker.service
    elif pidof dockerd >/dev/null 2>&1; then
        log "dockerd is running but not answering yet; waiting"
    else
        log "starting dockerd in the background (log: $DOCKERD_LOG)"
        nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    wait_for_engine || die "the Docker engine did not answer within 60 s (see $DOCKERD_LOG)"
    log "Docker engine answers"
}

install_venv() {
    local src="$1" venv="$TEMPS_PREFIX/venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating $venv"
        mkdir -p "$TEMPS_PREFIX"
        python3 -m venv "$venv"
    fi
    log "installing temps from $src into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$src"
}

# `temps` on PATH, and the file that tells it where the local daemon listens and which home
# holds its admin token (readable by root only: the home is 0700).
install_cli() {
    local bin_dir="${TEMPS_BIN_DIR:-/usr/local/bin}" client_file="${TEMPS_CLIENT_FILE:-/etc/temps/client.toml}"
    mkdir -p "$bin_dir" "$(dirname "$client_file")"
    ln -sfn "$TEMPS_PREFIX/venv/bin/temps" "$bin_dir/temps"
    log "linked $bin_dir/temps; writing $client_file"
    printf 'url = "http://%s"\nhome = "%s"\n' "$(local_address "$TEMPS_LISTEN")" "$TEMPS_HOME" \
        >"$client_file.partial"
    chmod 0644 "$client_file.partial"
    mv -f "$client_file.partial" "$client_file"
}

serve_command() {
    SERVE_COMMAND=("$TEMPS_PREFIX/venv/bin/temps" serve
        --home "$TEMPS_HOME" --listen "$TEMPS_LISTEN" --http "$TEMPS_HTTP")
}

# Settings the CLI also reads from the environment, carried into the unit when set.
passthrough_environment() {
    local name
    for name in TEMPS_DOMAIN TEMPS_TRAEFIK_API; do
        [[ -n "${!name:-}" ]] && printf 'Environment=%s=%s\n' "$name" "${!name}"
    done
    return 0
}

start_with_systemd() {
    local unit=/etc/systemd/system/temps.service
    log "writing $unit"
    cat >"$unit" <<EOF
[Unit]
Description=temps git-push deploy daemon
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
Environment=TEMPS_HOME=$TEMPS_HOME
$(passthrough_environment)
ExecStart=${SERVE_COMMAND[*]}
Restart=on-failure
RestartSec=2
# The daemon supervises a Traefik child that must keep serving while the daemon restarts:
# stop only the main process.
KillMode=process

[Install]
WantedBy=multi-user.target
EOF
    systemctl daemon-reload
    systemctl enable temps.service
    systemctl restart temps.service
}

pid_is_temps() {
    local pid="$1"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'temps serve'
}

stop_background_daemon() {
    local pidfile="$1" pid deadline
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    pid_is_temps "$pid" || return 0
    log "stopping the running daemon (pid $pid)"
    kill -TERM "$pid"
    deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    return 0
}

listening() {
    local port="${1##*:}"
    [[ -n "$(ss -Htln "( sport = :$port )" 2>/dev/null)" ]]
}

start_in_background() {
    local pidfile="$TEMPS_HOME/temps.pid" logfile="$TEMPS_HOME/logs/daemon.log"
    local stderr_file="$TEMPS_HOME/logs/daemon.stderr"
    stop_background_daemon "$pidfile"
    # Otherwise /healthz could be answered by whatever holds the port, not by the new daemon.
    if listening "$TEMPS_LISTEN"; then
        die "something else listens on $TEMPS_LISTEN; stop it or set TEMPS_LISTEN"
    fi
    log "starting temps in the background (log: $logfile)"
    # The daemon writes and rotates its own log; the stderr file only catches what bypasses
    # logging (an interpreter crash), and is truncated at each start.
    TEMPS_HOME="$TEMPS_HOME" setsid nohup "${SERVE_COMMAND[@]}" --log-file "$logfile" \
        >"$stderr_file" 2>&1 </dev/null &
    echo $! >"$pidfile"
}

# An address the daemon listens on, as a client on this host reaches it.
local_address() {
    local addr="$1"
    case "$addr" in
        0.0.0.0:*) echo "127.0.0.1:${addr#0.0.0.0:}" ;;
        :*) echo "127.0.0.1$addr" ;;
        *) echo "$addr" ;;
    esac
}

daemon_alive() {
    if systemd_running; then
        ! systemctl is-failed --quiet temps.service
    else
        pid_is_temps "$(cat "$TEMPS_HOME/temps.pid" 2>/dev/null || true)"
    fi
}

wait_for_daemon() {
    local url="http://$(local_address "$TEMPS_LISTEN")/healthz" deadline=$((SECONDS + 60))
    until curl -fsS --max-time 2 "$url" >/dev/null 2>&1; do
        if ! daemon_alive || ((SECONDS >= deadline)); then
            log "temps did not answer $url; last log lines:"
            tail -n 40 "$TEMPS_HOME/logs/daemon.log" "$TEMPS_HOME/logs/daemon.stderr" \
                2>/dev/null >&2 || journalctl -u temps.service -n 40 --no-pager >&2 || true
            die "temps did not start"
        fi
        sleep 1
    done
}

print_next_steps() {
    local api token_file="$TEMPS_HOME/admin-token"
    api="$(local_address "$TEMPS_LISTEN")"
    cat <<EOF

temps is running: http://$api (apps are served through Traefik on $TEMPS_HTTP)

Admin token: $token_file

Create an app:
  temps apps create myapp

Add the git remote in your app's repository and deploy:
  git remote add temps http://temps:\$(cat $token_file)@$api/myapp.git
  git push temps main

Inside that repository, \`temps releases\`, \`temps logs\` and the other commands know the app.
EOF
}

main() {
    local engine_only=0 src
    case "${1:-}" in
        --engine-only) engine_only=1 ;;
        "") ;;
        *) die "usage: install.sh [--engine-only]" ;;
    esac
    ((EUID == 0)) || die "run as root"

    if ((engine_only)); then
        ensure_engine
        return
    fi

    src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    TEMPS_HOME="${TEMPS_HOME:-/var/lib/temps}"
    TEMPS_LISTEN="${TEMPS_LISTEN:-127.0.0.1:7000}"
    TEMPS_HTTP="${TEMPS_HTTP:-127.0.0.1:8080}"

    ensure_packages git openssl curl ca-certificates iproute2 python3 python3-venv
    ensure_engine
    install_venv "$src"
    install_cli
    mkdir -p "$TEMPS_HOME/logs"
    chmod 0700 "$TEMPS_HOME"
    serve_command
    if systemd_running; then
        start_with_systemd
    else
        start_in_background
    fi
    wait_for_daemon
    print_next_steps
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    main "$@"
fi
