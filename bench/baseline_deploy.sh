#!/usr/bin/env bash
# A blue-green deploy written by hand with the docker CLI and curl: what deploy_overhead
# measures temps against. The same steps as temps, with the same health settings:
# build the commit's tree, run it beside the old container, 3 passing probes in a row,
# write the Traefik file (staging dir, then rename into the watched dir), wait until
# Traefik's API shows the new server and one request through it comes back from the new
# release, stop the old container. Prints "step <name> <epoch seconds>" as it goes; the
# new release is live at "switched", and the stop of the old container follows it.
#
# usage: baseline_deploy.sh APP REPO RELEASE DYNAMIC_DIR STAGING_DIR TRAEFIK_API WEB_URL [OLD]
set -euo pipefail

app=$1 repo=$2 release=$3 dynamic=$4 staging=$5 api=$6 web=$7 old=${8:-}
path=${HEALTH_PATH:-/health}
interval=${HEALTH_INTERVAL:-0.2}
needed=${HEALTHY_THRESHOLD:-3}
max_probes=${MAX_PROBES:-100}
tag="temps-baseline/$app:$release"
name="baseline-$app-$release"

step() { echo "step $1 $(date +%s.%N)"; }

step start
git -C "$repo" archive --format=tar HEAD | docker build -q -t "$tag" --label temps-baseline=1 - >/dev/null
step built
docker run -d --name "$name" --init --security-opt no-new-privileges -e PORT=8000 \
    -p 127.0.0.1::8000 --label temps-baseline=1 "$tag" >/dev/null
port=$(docker port "$name" 8000/tcp | head -n 1)
port=${port##*:}
step booted

passes=0
for ((probe = 1; probe <= max_probes; probe++)); do
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port$path" 2>/dev/null; then
        passes=$((passes + 1))
        [ "$passes" -ge "$needed" ] && break
    else
        passes=0
    fi
    sleep "$interval"
done
[ "$passes" -ge "$needed" ] || { echo "health check failed" >&2; docker rm -f "$name" >/dev/null; exit 1; }
step healthy

cat >"$staging/$app.yml" <<EOF
http:
  routers:
    $app:
      rule: "Host(\`$app.localhost\`)"
      service: $app
      entryPoints: [web]
      middlewares: [$app-release]
  middlewares:
    $app-release:
      headers:
        customResponseHeaders:
          X-Temps-Release: $release
  services:
    $app:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$port"
EOF
mv -f "$staging/$app.yml" "$dynamic/$app.yml"
step written

for ((try = 1; try <= 2000; try++)); do
    if curl -fsS --max-time 1 "$api/api/http/services/$app@file" 2>/dev/null |
        grep -q "\"url\":\"http://127.0.0.1:$port\""; then
        break
    fi
    sleep 0.005
done
for ((try = 1; try <= 2000; try++)); do
    if curl -fsS -o /dev/null -D - --max-time 1 -H "Host: $app.localhost" "$web$path" 2>/dev/null |
        grep -qi "^x-temps-release: $release"; then
        break
    fi
    sleep 0.005
done
step switched

if [ -n "$old" ]; then
    docker stop -t 10 "$old" >/dev/null
    docker rm "$old" >/dev/null
fi
step done
