#!/usr/bin/env bash
# `cdk diff` for CI: synthesizes the given deployment config and diffs every stack against what is
# deployed. Needs read-only AWS credentials for the target account (the CDK lookup/deploy roles).
#
#   scripts/cdk-diff.sh [config.json]        # prints the diff, exit 0
#   FAIL_ON_DIFF=1 scripts/cdk-diff.sh ...   # exit 1 when any stack would change
#   SECURITY_ONLY=1 scripts/cdk-diff.sh ...  # only IAM and security-group changes
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

config="${1:-config/example.deployment.json}"
args=(diff --all -c "config=$config" --no-color)
[[ "${FAIL_ON_DIFF:-0}" == 1 ]] && args+=(--fail)
[[ "${SECURITY_ONLY:-0}" == 1 ]] && args+=(--security-only)

# Synth first so that a broken config or a cdk-nag finding fails before any AWS call.
npx cdk synth -q -c "config=$config" >/dev/null
exec npx cdk "${args[@]}"
