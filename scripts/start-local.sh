#!/usr/bin/env bash
# The one command that runs the product locally: installs what is missing, then starts the edge.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The AWS SDK warns about Node 20 on every start; the local edge talks to dynalite only.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec node --import tsx bin/local-edge.ts "$@"
