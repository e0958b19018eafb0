#!/bin/sh
# Builds the storefront into dist/ with `trunk build --release`, unless dist/ is newer than every input.
#
# Usage: frontend/build.sh [--force]
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/frontend/env.sh"
cd "$REPO"

stamp=dist/.ratecard-build
# Everything that goes into dist/: the app, its engine, the wholesale catalog, the build setup.
inputs="frontend/src frontend/index.html frontend/style.css frontend/public frontend/Cargo.toml frontend/env.sh Cargo.lock Cargo.toml Trunk.toml shared/src shared/Cargo.toml examples/catalogs"
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] \
    && [ "$(cat "$stamp")" = "$CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS" ] \
    && [ -z "$(find $inputs -newer "$stamp" -print -quit)" ]; then
  echo "storefront: dist/ is up to date"
  exit 0
fi
for tool in trunk wasm-bindgen wasm-opt; do
  command -v "$tool" >/dev/null || { echo "storefront: $tool is missing; run frontend/install-tools.sh" >&2; exit 1; }
done
echo "storefront: trunk build --release"
trunk build --release
printf '%s' "$CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS" > "$stamp"
