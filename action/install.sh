#!/usr/bin/env bash
# Installs the gitops binary for the composite actions, and writes its path
# to the step output `bin` (plus `version` and `source`).
#
# Modes (the `install` input, passed as GITOPS_INSTALL_MODE; when that is
# empty, the GITOPS_INSTALL environment variable; else `auto`):
#   auto     the release binary for this runner, verified against the SHA-256
#            in action/checksums.txt; when this version has no released binary
#            (a fork, an unreleased commit) or the download answers 404,
#            `cargo build --release --locked` from this action's checkout
#   release  the release binary only; fail when there is none
#   build    always build from this action's checkout
#   path     use the `gitops` already on PATH
# Results are kept in the runner's tool cache
# ($RUNNER_TOOL_CACHE/gitops/<version>/<arch>, or <version>-src.<hash> for a
# build), so later steps of the job, and later jobs on a self-hosted runner,
# skip the work. For later jobs and runs on fresh runners, the actions save
# those folders with actions/cache: `install.sh key` writes the step outputs
# `key` (this action's sources and checksums, OS, architecture and mode) and
# `paths` (the folders to cache; both empty for install: path), which the
# actions hand to actions/cache/restore before this script runs and to
# actions/cache/save after it downloaded or built (GITOPS_CACHE_HIT says
# whether the restore found the entry).
#
# A build needs Rust (cargo and rustc) at least the `rust-version` of
# Cargo.toml.
#
# A checksum mismatch always fails: it is never a reason to build instead.
#
# Environment: RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, RUNNER_TOOL_CACHE,
# GITHUB_OUTPUT (set by the runner); GITOPS_RELEASE_BASE_URL overrides
# https://github.com/gitops-aws/gitops-aws/releases/download (for tests and
# mirrors: the checksum is checked whatever the source).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base_url=${GITOPS_RELEASE_BASE_URL:-https://github.com/gitops-aws/gitops-aws/releases/download}
mode=${GITOPS_INSTALL_MODE:-}
[ -n "$mode" ] || mode=${GITOPS_INSTALL:-auto}
tool_cache=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}/tool-cache}
temp=${RUNNER_TEMP:-/tmp}

escape() {
  local s=$1
  s=${s//'%'/'%25'}
  s=${s//$'\r'/'%0D'}
  s=${s//$'\n'/'%0A'}
  printf '%s' "$s"
}
fail() {
  printf '::error title=gitops install::%s\n' "$(escape "$1")"
  exit 1
}
note() { printf 'gitops install: %s\n' "$1"; }
output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  fi
}
# output_lines NAME VALUE: a step output that may hold several lines.
output_lines() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    local delimiter
    delimiter="ghadelimiter_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s<<%s\n%s\n%s\n' "$1" "$delimiter" "$2" "$delimiter" >>"$GITHUB_OUTPUT"
  fi
}
done_with() { # done_with BIN VERSION SOURCE
  note "using $1 ($3)"
  output bin "$1"
  output version "$2"
  output source "$3"
  exit 0
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

case "$mode" in
  auto | release | build | path) ;;
  *) fail "input \`install\` must be auto, release, build or path, not: $mode" ;;
esac

if [ "$mode" = path ]; then
  bin=$(command -v gitops || true)
  [ -n "$bin" ] || fail "install: path, but there is no gitops on PATH"
  done_with "$bin" "$("$bin" --version 2>/dev/null | cut -d' ' -f2 || true)" path
fi

# The action's version is its crate's: the first `version = "…"` of the
# workspace manifest, in [workspace.package].
version=$(sed -n 's/^version = "\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n1)
[ -n "$version" ] || fail "cannot read the version from $root/Cargo.toml"

case "${RUNNER_OS:-$(uname -s)}" in
  Linux) os=linux ;;
  macOS | Darwin) os=macos ;;
  *) os=unsupported ;;
esac
case "${RUNNER_ARCH:-$(uname -m)}" in
  X64 | x86_64 | amd64) arch=x86_64 ;;
  ARM64 | arm64 | aarch64) arch=aarch64 ;;
  *) arch=unsupported ;;
esac
asset="gitops-v$version-$os-$arch"

