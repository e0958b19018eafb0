#!/bin/sh
# Runs the storefront's browser tests: installs npm packages if missing, rebuilds dist/ if stale,
# builds the native helpers, then runs every *.test.mjs with node's test runner.
#
# Usage: tests/browser/run.sh [test files...]     (default: all of tests/browser/*.test.mjs)
# Screenshots and figures land in tests/browser/artifacts/.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/frontend/env.sh"
cd "$REPO"

# npm ci again whenever a lock file changed since the last install, so a machine that ran an
# older checkout gets packages added since (axe-core, lighthouse, playwright-core for prerender).
frontend/tools/npm-ci.sh frontend/tools tests/browser
[ -x /usr/bin/chromium ] || { echo "Chromium is missing: run frontend/install-tools.sh" >&2; exit 1; }

frontend/build.sh
# The speed test's build: the same storefront with the recompute hook (never in dist/).
frontend/build.sh --bench
# The development build: only it reaches the unknown-storefront page (a11y.test.mjs).
frontend/build.sh --dev

# The month-of-usage helper, and the rater's CLI that invoices it (the reference). If the rater
# does not build, the tests fall back to the pricing engine through the helper and say so.
cargo build --quiet -p frontend --bin storefront-e2e
if [ -z "${RATECARD_BIN:-}" ]; then
  if ! cargo build --quiet -p rater --bin ratecard; then
    echo "run.sh: the rater's CLI did not build; invoices come from the pricing engine directly" >&2
    export STOREFRONT_RATER=helper
  fi
fi

cd tests/browser
if [ $# -eq 0 ]; then set -- *.test.mjs; fi
exec node --test --test-concurrency=1 --test-reporter=spec "$@"
