#!/usr/bin/env bash
# The one command that runs the product locally: installs what is missing, then starts the edge.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/node-env.sh
exec node --import tsx bin/local-edge.ts "$@"
