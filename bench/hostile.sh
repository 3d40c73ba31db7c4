#!/usr/bin/env bash
# Hostile servers, as figures: a server that admits 2 requests at a time (503 beyond), and one
# that queues (works on one request at a time, so the latency grows with the requests in flight),
# the latter also at one request in flight, the server's own pace. Loopback only; about 4 minutes.
#
#   bash bench/hostile.sh                               # the release build of this tree
#   CLIENT=/path/to/other/build bash bench/hostile.sh   # the client of another build, same simulator
set -euo pipefail
ROWS=150
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

echo "| server | client options | updated | failed | PUT attempts | 503s (share of PUT attempts) | retries | wall time (PUTs from first to last) | in flight at most, at the end | exit |"
echo "|---|---|---|---|---|---|---|---|---|---|"
run_case() {
    local name="$1" sim_opts="$2" client_opts="$3"
    start_sim "$sim_opts"
    apply_rows "$name" 600 "$client_opts"
    local s="$WORK/$name.json" puts overloaded put_phase
    # `puts` counts the PUTs the server worked on; the 503s were refused before.
    overloaded=$(stat_of "$PORT" overloaded); puts=$(( $(stat_of "$PORT" puts) + overloaded ))
    # The listing is read before and after the PUTs: at 1 s a page, 21 s each time.
    put_phase=$(python3 -c "print(round(($(stat_of "$PORT" last_put_us) - $(stat_of "$PORT" first_put_us)) / 1e6, 1))")
    echo "| $name | \`$client_opts\` | $(jget "$s" 'd["counts"]["updated"]') | $(jget "$s" 'd["counts"]["failed"]') | $puts | $overloaded ($(python3 -c "print(round(100*$overloaded/max($puts,1)))")%) | $(jget "$s" 'd["retries"]') | $(jget "$s" 'd["elapsed_seconds"]') s ($put_phase s), $(timeouts "$WORK/$name.csv") rows timed out | $(jget "$s" 'd["concurrency"]["max"]'), $(jget "$s" 'd["concurrency"]["limit"]') | $CODE |"
    stop_sim
}

run_case "admits 2 at a time, 1 s each" "--rate-limit unlimited --latency 1000 --max-in-flight 2" ""
run_case "queues: one at a time, 90 ms each" "--rate-limit unlimited --queue-ms 90" "--rate unlimited --timeout 5"
run_case "queues, the same at one in flight" "--rate-limit unlimited --queue-ms 90" "--rate unlimited --timeout 5 --concurrency 1"
echo
echo "Ideal time of the PUTs: 150 at 2 at a time, 1 s each = 75 s; one at a time, 90 ms each = 13.5 s."
