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
