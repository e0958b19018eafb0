#!/bin/sh
# Builds the storefront if needed and serves dist/ on 127.0.0.1:PORT in the foreground (Ctrl-C stops it).
#
# Usage: frontend/serve.sh PORT
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
PORT=${1:?usage: frontend/serve.sh PORT}
"$REPO/frontend/build.sh"
cat <<MSG
Storefronts on 127.0.0.1:$PORT
  direct (the provider's own):   http://127.0.0.1:$PORT/
  reseller acme (by query):      http://127.0.0.1:$PORT/?reseller=acme
  reseller acme (by hostname):   http://acme.localhost:$PORT/   (browsers resolve *.localhost to 127.0.0.1)
  unknown reseller page:         http://127.0.0.1:$PORT/?reseller=nobody
MSG
exec node "$REPO/frontend/tools/static-server.mjs" "$REPO/dist" "$PORT"
