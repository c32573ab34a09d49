# shellcheck shell=bash
# Sourced by the composite actions' run steps (action.yml, detect/action.yml, …).
#
# Inputs reach these steps only through `env:` (composite actions get no
# INPUT_* variables, and no `${{ }}` is ever written into a script), so a
# value is data from end to end: it is quoted wherever it is used and never
# evaluated. Booleans must be `true` or `false`; anything else stops the step.

# The gitops command line being built, without the binary.
argv=()

# Escapes a value for a workflow command (`::error::…`), so that a value
# holding a newline cannot start a workflow command of its own.
gitops_escape() {
  local s=$1
  s=${s//'%'/'%25'}
  s=${s//$'\r'/'%0D'}
  s=${s//$'\n'/'%0A'}
  printf '%s' "$s"
}

# die MESSAGE: an error annotation, then exit 1.
die() {
  printf '::error title=gitops::%s\n' "$(gitops_escape "$1")"
  exit 1
}

# is_true NAME VALUE: status 0 for `true`, 1 for `false` or empty; stops the
# step for anything else. NAME is the input's name, for the message.
is_true() {
  case "$2" in
    true | True | TRUE) return 0 ;;
    false | False | FALSE | '') return 1 ;;
    *) die "input \`$1\` must be true or false, not: $2" ;;
  esac
}

# add_flag FLAG VALUE: `FLAG VALUE` when VALUE is not empty.
add_flag() {
  if [ -n "$2" ]; then
    argv+=("$1" "$2")
  fi
}

# add_switch FLAG NAME VALUE: FLAG when the boolean input NAME is true.
add_switch() {
  if is_true "$2" "$3"; then
    argv+=("$1")
  fi
  return 0
}

# add_list FLAG VALUE: `FLAG=item` for each item of VALUE, which may be
# separated by newlines, commas or spaces. One word, so an item that looks
# like a flag (`-rf`) is still the flag's value.
add_list() {
  local flag=$1 item
  local -a items
  IFS=$' \t\n,' read -r -d '' -a items < <(printf '%s\0' "$2") || true
  for item in "${items[@]}"; do
    if [ -n "$item" ]; then
      argv+=("$flag=$item")
    fi
  done
}

# add_args VALUE: extra arguments, split into words as a shell would (quotes
# and backslashes group), but nothing in them is expanded or run: xargs only
# splits them and hands them to printf.
add_args() {
  local word
  case "$1" in
    *[![:space:]]*) ;;
    *) return 0 ;;
  esac
  local list
  list=$(mktemp)
  if ! printf '%s\n' "$1" | xargs printf '%s\0' >"$list"; then
    rm -f "$list"
    die "input \`args\` could not be split into words (an unmatched quote?): $1"
  fi
  while IFS= read -r -d '' word; do
    argv+=("$word")
  done <"$list"
  rm -f "$list"
}

# set_output NAME VALUE: a step output, in heredoc form with a random
# delimiter so that no value can end it early.
set_output() {
  local delimiter
  delimiter="ghadelimiter_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  {
    printf '%s<<%s\n' "$1" "$delimiter"
    printf '%s\n' "$2"
    printf '%s\n' "$delimiter"
  } >>"$GITHUB_OUTPUT"
}

# mask VALUE: hides VALUE in the log, line by line (a line of it can never
# start a workflow command: each is printed after `::add-mask::`).
mask() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    if [ -n "$line" ]; then
      printf '::add-mask::%s\n' "$line"
    fi
  done <<<"$1"
}

# use_token TOKEN: with a token, gitops gets it as GITHUB_TOKEN (for the
# GitHub API) and git gets it for this process tree only, through
# GIT_CONFIG_* variables: the checkout keeps persist-credentials: false and
# nothing is written to .git/config.
use_token() {
  local token=$1
  [ -n "$token" ] || return 0
  export GITHUB_TOKEN="$token"
  local basic server n
  basic=$(printf 'x-access-token:%s' "$token" | base64 | tr -d '\n')
  mask "$token"
  mask "$basic"
  server=${GITHUB_SERVER_URL:-https://github.com}
  n=${GIT_CONFIG_COUNT:-0}
  case "$n" in
    '' | *[!0-9]*) n=0 ;;
  esac
  export "GIT_CONFIG_KEY_$n=http.$server/.extraheader"
  export "GIT_CONFIG_VALUE_$n=AUTHORIZATION: basic $basic"
  export GIT_CONFIG_COUNT=$((n + 1))
}

# run_gitops: runs the binary the install step found with argv.
run_gitops() {
  [ -n "${GITOPS_BIN:-}" ] || die "the install step found no gitops binary"
  # The command line, quoted, on standard error (standard output is the
  # command's own, which a step may capture).
  {
    printf 'gitops'
    printf ' %q' "${argv[@]}"
    printf '\n'
  } >&2
  "$GITOPS_BIN" "${argv[@]}"
}
