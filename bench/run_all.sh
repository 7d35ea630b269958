#!/usr/bin/env bash
# Every benchmark, one after the other, each with its default runs; figures and verdict lines
# on stdout, JSON in bench/results/. Extra arguments (e.g. --profile) go to every bench.
# Needs dockerd, git, curl, hey, pebble (HTTPS), nginx (peers, proxies) and debootstrap
# (builders); takes about an hour on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
status=0
for bench in switch_latency zero_downtime deploy_overhead rollback push failure_detection scale formation canary peers targets proxies webhook recovery traefik_rebuild soak logs_tail run_roundtrip builders previews reconnects; do
    echo
    "$python" "bench/$bench.py" "$@" || { echo "bench $bench failed" >&2; status=1; }
done
echo
grep -h '"target"' bench/results/*.json >/dev/null 2>&1 &&
    "$python" - <<'EOF'
import json, pathlib
for path in sorted(pathlib.Path("bench/results").glob("*.json")):
    for verdict in json.loads(path.read_text())["verdicts"]:
        mark = "PASS" if verdict["ok"] else "MISS"
        print(f"{mark}  {path.stem}: {verdict['target']} ({verdict['measured']})")
EOF
exit $status
