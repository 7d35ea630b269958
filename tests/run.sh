#!/usr/bin/env bash
# The test command: bash tests/run.sh [pytest arguments]
#
# Makes sure the Debian packages and a Docker engine are there (the logic lives in
# install.sh), prepares .venv, then runs ruff, mypy and pytest. Every check runs even when
# an earlier one fails; the exit status is non-zero if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../install.sh
source ./install.sh

((EUID == 0)) || die "tests/run.sh needs root (it installs packages and talks to dockerd)"

ensure_packages busybox-static git hey wrk openssl iproute2 curl python3 python3-venv chromium chromium-driver pebble \
    docker-registry debootstrap apache2-utils
ensure_engine

VENV="$ROOT/.venv"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
# Reinstall only when the project's metadata changed since the last install.
stamp="$VENV/.temps-test-install"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]]; then
    log "installing the project into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[test]'
    echo "$wanted" >"$stamp"
fi

# What an interrupted earlier run left (its daemons' homes were under pytest's temporary
# directory): tests that list an app's containers or volumes by its name would count those.
from_tests() { awk '$2 ~ "^/tmp/pytest-of-" {print $1}'; } # "ID HOME" lines -> IDs
home_label='{{.Label "temps.home"}}'
stale_containers="$(docker ps -a --filter label=temps.home --format "{{.ID}} $home_label" | from_tests)"
stale_volumes="$(docker volume ls --filter label=temps.home --format "{{.Name}} $home_label" | from_tests)"
if [[ -n "$stale_containers$stale_volumes" ]]; then
    log "removing the containers and volumes an earlier test run left"
    xargs -r -n 50 docker rm -f <<<"$stale_containers" >/dev/null || true
    xargs -r -n 50 docker volume rm -f <<<"$stale_volumes" >/dev/null || true
fi

failed=()
run_check() {
    local name="$1"
    shift
    log "$name"
    "$@" || failed+=("$name")
}

run_check "ruff" "$VENV/bin/ruff" check .
run_check "mypy" "$VENV/bin/mypy"
# Test modules run on parallel workers, each module whole on one worker (its daemon is
# module-scoped); TEMPS_TEST_WORKERS=0 runs them in one process.
run_check "pytest" "$VENV/bin/pytest" -v -n "${TEMPS_TEST_WORKERS:-2}" --dist loadfile \
    --durations=40 "$@"

if ((${#failed[@]})); then
    log "FAILED: ${failed[*]}"
    exit 1
fi
log "all checks passed"
