#!/usr/bin/env bash
# Wall time of `cdk synth` (offline, no credentials) for the example config (3 regions) and for a
# generated 10-region variant of it. Usage: scripts/synth-time.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Ten regions: the example's three plus seven more, each routed by a country or a continent.
node - "$work/ten.deployment.json" <<'JS'
const fs = require('node:fs');
const base = JSON.parse(fs.readFileSync('config/example.deployment.json', 'utf8'));
const extra = [
  ['us-west-2', { countries: ['MX'] }],
  ['eu-central-1', { countries: ['DE'] }],
  ['eu-north-1', { countries: ['SE'] }],
  ['ap-northeast-1', { countries: ['JP'] }],
  ['ap-south-1', { countries: ['IN'] }],
  ['sa-east-1', { continents: ['SA'] }],
  ['ca-central-1', { countries: ['CA'] }],
];
const config = structuredClone(base);
for (const [region, routes] of extra) {
  config.regions.push({ region, availabilityZones: [`${region}a`, `${region}b`] });
  for (const c of routes.countries ?? []) config.geolocation.countries[c] = region;
  for (const c of routes.continents ?? []) config.geolocation.continents[c] = region;
}
fs.writeFileSync(process.argv[2], JSON.stringify(config, null, 2));
JS

time_synth() {
  local label="$1" config="$2" out="$work/out-${1// /-}"
  local start end
  start=$(date +%s.%N)
  env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
    npx cdk synth -q -c config="$config" -o "$out" >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
  end=$(date +%s.%N)
  printf '%-12s %6.1f s  (%s stacks)\n' "$label" "$(echo "$end - $start" | bc)" \
    "$(ls "$out"/*.template.json | wc -l)"
}

echo "cdk synth wall time ($(nproc) cores):"
time_synth "3 regions" config/example.deployment.json
time_synth "10 regions" "$work/ten.deployment.json"
