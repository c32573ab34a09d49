#!/usr/bin/env bash
# Status benchmark: 50 environments in direct mode, deployed by `gitops
# deploy` into a local moto server, then
#   - `gitops status` (one paginated DescribeStacks for the 50 stacks),
#     against `gitops status --environment env01` (one environment),
#   - `gitops drift --skip-resource-drift` (the same listing, then a
#     GetTemplate per stack, concurrently), and with --concurrency 1,
#   - a sequential loop of `aws cloudformation describe-stacks` (the AWS CLI,
#     one process per stack, as a shell script would do it),
#   - sequential boto3 loops in one Python process: describe_stacks per
#     stack, and describe_stacks + get_template per stack (drift's calls).
# Median of RUNS runs each (default 5).
#
# Usage: benches/status/run.sh [RUNS]   (from anywhere; needs git, python3, curl, cargo)
# Uses `aws` from PATH, or installs awscli into .tools/bench-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
envs=50
source scripts/tools.sh
ensure_python_tools

if command -v aws >/dev/null 2>&1; then
  aws_cli=$(command -v aws)
else
  if [ ! -x .tools/bench-venv/bin/aws ]; then
    echo "==> installing awscli into .tools/bench-venv" >&2
    python3 -m venv .tools/bench-venv
    .tools/bench-venv/bin/pip install --quiet --disable-pip-version-check awscli
  fi
  aws_cli="$PWD/.tools/bench-venv/bin/aws"
fi

echo "==> cargo build --release -p gitops-action" >&2
cargo build --release -q -p gitops-action
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
bin="$target_dir/release/gitops"

work=$(mktemp -d)
source benches/moto.sh
start_moto "$work"

repo="$work/repo"
mkdir -p "$repo/common"
cat >"$repo/gitops.yaml" <<'YAML'
version: 1
id: bench/status
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
for i in $(seq -w 1 "$envs"); do
  mkdir -p "$repo/environments/env$i"
  printf 'parameters: { AppVersion: "1.0.%s" }\n' "$i" >"$repo/environments/env$i/environment.yaml"
done
g add -A && g commit -qm "$envs environments"
echo "==> deploying $envs environments" >&2
"$bin" deploy --repo "$repo" --base HEAD~1 --concurrency 8 >/dev/null 2>&1

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s%N; }
measure() { # label, then the command; prints the median in ms
  local label=$1 t0 t1 times=()
  shift
  for _ in $(seq 1 "$runs"); do
    t0=$(now)
    "$@" >"$work/out" 2>"$work/err" || { echo "$label failed:" >&2; cat "$work/out" "$work/err" >&2; exit 1; }
    t1=$(now)
    times+=($(((t1 - t0) / 1000000)))
  done
  local m
  m=$(printf '%s\n' "${times[@]}" | median)
  echo "$label: ${times[*]} ms -> median $m ms" >&2
  echo "$m"
}

# Every environment must come out Synced, or the comparison is meaningless.
"$bin" status --repo "$repo" --format json >"$work/status.json"
python3 - "$work/status.json" "$envs" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
envs = v["environments"]
assert len(envs) == int(sys.argv[2]), len(envs)
bad = [e["name"] for e in envs if e["sync"] != "Synced" or e["health"] != "Healthy"]
assert not bad, bad
PY

aws_loop() {
  for i in $(seq -w 1 "$envs"); do
    "$aws_cli" cloudformation describe-stacks --stack-name "env$i-app" --output json >/dev/null
  done
}
boto3_loop() { # templates too: 1 or 0
  python3 - "$envs" "$1" <<'PY'
import os, sys, boto3
cf = boto3.client("cloudformation", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for i in range(1, int(sys.argv[1]) + 1):
    name = f"env{i:02d}-app"
    cf.describe_stacks(StackName=name)
    if sys.argv[2] == "1":
        cf.get_template(StackName=name)
PY
}

all=$(measure "gitops status, $envs environments" "$bin" status --repo "$repo")
one=$(measure "gitops status, 1 environment" "$bin" status --repo "$repo" --environment env01)
drift=$(measure "gitops drift --skip-resource-drift, $envs environments" "$bin" drift --repo "$repo" --skip-resource-drift)
drift1=$(measure "gitops drift --skip-resource-drift --concurrency 1" "$bin" drift --repo "$repo" --skip-resource-drift --concurrency 1)
cli=$(measure "aws cloudformation describe-stacks loop, $envs stacks" aws_loop)
boto=$(measure "boto3 describe_stacks loop, $envs stacks" boto3_loop 0)
boto2=$(measure "boto3 describe_stacks+get_template loop, $envs stacks" boto3_loop 1)
cli_version=$("$aws_cli" --version 2>&1 | cut -d' ' -f1)

cat <<TABLE

| $envs environments in moto, median of $runs | time |
|---|---|
| \`gitops status\` (all $envs) | $all ms |
| \`gitops status --environment env01\` (one) | $one ms |
| \`gitops drift --skip-resource-drift\` (all $envs: + GetTemplate each, concurrent) | $drift ms |
| \`gitops drift --skip-resource-drift --concurrency 1\` | $drift1 ms |
| sequential \`aws cloudformation describe-stacks\` loop ($cli_version) | $cli ms |
| sequential boto3 \`describe_stacks\` loop, one process | $boto ms |
| sequential boto3 \`describe_stacks\` + \`get_template\` loop, one process | $boto2 ms |
TABLE
