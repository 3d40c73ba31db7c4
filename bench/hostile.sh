#!/usr/bin/env bash
# Hostile servers, as figures: a server that admits 2 requests at a time (503 beyond), and one
# that works on one request at a time (the latency grows with the requests in flight).
# Loopback only; about 1 minute.
#
#   bash bench/hostile.sh                 # the release build of this tree
#   CLIENT=/path/to/other/build bash bench/hostile.sh   # the client of another build, same simulator
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/drata-svcacct}"
CLIENT="${CLIENT:-$BIN}"
export DRATA_API_KEY=sim-token NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
ROWS=150

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
timeouts() { python3 -c 'import csv,sys; print(sum("timed out" in r["error"] for r in csv.DictReader(open(sys.argv[1]))))' "$1"; }

echo "| server | client options | updated | failed | PUT attempts | 503s (share of PUT attempts) | retries | wall time | exit |"
echo "|---|---|---|---|---|---|---|---|---|"
run_case() {
    local name="$1" sim_opts="$2" client_opts="$3"
    local port; port=$(free_port)
    # shellcheck disable=SC2086
    "$BIN" simulate --listen "127.0.0.1:$port" --identities 1000 $sim_opts >/dev/null 2>&1 &
    SIM_PID=$!
    for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/_sim/stats" >/dev/null && break; sleep 0.1; done
    local code=0
    # shellcheck disable=SC2086
    timeout 600 "$CLIENT" apply "$WORK/rows.csv" --base-url "http://127.0.0.1:$port/public" \
        --report "$WORK/$name.csv" --summary-json "$WORK/$name.json" --max-failures none -q \
        $client_opts 2>/dev/null || code=$?
    local s="$WORK/$name.json" puts overloaded
    # `puts` counts the PUTs the server worked on; the 503s were refused before.
    overloaded=$(stat_of "$port" overloaded); puts=$(( $(stat_of "$port" puts) + overloaded ))
    echo "| $name | \`$client_opts\` | $(jget "$s" 'd["counts"]["updated"]') | $(jget "$s" 'd["counts"]["failed"]') | $puts | $overloaded ($(python3 -c "print(round(100*$overloaded/max($puts,1)))")%) | $(jget "$s" 'd["retries"]') | $(jget "$s" 'd["elapsed_seconds"]') s, $(timeouts "$WORK/$name.csv") rows timed out | $code |"
    kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=""
}

run_case "admits 2 at a time, 1 s each" "--rate-limit unlimited --latency 1000 --max-in-flight 2" ""
run_case "one at a time, 90 ms each" "--rate-limit unlimited --queue-ms 90" "--rate unlimited --timeout 5"
