#!/usr/bin/env bash
# A blue-green deploy behind nginx, the way the "zero-downtime deploys with Docker and nginx"
# articles write it: build the image, run the new container on the colour's other host port,
# poll /health with curl until it answers 200, point the upstream file at the new port,
# `nginx -s reload`, sleep while the old container drains, stop it. bench/peers_nginx.py runs
# it once per deploy; the "step <name> <epoch seconds>" lines only time it.
#
# usage: peers_nginx.sh REPO TAG NAME BLUE_PORT GREEN_PORT UPSTREAM_FILE NGINX_CONF ERROR_LOG
set -euo pipefail

repo=$1 tag=$2 name=$3 blue=$4 green=$5 upstream=$6 conf=$7 error_log=$8
label=${LABEL:?}
interval=${HEALTH_INTERVAL:-1}
tries=${HEALTH_TRIES:-60}
drain=${DRAIN_SECONDS:-5}

step() { echo "step $1 $(date +%s.%N)"; }

step start
# The upstream file says which colour is live; the new one gets the other port.
if grep -q "127.0.0.1:$blue;" "$upstream"; then
    old=blue new=green port=$green
else
    old=green new=blue port=$blue
fi

docker build -q --label "$label" -t "$tag" "$repo" >/dev/null
step built
docker rm -f "$name-$new" >/dev/null 2>&1 || true
docker run -d --name "$name-$new" --init --label "$label" -e PORT=8000 \
    -p "127.0.0.1:$port:8000" "$tag" >/dev/null
step booted

healthy=no
for ((try = 1; try <= tries; try++)); do
    if curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/health"; then
        healthy=yes
        break
    fi
    sleep "$interval"
done
if [ "$healthy" != yes ]; then
    echo "the new container did not answer /health; the old one stays" >&2
    docker rm -f "$name-$new" >/dev/null
    exit 1
fi
step healthy

echo "upstream app { server 127.0.0.1:$port; }" >"$upstream"
nginx -c "$conf" -e "$error_log" -s reload
step reloaded

# Requests still on the old container get this long to finish.
sleep "$drain"
docker stop "$name-$old" >/dev/null 2>&1 || true
docker rm "$name-$old" >/dev/null 2>&1 || true
step stopped