# The minimum Rust of a build: rust-version in [workspace.package].
min_rust=$(sed -n 's/^rust-version = "\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n1)

# A hash of this action's sources: two commits never share a build, and
# the actions/cache key changes whenever the action does.
source_key() {
  local files
  files=$(cd "$root" && find Cargo.toml Cargo.lock gitops-core gitops-action -type f \
    \( -name '*.rs' -o -name '*.toml' -o -name '*.lock' -o -name '*.yaml' -o -name '*.json' \) \
    2>/dev/null | LC_ALL=C sort || true)
  (cd "$root" && printf '%s\n' "$files" | while IFS= read -r f; do
    printf '%s  %s\n' "$(sha256 "$f")" "$f"
  done | { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; } | cut -c1-16)
}

if [ "${1:-}" = key ]; then
  if [ "$mode" = path ]; then
    note "install: path, nothing to cache"
    output key ""
    output paths ""
    exit 0
  fi
  skey=$(source_key)
  sums=$(sha256 "$root/action/checksums.txt" | cut -c1-16)
  output key "gitops-$os-$arch-v$version-$skey-$sums-$mode"
  output_lines paths "$(printf '%s\n' \
    "$tool_cache/gitops/$version/$arch" "$tool_cache/gitops/$version/$arch.complete" \
    "$tool_cache/gitops/$version-src.$skey/$arch" "$tool_cache/gitops/$version-src.$skey/$arch.complete")"
  exit 0
fi
from_cache() { # from_cache BIN VERSION: a tool-cache entry, maybe restored by actions/cache
  if [ "${GITOPS_CACHE_HIT:-}" = true ]; then
    note "restored by actions/cache: no download, no build"
  fi
  done_with "$1" "$2" cache
}

# rust_at_least MIN: whether rustc is at least MIN (such as 1.94.1).
rust_at_least() {
  local have
  have=$(rustc --version 2>/dev/null | cut -d' ' -f2 | cut -d- -f1)
  [ -n "$have" ] || return 1
  [ "$(printf '%s\n%s\n' "$1" "$have" | sort -t. -k1,1n -k2,2n -k3,3n | head -n1)" = "$1" ]
}

# install_into DIR FILE: moves FILE into the tool cache as DIR/gitops and
# marks the entry complete, as @actions/tool-cache does.
install_into() {
  mkdir -p "$1"
  mv -f "$2" "$1/gitops"
  chmod 755 "$1/gitops"
  touch "$1.complete"
}

# From a release: the committed checksum, a download, a comparison. Ends the
# script when it installs; sets `missing` when this version has no release
# binary for this runner (so a build may take over); fails on anything else.
missing=
try_release() {
  local expected cache file code
  expected=$(awk -v a="$asset" '$1 !~ /^#/ && ($2 == a || $2 == "*" a) { print $1; exit }' \
    "$root/action/checksums.txt" 2>/dev/null || true)
  if [ -z "$expected" ]; then
    note "no released binary of v$version for $os-$arch (action/checksums.txt has no $asset)"
    missing=1
    return 0
  fi
  cache="$tool_cache/gitops/$version/$arch"
  if [ -f "$cache.complete" ] && [ -x "$cache/gitops" ]; then
    if [ "$(sha256 "$cache/gitops")" = "$expected" ]; then
      from_cache "$cache/gitops" "$version"
    fi
    note "the cached $cache/gitops does not match its checksum; downloading again"
    rm -rf "$cache" "$cache.complete"
  fi
  file=$(mktemp "$temp/gitops-download.XXXXXX")
  note "downloading $base_url/v$version/$asset"
  code=$(curl -sSL --connect-timeout 10 --max-time 300 --retry 3 --retry-delay 2 -o "$file" -w '%{http_code}' \
    "$base_url/v$version/$asset") || {
    rm -f "$file"
    fail "cannot download $base_url/v$version/$asset (curl failed, HTTP ${code:-none})"
  }
  if [ "$code" = 404 ]; then
    rm -f "$file"
    note "$base_url/v$version/$asset does not exist (HTTP 404)"
    missing=1
    return 0
  fi
  if [ "$code" != 200 ]; then
    rm -f "$file"
    fail "downloading $base_url/v$version/$asset answered HTTP $code"
  fi
  local actual
  actual=$(sha256 "$file")
  if [ "$actual" != "$expected" ]; then
    rm -f "$file"
    fail "checksum mismatch for $asset: expected $expected (action/checksums.txt), got $actual; refusing to use it"
  fi
  install_into "$cache" "$file"
  done_with "$cache/gitops" "$version" release
}

# From source: the workspace of this action's checkout, keyed by a hash of
# the sources so that two commits never share a cache entry.
build() {
  local key cache target
  key=$(source_key)
  cache="$tool_cache/gitops/$version-src.$key/$arch"
  if [ -f "$cache.complete" ] && [ -x "$cache/gitops" ]; then
    from_cache "$cache/gitops" "$version"
  fi
  command -v cargo >/dev/null 2>&1 ||
    fail "building gitops from source needs cargo (a Rust toolchain, $min_rust or later); install one before this step, or use a released version of the action"
  rust_at_least "$min_rust" ||
    fail "building gitops from source needs Rust $min_rust or later, and this runner has $(rustc --version 2>/dev/null || echo 'no rustc'); run \`rustup update stable\` (or a toolchain action) before this step, or use a released version of the action"
  target="$temp/gitops-build"
  note "building gitops $version from $root (cargo build --release --locked)"
  (cd "$root" && cargo build --release --locked -p gitops-action --bin gitops --target-dir "$target")
  [ -x "$target/release/gitops" ] || fail "cargo build produced no $target/release/gitops"
  local copy
  copy=$(mktemp "$temp/gitops-built.XXXXXX")
  cp "$target/release/gitops" "$copy"
  install_into "$cache" "$copy"
  done_with "$cache/gitops" "$version" build
}

if [ "$os" = unsupported ] || [ "$arch" = unsupported ]; then
  [ "$mode" != release ] || fail "no release binaries for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}"
  build
fi
[ "$mode" = build ] && build
try_release
[ -n "$missing" ] || fail "internal error: the release install neither finished nor failed"
[ "$mode" = auto ] || fail "no release binary $asset for this version of the action; use install: auto or build"
build
