#!/usr/bin/env bash
# Release steps, called by .github/workflows/release.yml (and by the tests,
# for `checksums`).
#
#   scripts/release.sh check VERSION
#       VERSION is the workspace version in Cargo.toml, and tag vVERSION is new.
#   scripts/release.sh build VERSION OS ARCH OUTDIR
#       cargo build --release --locked, copied to OUTDIR/gitops-vVERSION-OS-ARCH
#       (OS: linux|macos, ARCH: x86_64|aarch64; the names action/install.sh asks for).
#   scripts/release.sh checksums DIR
#       prints checksums.txt for the gitops-v* files in DIR: `SHA256  NAME` lines,
#       the format action/install.sh reads (and `sha256sum -c` checks).
#   scripts/release.sh publish VERSION DIR
#       writes DIR/checksums.txt and action/checksums.txt, commits the latter on
#       top of the checked-out commit, tags that commit vVERSION, pushes the tag,
#       and creates the GitHub release with every file of DIR attached (gh, with
#       GH_TOKEN). The tagged commit thus carries the checksums of its own
#       binaries, which is what the action verifies downloads against.
#       Then `pin`s the examples to the tagged commit, commits that on top
#       and pushes it to the branch released from (GITHUB_REF_NAME); where
#       the branch is protected, to branch gitops/pin-vVERSION instead, with
#       a warning to merge it.
#   scripts/release.sh pin COMMIT [COMMENT]
#       rewrites every `uses: gitops-aws/gitops-aws[/ACTION]@SHA # ...` in the
#       example workflows (examples/) and README.md to the full SHA of COMMIT
#       (any git revision), followed by `# COMMENT` (default: the tag at
#       COMMIT, else "main, unreleased: the action builds gitops from
#       source"). Run it after changing an action's inputs:
#       tests/tests/release.rs fails while an example pins a commit whose
#       actions take other inputs than the working tree's.
set -euo pipefail
cd "$(dirname "$0")/.."

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

workspace_version() {
  sed -n 's/^version = "\([^"]*\)".*/\1/p' Cargo.toml | head -n1
}

# pin_examples SHA COMMENT: the rewrite of `pin`; prints the files changed.
pin_examples() {
  local sha=$1 comment=$2 f
  # Every example file and the README (a new example folder included).
  while IFS= read -r f; do
    if grep -Eq 'uses: gitops-aws/gitops-aws(/[A-Za-z0-9_.-]+)?@[0-9a-f]{40}' "$f"; then
      sed -E "s|(uses: gitops-aws/gitops-aws(/[A-Za-z0-9_.-]+)?@)[0-9a-f]{40}( #.*)?\$|\1$sha # ${comment//|/\\|}|" \
        "$f" >"$f.pin.tmp"
      if cmp -s "$f" "$f.pin.tmp"; then
        rm -f "$f.pin.tmp"
      else
        mv "$f.pin.tmp" "$f"
        echo "$f"
      fi
    fi
  done < <(find examples README.md -type f \( -name '*.yml' -o -name '*.yaml' -o -name '*.md' \) | LC_ALL=C sort)
}

