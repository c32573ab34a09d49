#!/usr/bin/env bash
# Deploy benchmark: 20 environments in direct mode against a local moto
# server, created with --concurrency 1 and with --concurrency 8 (median of
# RUNS each, the emulator reset between runs), then redeployed unchanged,
# which must make no mutating AWS call.
#
# Usage: benches/deploy/run.sh [RUNS]   (from anywhere; needs git, python3, cargo)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
source scripts/tools.sh
ensure_python_tools

echo "==> cargo build --release -p gitops-action" >&2
cargo build --release -q -p gitops-action
bin="$PWD/${CARGO_TARGET_DIR:-target}/release/gitops"

work=$(mktemp -d)
source benches/moto.sh
start_moto "$work"

repo="$work/repo"
mkdir -p "$repo/common"
cat >"$repo/gitops.yaml" <<'YAML'
version: 1
id: bench/deploy
stack: { template: common/app.yaml }
YAML
cat >"$repo/common/app.yaml" <<'YAML'
Parameters:
  EnvironmentName: { Type: String }
  AppVersion: { Type: String }
Resources:
  Version:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${EnvironmentName}/version"
      Type: String
      Value: !Ref AppVersion
  Topic:
    Type: AWS::SNS::Topic
YAML
g() { git -C "$repo" -c user.name=bench -c user.email=bench@example.com "$@"; }
g init -q -b main && g add -A && g commit -qm templates
for i in $(seq -w 1 20); do
  mkdir -p "$repo/environments/env$i"
  printf 'parameters: { AppVersion: "1.0.%s" }\n' "$i" >"$repo/environments/env$i/environment.yaml"
done
g add -A && g commit -qm "20 environments"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s%N; }
time_deploy() { # prints milliseconds
  local t0 t1
  t0=$(now)
  "$bin" deploy --repo "$repo" --format json "$@" >"$work/out.json" 2>/dev/null || { cat "$work/out.json"; exit 1; }
  t1=$(now)
  echo $(((t1 - t0) / 1000000))
}

declare -A result
for c in 1 8; do
  times=()
  for _ in $(seq 1 "$runs"); do
    curl -fs -X POST "$AWS_ENDPOINT_URL/moto-api/reset" >/dev/null
    times+=("$(time_deploy --base HEAD~1 --concurrency "$c")")
  done
  result[$c]=$(printf '%s\n' "${times[@]}" | median)
  echo "create 20 environments, --concurrency $c: ${times[*]} ms -> median ${result[$c]} ms"
done
envs=()
for i in $(seq -w 1 20); do envs+=(--environment "env$i"); done
noop=$(time_deploy "${envs[@]}" --concurrency 8)
python3 - "$work/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
outcomes = {e["outcome"] for e in r["environments"]}
assert outcomes == {"no-op"}, outcomes
PY
echo "redeploy 20 unchanged environments, --concurrency 8: $noop ms (all no-op)"
awk -v a="${result[1]}" -v b="${result[8]}" 'BEGIN { printf "speed-up of --concurrency 8 over 1: %.1fx\n", a / b }'
