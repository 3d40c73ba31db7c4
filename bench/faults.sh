#!/usr/bin/env bash
# The fault matrix of the "never lose a row" guarantees (retries on 500s, dropped connections,
# timeouts and 429s), as figures: for each fault, rows updated and failed, requests made, and what
# the simulator really applied. Loopback only; about 1 minute.
#
#   bash bench/faults.sh
set -euo pipefail
ROWS=200
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

echo "| fault | client options | updated | failed | requests | retries | 429s | applied by the server | wall time | exit |"
echo "|---|---|---|---|---|---|---|---|---|---|"
run_case() {
    local name="$1" sim_opts="$2" client_opts="$3"
    start_sim "$sim_opts"
    apply_rows "$name" 300 "$client_opts"
    local s="$WORK/$name.json"
    echo "| $name | \`$client_opts\` | $(jget "$s" 'd["counts"]["updated"]') | $(jget "$s" 'd["counts"]["failed"]') | $(jget "$s" 'd["requests"]') | $(jget "$s" 'd["retries"]') | $(jget "$s" 'd["rate_limited"]') | $(stat_of "$PORT" applied) | $(jget "$s" 'd["elapsed_seconds"]') s | $CODE |"
    stop_sim
}

run_case "30% 500s" "--rate-limit unlimited --error-rate 0.3" "--rate unlimited --max-attempts 8"
run_case "20% dropped connections" "--rate-limit unlimited --drop-rate 0.2" "--rate unlimited --max-attempts 8"
run_case "20% answers after 3 s" "--rate-limit unlimited --slow-rate 0.2 --slow-ms 3000" "--rate unlimited --timeout 1 --max-attempts 8"
run_case "server limit exceeded 2x" "--rate-limit 500/min" "--rate 1000/min"
echo
echo "Ideal wall time for the last case: $ROWS requests at the server's 500/min = $((ROWS * 60 / 500)) s."
