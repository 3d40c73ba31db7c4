# The harness bench/faults.sh and bench/hostile.sh share: a release build, a scratch directory,
# the input rows, one simulator at a time on a free loopback port, one `apply` against it.
# Sourced, not run. The caller sets ROWS first.
#
#   BIN=/path/to/build        the simulator and client to use (default: this tree's release build,
#                             built first unless BIN_BUILT is set)
#   CLIENT=/path/to/build     another build's client against the same simulator

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/drata-svcacct}"
CLIENT="${CLIENT:-$BIN}"
export DRATA_API_KEY=sim-token NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

[ -n "${BIN_BUILT:-}" ] || (cd "$ROOT" && cargo build --release -q)
WORK="$(mktemp -d)"
SIM_PID=""
cleanup() { [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

python3 - "$WORK/rows.csv" "$ROWS" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,serviceAccount,serviceAccountReason\n")
    for i in range(1, int(sys.argv[2]) + 1):
        f.write(f"{i},true,automation account {i}\n")
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stat_of() { curl -s "http://127.0.0.1:$1/_sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# Rows whose last error was a timeout.
timeouts() { python3 -c 'import csv,sys; print(sum("timed out" in r["error"] for r in csv.DictReader(open(sys.argv[1]))))' "$1"; }

# start_sim SIM_OPTS : a simulator with 1000 identities on a free port; sets PORT and SIM_PID.
start_sim() {
    PORT=$(free_port)
    # shellcheck disable=SC2086
    "$BIN" simulate --listen "127.0.0.1:$PORT" --identities 1000 $1 >/dev/null 2>&1 &
    SIM_PID=$!
    for _ in $(seq 50); do curl -s "http://127.0.0.1:$PORT/_sim/stats" >/dev/null && break; sleep 0.1; done
}

stop_sim() { kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=""; }

# apply_rows NAME SECONDS CLIENT_OPTS : the client applies the rows against the simulator on
# PORT, for at most SECONDS; the summary goes to $WORK/NAME.json, the report to $WORK/NAME.csv,
# the exit code to CODE.
apply_rows() {
    CODE=0
    # shellcheck disable=SC2086
    timeout "$2" "$CLIENT" apply "$WORK/rows.csv" --base-url "http://127.0.0.1:$PORT/public" \
        --report "$WORK/$1.csv" --summary-json "$WORK/$1.json" --max-failures none -q \
        $3 2>/dev/null || CODE=$?
}
