#!/bin/sh
# Builds the storefront if needed and serves it on 127.0.0.1:PORT in the foreground (Ctrl-C stops it).
#
# Usage: frontend/serve.sh PORT [--dev]
#   (default)  the production build (dist/) served as the CDN serves it: each hostname gets only
#              its own storefront (infra/cdn/tenant-router.js), and the app ignores `?reseller=`.
#   --dev      a development build (dist-dev/) served with isolation off, so that
#              `?reseller=<id>` previews any reseller from 127.0.0.1. Never deploy it.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
PORT=${1:?usage: frontend/serve.sh PORT [--dev]}
MODE=${2:-}
case "$MODE" in
  "")
    "$REPO/frontend/build.sh"
    cat <<MSG
Storefronts on 127.0.0.1:$PORT, isolated by hostname as in production (browsers resolve *.localhost to 127.0.0.1)
  direct (the provider's own):   http://127.0.0.1:$PORT/
  reseller acme:                 http://acme.localhost:$PORT/
  reseller nimbus:               http://nimbus.localhost:$PORT/
  (?reseller= previews need the development build: frontend/serve.sh $PORT --dev)
MSG
    exec node "$REPO/frontend/tools/static-server.mjs" "$REPO/dist" "$PORT"
    ;;
  --dev)
    "$REPO/frontend/build.sh" --dev
    cat <<MSG
Development storefronts on 127.0.0.1:$PORT (isolation off; do not expose)
  direct (the provider's own):   http://127.0.0.1:$PORT/
  reseller acme (by query):      http://127.0.0.1:$PORT/?reseller=acme
  reseller nimbus (by query):    http://127.0.0.1:$PORT/?reseller=nimbus
  unknown reseller page:         http://127.0.0.1:$PORT/?reseller=nobody
MSG
    exec node "$REPO/frontend/tools/static-server.mjs" --dev "$REPO/dist-dev" "$PORT"
    ;;
  *) echo "usage: frontend/serve.sh PORT [--dev]" >&2; exit 2 ;;
esac
