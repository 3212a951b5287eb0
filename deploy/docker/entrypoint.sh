#!/bin/sh
# Entrypoint of the Fieldforce image: one image, five apps.
#
#   APP=customers PORT=8001  ->  uvicorn --factory customers.main:create_app on 0.0.0.0:8001
#                                (uvicorn's httptools protocol, as fieldforce/apps.py says)
#   any arguments            ->  run them instead (the migrate job: python -m fieldforce.cli migrate)
#
# Secrets arrive as files (compose `secrets`, Kubernetes volumes): for every variable NAME_FILE
# that is set, NAME is exported with the file's contents, so the apps keep reading plain
# environment variables (INTERNAL_TOKEN_PUBLIC_KEY, GATEWAY_INTERNAL_TOKEN_PRIVATE_KEY, ...).
set -eu

for var in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
    eval "path=\${${var}_FILE}"
    if [ ! -r "$path" ]; then
        echo "entrypoint: ${var}_FILE=$path is not a readable file" >&2
        exit 1
    fi
    eval "already=\${${var}:-}"
    if [ -n "$already" ]; then
        echo "entrypoint: both $var and ${var}_FILE are set; use one" >&2
        exit 1
    fi
    value=$(cat "$path")
    export "$var=$value"
    unset "${var}_FILE"
done

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

: "${APP:?set APP to gateway, customers, visits, opportunities or analytics}"
: "${PORT:?set PORT to the port the app listens on}"
# One process per container: prometheus-client keeps metrics in process memory, so scale out
# with more replicas, not more workers. X-Forwarded-For is the gateway's to judge
# (GATEWAY_TRUSTED_PROXIES), not uvicorn's: --no-proxy-headers.
# Idle client connections: the gateway keeps them past its clients' and load balancers' own
# idle timeouts, so that they close first (fieldforce/apps.py, `keep_alive_seconds`).
if [ "$APP" = gateway ]; then keep_alive_default=75; else keep_alive_default=5; fi
exec uvicorn --factory "${APP}.main:create_app" \
    --host 0.0.0.0 --port "$PORT" \
    --http httptools \
    --no-access-log \
    --no-proxy-headers \
    --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-10}" \
    --timeout-keep-alive "${KEEP_ALIVE_SECONDS:-$keep_alive_default}"
