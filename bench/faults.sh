#!/usr/bin/env bash
# The fault matrix of the "never lose a row" guarantees (retries on 500s, dropped connections,
# timeouts and 429s), as figures: for each fault, rows updated and failed, requests made, and what
# the simulator really applied. Loopback only; about 1 minute.
#
#   bash bench/faults.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release/drata-svcacct"
export DRATA_API_KEY=sim-token NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
ROWS=200

(cd "$ROOT" && cargo build --release -q)
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

echo "| fault | client options | updated | failed | requests | retries | 429s | applied by the server | wall time | exit |"
echo "|---|---|---|---|---|---|---|---|---|---|"
run_case() {
    local name="$1" sim_opts="$2" client_opts="$3"
    local port; port=$(free_port)
    # shellcheck disable=SC2086
    "$BIN" simulate --listen "127.0.0.1:$port" --identities 1000 $sim_opts >/dev/null 2>&1 &
    SIM_PID=$!
    for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/_sim/stats" >/dev/null && break; sleep 0.1; done
    local code=0
    # shellcheck disable=SC2086
    timeout 300 "$BIN" apply "$WORK/rows.csv" --base-url "http://127.0.0.1:$port/public" \
        --report "$WORK/$name.csv" --summary-json "$WORK/$name.json" --max-failures none -q \
        $client_opts 2>/dev/null || code=$?
    local s="$WORK/$name.json"
    echo "| $name | \`$client_opts\` | $(jget "$s" 'd["counts"]["updated"]') | $(jget "$s" 'd["counts"]["failed"]') | $(jget "$s" 'd["requests"]') | $(jget "$s" 'd["retries"]') | $(jget "$s" 'd["rate_limited"]') | $(stat_of "$port" applied) | $(jget "$s" 'd["elapsed_seconds"]') s | $code |"
    kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=""
}

run_case "30% 500s" "--rate-limit unlimited --error-rate 0.3" "--rate unlimited --max-attempts 8"
run_case "20% dropped connections" "--rate-limit unlimited --drop-rate 0.2" "--rate unlimited --max-attempts 8"
run_case "20% answers after 3 s" "--rate-limit unlimited --slow-rate 0.2 --slow-ms 3000" "--rate unlimited --timeout 1 --max-attempts 8"
run_case "server limit exceeded 2x" "--rate-limit 500/min" "--rate 1000/min"
echo
echo "Ideal wall time for the last case: $ROWS requests at the server's 500/min = $((ROWS * 60 / 500)) s."
