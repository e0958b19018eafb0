#!/usr/bin/env bash
# infra/check.sh: installs the template checkers if missing, then validates infra/template.yaml and the CDN's tenant router.
#
# Usage: infra/check.sh            install what is missing, then run every check
#        infra/check.sh install    install what is missing, run nothing
#
# Each tool lives in its own virtualenv under the cache dir, named with its pinned version,
# because checkov pins boto3 differently from aws-sam-cli (see ../shared/TOOLING.md).
# A venv counts as installed only once its `.installed` stamp exists, so an interrupted
# install is thrown away and redone on the next run instead of being trusted half-built.
#
# Environment:
#   RATECARD_CACHE   cache root (default: $HOME/.cache/ratecard)
#   RATECARD_PYTHON  interpreter used to create the venvs (default: python3)
#
# Prints one line per check and ends with `infra: N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
CHECKOV_VERSION=3.3.30

cache_dir="${RATECARD_CACHE:-$HOME/.cache/ratecard}"
venvs_dir="$cache_dir/venvs"
python="${RATECARD_PYTHON:-python3}"
template=infra/template.yaml

# Nothing here reaches the network at check time (verified under `unshare -n`): SAM's
# telemetry is off and its weekly PyPI version check is pre-empted (see sam_home below);
# checkov neither checks PyPI for a newer version nor downloads policy mappings.
export SAM_CLI_TELEMETRY=0
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export BC_SKIP_MAPPING=TRUE
export PIP_DISABLE_PIP_VERSION_CHECK=1

# ensure_venv NAME PACKAGE==VERSION: creates $venvs_dir/NAME with the package unless already stamped.
ensure_venv() {
    local name="$1" requirement="$2"
    local dir="$venvs_dir/$name"
    if [[ -f "$dir/.installed" ]]; then
        return 0
    fi
    echo "infra: installing $requirement into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$venvs_dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip >&2
    "$dir/bin/python" -m pip install --quiet "$requirement" >&2
    echo "$requirement" >"$dir/.installed"
}

install_all() {
    ensure_venv "cfn-lint-$CFN_LINT_VERSION" "cfn-lint==$CFN_LINT_VERSION"
    ensure_venv "aws-sam-cli-$SAM_CLI_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
    ensure_venv "checkov-$CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"
}

cfn_lint_bin="$venvs_dir/cfn-lint-$CFN_LINT_VERSION/bin"
sam_bin="$venvs_dir/aws-sam-cli-$SAM_CLI_VERSION/bin"
checkov_bin="$venvs_dir/checkov-$CHECKOV_VERSION/bin"

case "${1:-check}" in
    install)
        install_all
        echo "infra: tools installed under $venvs_dir"
        exit 0
        ;;
    check) ;;
    *)
        echo "usage: $0 [install|check]" >&2
        exit 2
        ;;
esac

install_all

passed=0
failed=0
failed_names=()
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

# run_check NAME COMMAND...: runs a check quietly; prints its output only when it fails.
run_check() {
    local name="$1"
    shift
    local log="$log_dir/$name.log"
    if "$@" >"$log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: $*"
        sed 's/^/    /' "$log"
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
}

# SAM keeps its config in a home directory of its own, so a run never writes to, or depends
# on, the user's ~/.aws-sam. Its last version check is recorded far in the future so that SAM
# never asks PyPI whether a newer version exists (it otherwise does weekly, 5 s timeout).
sam_home="$cache_dir/sam-home"
if [[ ! -f "$sam_home/.aws-sam/metadata.json" ]]; then
    mkdir -p "$sam_home/.aws-sam"
    echo '{"lastVersionCheck": 32503680000.0, "telemetryEnabled": false}' \
        >"$sam_home/.aws-sam/metadata.json"
fi

# The cfn-lint venv has PyYAML, which check_table.py needs to read the template.
run_check table-matches-template "$cfn_lint_bin/python" infra/check_table.py
# The CDN's tenant router: the template's CloudFront Function is infra/cdn/tenant-router.js,
# and that code (with the local static server, which runs it) answers the isolation table.
run_check cdn-function-matches-router "$cfn_lint_bin/python" infra/check_cdn_function.py
run_check cdn-router-rules node --test infra/cdn/tenant-router.test.mjs
run_check cfn-lint "$cfn_lint_bin/cfn-lint" "$template"
run_check sam-validate env HOME="$sam_home" "$sam_bin/sam" validate \
    --template-file "$template" --region us-east-1
run_check sam-validate-lint env HOME="$sam_home" "$sam_bin/sam" validate --lint \
    --template-file "$template" --region us-east-1
# --quiet prints failed checks only; checkov exits 1 on any failed check, which fails this step.
run_check checkov "$checkov_bin/checkov" --file "$template" --framework cloudformation \
    --quiet --compact --skip-download

if ((failed > 0)); then
    echo "infra: failed: ${failed_names[*]}"
fi
echo "infra: $passed passed, $failed failed"
((failed == 0))
