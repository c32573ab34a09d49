#!/usr/bin/env bash
# Change-detection benchmark: builds two repositories of 1,000 environments
# each with a commit that changes about 10,000 files (gen_repo.py: a flat
# layout, whole folders renamed and deleted; gen_deep.py: the GitOps root in a
# subfolder, environments four folders deep with deep files inside, 2,500
# renamed files, 2,500 deleted and 5,000 modified ones inside environment
# folders), then compares `gitops detect` with `git diff --name-status -M` on
# each, interleaved, median of 5 runs each, and times `gitops detect` on
# examples/basic.
#
# Usage: benches/detect/run.sh [RUNS]     (from anywhere; needs git, python3, cargo)
# The repositories are cached in target/bench-detect/; delete it to rebuild.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
work="${CARGO_TARGET_DIR:-target}/bench-detect"
mkdir -p "$work"

echo "==> cargo build --release --locked -p gitops-action --bin gitops" >&2
cargo build --release --locked -q -p gitops-action --bin gitops
bin="${CARGO_TARGET_DIR:-target}/release/gitops"

if [ ! -d "$work/repo" ]; then
  echo "==> generating $work/repo" >&2
  python3 benches/detect/gen_repo.py "$work/repo" >/dev/null
fi

if [ ! -d "$work/deep" ]; then
  echo "==> generating $work/deep" >&2
  python3 benches/detect/gen_deep.py "$work/deep" >/dev/null
fi

if [ ! -d "$work/basic" ]; then
  echo "==> copying examples/basic into a git repository at $work/basic" >&2
  mkdir -p "$work/basic"
  cp -r examples/basic/. "$work/basic/"
  export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
  export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
  export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
  git -C "$work/basic" init -q -b main
  git -C "$work/basic" add -A
  git -C "$work/basic" commit -q -m "examples/basic"
  sed -i 's/AppVersion: "1.4.2"/AppVersion: "1.5.0"/' "$work/basic/environments/staging/environment.yaml"
  echo "# touched" >> "$work/basic/common/environment.yaml"
  git -C "$work/basic" commit -q -am "promote staging, touch the template"
fi

echo "==> $(git --version), $(nproc) cores" >&2
python3 benches/detect/bench.py "$bin" "$work/repo" "$work/deep" "$work/basic" "$runs"
