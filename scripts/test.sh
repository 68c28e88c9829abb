#!/usr/bin/env bash
# The one test command: installs what is missing, then typecheck, lint and every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/node-env.sh
npx tsc --noEmit
npx biome check .
luacheck --config .luacheckrc lua
npx vitest run "$@"
