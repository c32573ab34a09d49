# shellcheck shell=bash
# Sourced by the moto benchmarks (benches/*/run.sh): one way to start the
# emulator. The scale benchmark starts its own from Python (bench.py).
#
# start_moto WORK [VAR=VALUE...]: starts moto_server on 127.0.0.1 with a
# free port (VAR=VALUE in its environment, such as MOTO_RECORDER_FILEPATH),
# its log in WORK/moto.log; on exit, stops it and removes WORK. Waits until it
# answers, then exports AWS_ENDPOINT_URL and test credentials pointing at it.
start_moto() {
  local work=$1
  shift
  local log="$work/moto.log"
  env "$@" moto_server -H 127.0.0.1 -p 0 >"$log" 2>&1 &
  # Expanded now: the trap runs after this function's locals are gone.
  # shellcheck disable=SC2064
  trap "kill $! 2>/dev/null || true; rm -rf '$work'" EXIT
  local port=""
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*Running on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
    port=""
    sleep 0.1
  done
  [ -n "$port" ] || { echo "moto_server did not start:" >&2; cat "$log" >&2; exit 1; }
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing \
    AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true AWS_MAX_ATTEMPTS=2 AWS_PAGER=""
}
