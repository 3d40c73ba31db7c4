#!/usr/bin/env bash
# Wall time against the floor the rate sets: how close a run comes to sending its requests at
# the default `--rate 450/min` (7.5 a second), all its requests counted (the listing read before
# the updates and again after them, the updates, their retries). Two runs, loopback only, about
# 2 minutes with the default rate:
#
#   - apply of 1,000 identities with 31 changes, the server answering after 300 ms: the listing
#     (21 pages) before and after dominates, and read one page at a time it waits for the
#     latency rather than for the rate;
#   - apply of 200 rows against a server answering 10% of PUTs with 500: the retries are paid
#     by the retry budget, and the pace should hold.
#
#   bash bench/speed.sh                               # the release build of this tree
#   CLIENT=/path/to/other/build bash bench/speed.sh   # the client of another build, same simulator
set -euo pipefail
ROWS=200
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# changed_rows FILE N : every identity of the simulator on PORT as it is, but the first N
# flipped (marked ones unmarked, the others marked), as an input file.
changed_rows() {
    python3 - "$1" "$2" "http://127.0.0.1:$PORT/public/user-identities/infrastructure" <<'PY'
import json, sys, time, urllib.error, urllib.request
out, flips, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
identities, page = [], 1
while True:
    request = urllib.request.Request(f"{base}?page={page}&limit=50",
                                     headers={"Authorization": "Bearer sim-token"})
    try:
        data = json.load(urllib.request.urlopen(request))["data"]
    except urllib.error.HTTPError as e:
        # The simulator's own rate limit: wait and ask again.
        if e.code != 429:
            raise
        time.sleep(1)
        continue
    identities += data
    if len(data) < 50:
        break
    page += 1
with open(out, "w") as f:
    f.write("id,serviceAccount,serviceAccountReason\n")
    for n, identity in enumerate(sorted(identities, key=lambda i: i["id"])):
        marked = identity.get("serviceAccount") is not None
        reason = identity.get("serviceAccountReason") or ""
        if n < flips:
            marked, reason = not marked, "speed bench"
        f.write(f'{identity["id"]},{str(marked).lower()},"{reason}"\n')
PY
}

echo "| run | rows, changes | requests (server) | floor: requests ÷ 7.5/s | wall time | wall ÷ floor | rate lowered (pace, in flight) | updated, failed |"
echo "|---|---|---|---|---|---|---|---|"
# report NAME LABEL ROWS_CHANGES : one line of the table from the simulator on PORT (less the
# BEFORE requests it had seen before the run) and the summary of run NAME.
report() {
    local s="$WORK/$1.json" requests wall floor
    requests=$(( $(stat_of "$PORT" requests) - ${BEFORE:-0} ))
    wall=$(jget "$s" 'd["elapsed_seconds"]')
    floor=$(python3 -c "print(round($requests / 7.5, 1))")
    echo "| $2 | $3 | $requests | $floor s | $wall s | $(python3 -c "print(round($wall / $floor, 2))") | $(jget "$s" 'd["rate_reductions"]'), $(jget "$s" 'd["concurrency"]["reductions"]') | $(jget "$s" 'd["counts"]["updated"]'), $(jget "$s" 'd["counts"]["failed"]') |"
}

start_sim "--latency 300"
changed_rows "$WORK/changes.csv" 31
# Reading the state above used the simulator's rate limit; let its bucket drain.
sleep 10
BEFORE=$(stat_of "$PORT" requests)
CODE=0
timeout 600 "$CLIENT" apply "$WORK/changes.csv" --base-url "http://127.0.0.1:$PORT/public" \
    --report "$WORK/latency.csv" --summary-json "$WORK/latency.json" --max-failures none -q \
    2>/dev/null || CODE=$?
report latency "1,000 identities, 300 ms latency (exit $CODE)" "1,000, 31"
stop_sim

start_sim "--error-rate 0.1 --seed 11"
BEFORE=0
apply_rows errors 600 ""
report errors "10% of PUTs answered 500 (exit $CODE)" "200, 200"
stop_sim
