# Sourced by the entry scripts: the project's own Node 24 LTS first on PATH, so every test, child
# process and `npm ci` runs on the Node the sidecar image ships. scripts/setup.sh installs it.
# The machine's Node (20 on Debian 12) only bootstraps: it runs `npm pack` once.
EDGE_NODE_MAJOR=24
EDGE_NPM_MAJOR=11
EDGE_TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools"
EDGE_NODE_DIR="$EDGE_TOOLS_DIR/node-$EDGE_NODE_MAJOR"
if [[ -x "$EDGE_NODE_DIR/bin/node" && ":$PATH:" != *":$EDGE_NODE_DIR/bin:"* ]]; then
  export PATH="$EDGE_NODE_DIR/bin:$PATH"
fi
