#!/bin/sh
# Builds the storefront into dist/ with `trunk build --release` (or a dev/bench variant), unless it is newer than every input.
#
# Usage: frontend/build.sh [--force] [--bench | --dev]
#   --bench  the benchmark build instead: frontend/bench.html (the storefront plus the recompute
#            hook, cargo feature `bench`) into dist-bench/, for tests/browser/size_speed.test.mjs.
#   --dev    a development build (no --release: debug assertions on, so the app honours
#            `?reseller=` previews) into dist-dev/, for `frontend/serve.sh PORT --dev`. Never ship it.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/frontend/env.sh"
cd "$REPO"

force=
dev=
html=frontend/index.html
dist=dist
release=--release
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --bench) html=frontend/bench.html; dist=dist-bench ;;
    --dev) dist=dist-dev; release=; dev=1 ;;
    *) echo "usage: frontend/build.sh [--force] [--bench | --dev]" >&2; exit 2 ;;
  esac
done
if [ -n "$dev" ]; then
  # Debug assertions are what let the app honour `?reseller=` (tenant::BuildKind). rustc's
  # default for them follows the opt-level, so env.sh's `-C opt-level=z` would switch them off
  # in this debug build too: they are asked for by name.
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS -C debug-assertions=on"
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS
fi

stamp=$dist/.ratecard-build
# Everything that goes into the build: the app, its engine, the wholesale catalog, the build setup.
inputs="frontend/src $html frontend/style.css frontend/sw.js frontend/tools/finish-dist.mjs frontend/tools/prerender.mjs frontend/tools/package-lock.json frontend/public frontend/Cargo.toml frontend/env.sh Cargo.lock Cargo.toml Trunk.toml shared/src shared/Cargo.toml examples/catalogs"
if [ -z "$force" ] && [ -f "$stamp" ] \
    && [ "$(cat "$stamp")" = "$CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS" ] \
    && [ -z "$(find $inputs -newer "$stamp" -print -quit)" ]; then
  echo "storefront: $dist/ is up to date"
  exit 0
fi
# wasm-opt and playwright-core (prerender) as the lock file has them.
frontend/tools/npm-ci.sh frontend/tools
for tool in trunk wasm-bindgen wasm-opt; do
  command -v "$tool" >/dev/null || { echo "storefront: $tool is missing; run frontend/install-tools.sh" >&2; exit 1; }
done
echo "storefront: trunk build $html $release --dist $dist"
trunk build "$html" $release --dist "$dist"
# Each storefront's first screen, rendered by the app in Chromium, as the page `/` answers on its
# hostnames (frontend/tools/prerender.mjs). The bench and dev builds get unrendered copies: the
# tests that use them measure or preview the app itself.
if [ "$dist" = dist ]; then
  node frontend/tools/prerender.mjs "$dist"
else
  node frontend/tools/prerender.mjs --plain "$dist"
fi
# The service worker (offline use) and the brotli/gzip copies the local server sends.
node frontend/tools/finish-dist.mjs "$dist"
printf '%s' "$CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS" > "$stamp"
