#!/usr/bin/env bash
# npm run rehearse: makes sure the tools and images exist, then runs the synthesized regional task
# in a podman pod with the project's Node (lib/rehearsal/README.md). Arguments go to bin/rehearse.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-images.sh
source scripts/node-env.sh
exec npx tsx bin/rehearse.ts "$@"
