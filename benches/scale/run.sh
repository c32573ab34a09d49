#!/usr/bin/env bash
# Scale benchmark: 10 / 100 / 1,000 environments with a role-arn each, in
# 3 accounts x 3 regions, deployed into one local moto server; prints one
# table of time, peak RSS and AWS calls (total and mutating) for detect,
# status, drift --skip-resource-drift, plan --no-aws and a deploy of the
# N/10 environments a commit touched without changing their stacks.
# See benches/scale/bench.py for what is measured and how calls are counted.
#
# Usage: benches/scale/run.sh [RUNS] [SIZES]   (default: 5 10,100,1000)
#        (from anywhere; needs git, python3, moto_server, cargo)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
sizes="${2:-10,100,1000}"
source scripts/tools.sh
ensure_python_tools
echo "==> cargo build --release --locked -p gitops-action --bin gitops" >&2
cargo build --release --locked -q -p gitops-action --bin gitops
target_dir="${CARGO_TARGET_DIR:-target}"
echo "==> $(nproc) cores" >&2
exec python3 benches/scale/bench.py "$target_dir/release/gitops" --runs "$runs" --sizes "$sizes"
