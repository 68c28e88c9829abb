#!/usr/bin/env bash
# The one test command: installs what is missing, then typecheck, lint, every test suite and the
# container images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/node-env.sh
npx tsc --noEmit
npx biome check .
luacheck --config .luacheckrc lua
npx vitest run "$@"
# The images the task runs, built with podman from bases made here (docs/images.md).
bash scripts/build-images.sh
# The synthesized regional task run in a pod with only AWS endpoints substituted (lib/rehearsal/README.md).
npx tsx bin/rehearse.ts
