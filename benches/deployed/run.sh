#!/usr/bin/env bash
# `detect --base deployed` benchmark: 200 direct-mode environments deployed
# into a local moto server at 5 distinct commits (40 environments created by
# each), then one more commit that changes 10 environments' files; then
#   - `gitops detect --base deployed` (one paginated DescribeStacks, then one
#     tree diff per distinct deployed commit: 5), with the number of AWS
#     calls it makes (moto's request recorder),
#   - side by side, `gitops detect --base HEAD~1` (a push diff: git only),
#   - and `gitops status`, which reads the same stacks and now says `pending`.
# Median of RUNS runs each (default 5).
#
# Usage: benches/deployed/run.sh [RUNS]   (from anywhere; needs git, python3, curl, cargo)
#        GITOPS_BIN=target/debug/gitops benches/deployed/run.sh   (another build)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
envs=200
groups=5
source scripts/tools.sh
ensure_python_tools

if [ -n "${GITOPS_BIN:-}" ]; then
  bin=$GITOPS_BIN # such as target/debug/gitops, to skip the release build
else
  echo "==> cargo build --release -p gitops-action" >&2
  cargo build --release -q -p gitops-action
  target_dir="${CARGO_TARGET_DIR:-target}"
  case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
  bin="$target_dir/release/gitops"
fi

work=$(mktemp -d)
source benches/moto.sh
start_moto "$work" MOTO_RECORDER_FILEPATH="$work/recording.jsonl"
endpoint=$AWS_ENDPOINT_URL

repo="$work/repo"
mkdir -p "$repo/common"
cat >"$repo/gitops.yaml" <<'YAML'
version: 1
id: bench/deployed
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
YAML
g() { git -C "$repo" -c user.name=bench -c user.email=bench@example.com "$@"; }
g init -q -b main && g add -A && g commit -qm templates
per=$((envs / groups))
for k in $(seq 1 "$groups"); do
  for i in $(seq $(((k - 1) * per + 1)) $((k * per))); do
    n=$(printf '%03d' "$i")
    mkdir -p "$repo/environments/env$n"
    printf 'parameters: { AppVersion: "1.0.%s" }\n' "$i" >"$repo/environments/env$n/environment.yaml"
  done
  g add -A && g commit -qm "environments of group $k"
  echo "==> deploying group $k ($per environments)" >&2
  "$bin" deploy --repo "$repo" --base HEAD~1 --concurrency 8 >/dev/null 2>"$work/deploy.err" ||
    { cat "$work/deploy.err" >&2; exit 1; }
done
for i in $(seq 1 10); do
  n=$(printf '%03d' $((i * 20)))
  printf 'parameters: { AppVersion: "2.0.%s" }\n' "$i" >"$repo/environments/env$n/environment.yaml"
done
g add -A && g commit -qm "10 environments changed"

# The verdict must be right, or the timing is meaningless.
"$bin" detect --repo "$repo" --base deployed --format json >"$work/detect.json"
python3 - "$work/detect.json" "$envs" "$groups" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
envs = v["environments"]
assert len(envs) == int(sys.argv[2]), len(envs)
bases = {e["base"] for e in envs}
assert len(bases) == int(sys.argv[3]), bases
assert len(v["updated"]) == 10 and not v["created"] and not v["deleted"], v["updated"]
PY

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
# AWS calls of one run of a command, by operation, from moto's recorder.
calls() {
  : >"$work/recording.jsonl"
  curl -fs -X POST "$endpoint/moto-api/recorder/start-recording" >/dev/null
  "$@" >/dev/null 2>&1
  curl -fs -X POST "$endpoint/moto-api/recorder/stop-recording" >/dev/null
  python3 - "$work/recording.jsonl" <<'PY'
import base64, collections, json, sys
ops = collections.Counter()
for line in open(sys.argv[1]):
    v = json.loads(line)
    target = v["headers"].get("X-Amz-Target")
    if target:
        ops[target.split(".")[-1]] += 1
        continue
    body = v.get("body") or ""
    if v.get("body_encoded"):
        body = base64.b64decode(body).decode()
    action = [kv[7:] for kv in body.split("&") if kv.startswith("Action=")]
    ops[action[0] if action else v["method"] + " " + v["url"]] += 1
print(sum(ops.values()), ", ".join(f"{k} {n}" for k, n in sorted(ops.items())))
PY
}

deployed=$(measure "gitops detect --base deployed, $envs environments at $groups commits" "$bin" detect --repo "$repo" --base deployed --format json)
push=$(measure "gitops detect --base HEAD~1 (push diff)" "$bin" detect --repo "$repo" --base HEAD~1 --format json)
status=$(measure "gitops status (with pending)" "$bin" status --repo "$repo" --format json)
deployed_calls=$(calls "$bin" detect --repo "$repo" --base deployed --format json)
status_calls=$(calls "$bin" status --repo "$repo" --format json)
echo "AWS calls of detect --base deployed: $deployed_calls" >&2
echo "AWS calls of status: $status_calls" >&2

cat <<TABLE

| $envs environments in moto, deployed at $groups commits, median of $runs | time | AWS calls |
|---|---|---|
| \`gitops detect --base deployed\` (10 updated, 190 unchanged) | $deployed ms | ${deployed_calls%% *} (${deployed_calls#* }) |
| \`gitops detect --base HEAD~1\` (push diff, same 10) | $push ms | 0 |
| \`gitops status\` (with \`pending\`) | $status ms | ${status_calls%% *} (${status_calls#* }) |
TABLE
