#!/bin/sh
# Installs the npm packages of each folder given (relative to the repo) when its lock file changed since the last install.
#
# Usage: frontend/tools/npm-ci.sh DIR...      (install-tools.sh, build.sh and tests/browser/run.sh)
# A stamp of the lock file's hash in node_modules/.ratecard-lock tells whether the packages are
# those of the lock: a machine that installed an older checkout gets the packages added since.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
for dir in "$@"; do
  want=$(sha256sum "$REPO/$dir/package-lock.json" | cut -c1-64)
  if [ "$(cat "$REPO/$dir/node_modules/.ratecard-lock" 2>/dev/null)" != "$want" ]; then
    (cd "$REPO/$dir" && npm ci --no-audit --no-fund)
    printf '%s' "$want" > "$REPO/$dir/node_modules/.ratecard-lock"
  fi
done
