#!/usr/bin/env bash
# A deploy through Traefik's Docker provider, the way label-driven platforms (Coolify's
# rolling update, CapRover-style and Dokku-traefik set-ups) do it: build the image, run the
# new container with the router labels and a Docker HEALTHCHECK, wait until Docker calls it
# healthy (Traefik routes only to healthy containers), stop the old one. Traefik follows
# Docker's events on its own; nothing here talks to it. bench/peers_traefik.py runs it once
# per deploy; the "step <name> <epoch seconds>" lines only time it.
#
# usage: peers_traefik.sh REPO TAG NAME HOST
set -euo pipefail

repo=$1 tag=$2 name=$3 host=$4
label=${LABEL:?}
app_label=${APP_LABEL:?} # this app's containers, to find the old one
interval=${HEALTH_INTERVAL:-1}
tries=${HEALTH_TRIES:-60}

step() { echo "step $1 $(date +%s.%N)"; }

step start
old=$(docker ps -q --filter "label=$app_label")

docker build -q --label "$label" -t "$tag" "$repo" >/dev/null
step built
new=$(docker run -d --init --label "$label" --label "$app_label" -e PORT=8000 \
    --label traefik.enable=true \
    --label "traefik.http.routers.$name.rule=Host(\`$host\`)" \
    --label "traefik.http.routers.$name.entrypoints=web" \
    --label "traefik.http.services.$name.loadbalancer.server.port=8000" \
    --health-cmd "wget -q -O /dev/null http://127.0.0.1:8000/health || exit 1" \
    --health-interval "${interval}s" --health-timeout 1s --health-retries 3 \
    "$tag")
step booted

status=starting
for ((try = 1; try <= tries; try++)); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$new")
    [ "$status" = starting ] || break
    sleep "$interval"
done
if [ "$status" != healthy ]; then
    echo "the new container is $status; the old one stays" >&2
    docker rm -f "$new" >/dev/null
    exit 1
fi
step healthy

if [ -n "$old" ]; then
    # shellcheck disable=SC2086 # one id a line, each its own argument
    docker stop $old >/dev/null
    # shellcheck disable=SC2086
    docker rm $old >/dev/null
fi
step stopped
