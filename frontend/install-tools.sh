#!/bin/sh
# Installs what the storefront's build and browser tests need; skips whatever is already there.
#
# Usage: frontend/install-tools.sh
# Needs: rustup/cargo, node + npm, and apt (root) for Chromium. Versions: shared/TOOLING.md.
# Measured on a 2-core machine while other builds ran: trunk about 15 min, wasm-bindgen-cli about
# 6 min, Chromium about 1 min, the npm packages a few seconds.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

have_version() { # tool, expected substring of `tool --version`
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"
}

rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown

# 0.22 needs a newer rustc than this toolchain.
have_version trunk "0.21.14" \
  || cargo install --locked trunk --version 0.21.14

# Must equal the wasm-bindgen version in Cargo.lock; `--locked` fails (its lockfile pins a
# webpki-roots version the registry lacks).
have_version wasm-bindgen "0.2.130" \
  || cargo install wasm-bindgen-cli --version 0.2.130

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  apt-get update && apt-get install -y chromium chromium-driver
fi

# wasm-opt 132 runs on node (Debian's binaryen 108 produces a broken app); playwright-core
# prerenders the storefronts and drives the browser tests.
"$REPO/frontend/tools/npm-ci.sh" frontend/tools tests/browser
echo "storefront tools: ready"