cmd=${1:-}
shift || true
case "$cmd" in
  check)
    version=${1:?VERSION}
    case "$version" in
      *[!0-9A-Za-z.+-]* | '') echo "not a version: $version" >&2; exit 1 ;;
    esac
    actual=$(workspace_version)
    if [ "$actual" != "$version" ]; then
      echo "Cargo.toml says $actual, not $version: bump the version first" >&2
      exit 1
    fi
    if git rev-parse -q --verify "refs/tags/v$version" >/dev/null; then
      echo "tag v$version exists already" >&2
      exit 1
    fi
    ;;
  build)
    version=${1:?VERSION} os=${2:?OS} arch=${3:?ARCH} out=${4:?OUTDIR}
    if ! command -v cargo >/dev/null 2>&1; then
      # A runner image without Rust: the stable toolchain through rustup.
      curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --default-toolchain stable
      export PATH="$HOME/.cargo/bin:$PATH"
    fi
    cargo build --release --locked -p gitops-action --bin gitops
    mkdir -p "$out"
    cp target/release/gitops "$out/gitops-v$version-$os-$arch"
    "$out/gitops-v$version-$os-$arch" --version
    ;;
  checksums)
    dir=${1:?DIR}
    echo "# SHA-256 of the gitops release binaries (scripts/release.sh checksums)."
    echo "# action/install.sh verifies every download against this file."
    find "$dir" -maxdepth 1 -type f -name 'gitops-v*' | LC_ALL=C sort | while IFS= read -r f; do
      printf '%s  %s\n' "$(sha256 "$f")" "$(basename "$f")"
    done
    ;;
  publish)
    version=${1:?VERSION} dir=${2:?DIR}
    : "${GH_TOKEN:?GH_TOKEN}" "${GITHUB_REPOSITORY:?GITHUB_REPOSITORY}"
    "$0" checksums "$dir" >"$dir/checksums.txt.tmp"
    mv "$dir/checksums.txt.tmp" "$dir/checksums.txt"
    cp "$dir/checksums.txt" action/checksums.txt
    git -c user.name='github-actions[bot]' \
      -c user.email='41898282+github-actions[bot]@users.noreply.github.com' \
      commit -q -m "release v$version: checksums of the release binaries" -- action/checksums.txt
    git -c user.name='github-actions[bot]' \
      -c user.email='41898282+github-actions[bot]@users.noreply.github.com' \
      tag -a "v$version" -m "gitops v$version"
    # The token reaches git for this push only (the checkout keeps
    # persist-credentials: false).
    basic=$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 | tr -d '\n')
    echo "::add-mask::$basic"
    GIT_CONFIG_COUNT=1 \
      GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL:-https://github.com}/.extraheader" \
      GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic" \
      git push origin "refs/tags/v$version"
    gh release create "v$version" --verify-tag --title "v$version" \
      --notes "gitops v$version. Binaries for linux x86_64, linux aarch64 and macOS aarch64; checksums.txt holds their SHA-256, which the tagged commit also carries in action/checksums.txt." \
      "$dir"/*
    # The examples and the README pin the tagged commit from now on.
    tagged=$(git rev-parse "v$version^{commit}")
    "$0" pin "$tagged" "v$version"
    git -c user.name='github-actions[bot]' \
      -c user.email='41898282+github-actions[bot]@users.noreply.github.com' \
      commit -q -am "examples: pin the actions to v$version ($tagged)"
    branch=${GITHUB_REF_NAME:?GITHUB_REF_NAME}
    if ! GIT_CONFIG_COUNT=1 \
      GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL:-https://github.com}/.extraheader" \
      GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic" \
      git push origin "HEAD:refs/heads/$branch"; then
      GIT_CONFIG_COUNT=1 \
        GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL:-https://github.com}/.extraheader" \
        GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic" \
        git push origin "HEAD:refs/heads/gitops/pin-v$version"
      echo "::warning title=release::could not push to $branch (protected?); merge branch gitops/pin-v$version, which pins the examples to v$version"
    fi
    ;;
  pin)
    rev=${1:?COMMIT}
    sha=$(git rev-parse --verify -q "$rev^{commit}") || {
      echo "not a commit: $rev" >&2
      exit 1
    }
    comment=${2:-}
    if [ -z "$comment" ]; then
      comment=$(git tag --points-at "$sha" --list 'v*' | LC_ALL=C sort -V | tail -n1)
      [ -n "$comment" ] || comment="main, unreleased: the action builds gitops from source"
    fi
    changed=$(pin_examples "$sha" "$comment")
    if [ -n "$changed" ]; then
      printf 'pinned to %s (%s):\n%s\n' "$sha" "$comment" "$changed"
    else
      echo "every example already pins $sha"
    fi
    ;;
  *)
    echo "usage: scripts/release.sh check|build|checksums|publish|pin ..." >&2
    exit 2
    ;;
esac
