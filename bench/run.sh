#!/usr/bin/env bash
# Performance bench for drata-svcacct: measured against the physical limit (wrk on the same
# simulator) and against peers (GNU parallel + curl, newman) on the same data and server.
#
#   bash bench/run.sh          # everything
#   bash bench/run.sh sweep    # only the latency sweep (section 5), about 2 minutes
#
# Everything runs on 127.0.0.1 against the built-in simulator; no Drata account is needed.
# Takes about 5 minutes on a 2-core machine (plus the release build the first time).
# Prints Markdown tables on standard output at the end.
set -euo pipefail

MODE=${1:-all}
case "$MODE" in all|sweep) ;; *) echo "usage: bash bench/run.sh [sweep]" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release/drata-svcacct"
TOKEN=sim-token
export DRATA_API_KEY="$TOKEN"
# Loopback traffic must never go through a proxy (curl, newman and wrk all talk to 127.0.0.1).
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools: install what is missing, quietly, once.
# ---------------------------------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
    # $@: packages. Tries without an update first; runs `apt-get update` at most once.
    local out
    if ! out=$($SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" 2>&1); then
        if [ "$APT_UPDATED" -eq 0 ]; then
            log "apt-get update"
            $SUDO apt-get update -qq >/dev/null 2>&1 || true
            APT_UPDATED=1
        fi
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
            || die "could not install $*: $out"
    fi
}
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x /usr/bin/time ] || missing+=(time)
if [ "$MODE" = all ]; then
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v parallel >/dev/null 2>&1 || missing+=(parallel)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi
if [ "$MODE" = all ] && ! command -v newman >/dev/null 2>&1; then
    command -v npm >/dev/null 2>&1 || die "npm is needed to install newman"
    log "installing newman"
    $SUDO npm install -g --silent --no-audit --no-fund newman >/dev/null 2>&1 || die "npm install -g newman failed"
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed"

# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------
log "cargo build --release (may wait for a cargo lock)"
(cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
[ -x "$BIN" ] || die "$BIN not found after build"

# ---------------------------------------------------------------------------------------------
# Scratch space, simulators, cleanup
# ---------------------------------------------------------------------------------------------
T0=$(date +%s.%N)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/svcacct-bench.XXXXXX")"
SIM_PIDS=()
BG_PIDS=()
cleanup() {
    local p
    for p in "${BG_PIDS[@]:-}" "${SIM_PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]:-}" "${SIM_PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_sim NAME ARGS... : starts a simulator on a free loopback port, sets SIM_PORT.
start_sim() {
    local name=$1; shift
    local port tries
    port=$(free_port)
    "$BIN" simulate --listen "127.0.0.1:$port" --token "$TOKEN" -q "$@" \
        >"$WORK/sim-$name.log" 2>&1 &
    SIM_PIDS+=($!)
    for tries in $(seq 1 100); do
        if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/_sim/stats" 2>/dev/null; then
            SIM_PORT=$port
            return 0
        fi
        sleep 0.1
    done
    die "simulator $name did not start: $(cat "$WORK/sim-$name.log")"
}

stat_of() { # stat_of PORT FIELD
    curl -fsS --max-time 5 "http://127.0.0.1:$1/_sim/stats" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
jget() { # jget FILE EXPR  (EXPR in Python over `d`)
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
maxrss_mb() { # from a /usr/bin/time -v output file
    awk -F': *' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"
}
now() { date +%s.%N; }
calc() { python3 -c "import sys; print(format(eval(sys.argv[1]), sys.argv[2]))" "$1" "${2:-.1f}"; }

# gen_csv FILE FIRST LAST : rows FIRST..LAST, every 3rd one not a service account.
gen_csv() {
    awk -v a="$2" -v b="$3" 'BEGIN {
        print "id,serviceAccount,serviceAccountReason";
        for (i = a; i <= b; i++)
            printf "%d,%s,bench row %d: deploy bot reviewed in the Q3 access review\n", i, (i % 3 ? "true" : "false"), i;
    }' >"$1"
}

run_apply() { # run_apply TAG CSV PORT [extra apply args...] ; writes $WORK/TAG.{json,time,report.csv,err}
    local tag=$1 csv=$2 port=$3; shift 3
    local rc=0
    timeout 240 /usr/bin/time -v -o "$WORK/$tag.time" \
        "$BIN" apply "$csv" --base-url "http://127.0.0.1:$port/public" -q \
        --report "$WORK/$tag.report.csv" --summary-json "$WORK/$tag.json" "$@" \
        >"$WORK/$tag.out" 2>"$WORK/$tag.err" || rc=$?
    if [ ! -s "$WORK/$tag.json" ]; then
        die "apply $tag (exit $rc) wrote no summary: $(tail -5 "$WORK/$tag.err")"
    fi
    [ "$rc" -eq 0 ] || log "apply $tag exited $rc"
}

# ---------------------------------------------------------------------------------------------
# 5. Latency sweep: 150 rows at the defaults (--rate 450/min, --concurrency auto) against a
#    simulator (Drata's 500/min limit) answering after 20, 500, 2000 and 5000 ms, and the same
#    with --concurrency 8, the fixed default before auto; then 30% of PUTs answered 500 at
#    2000 ms; and 300 rows against a server answering anywhere from 2.5 s to 7.5 s (the start
#    of a run at ~5 s, when the first answers must seed the limit). The rate is what the
#    simulator saw: PUTs from the first to the last arrival (apply reads the listing first, at the
#    same latency a page; --no-verify skips the read after).
#    All runs at once, each on its own simulator: they are paced and light on CPU.
# ---------------------------------------------------------------------------------------------
SWEEP_LATENCIES=(20 500 2000 5000)
SWEEP_JOBS=()
declare -A SW_PORT SW_RATE SW_SHARE SW_MAX SW_END SW_RED SW_P50 SW_P95 SW_WALL SW_ROWS SW_UPD SW_FAIL

sweep_start() { # sweep_start TAG LATENCY ERROR_RATE [apply args...] : apply in the background, own simulator
    local tag=$1 latency=$2 errors=$3; shift 3
    start_sim "sweep-$tag" --identities 300 --latency "$latency" --error-rate "$errors"
    SW_PORT[$tag]=$SIM_PORT
    # A copy each: a second apply of a file another apply holds is refused.
    cp "$WORK/rows150.csv" "$WORK/rows150-$tag.csv"
    run_apply "sweep-$tag" "$WORK/rows150-$tag.csv" "$SIM_PORT" --no-verify "$@" &
    BG_PIDS+=($!)
    SWEEP_JOBS+=($!)
}

sweep_spread_start() { # 300 rows at 5000 ± 2500 ms, defaults
    start_sim "sweep-spread" --identities 300 --latency 5000 --latency-spread 2500
    SW_PORT[spread]=$SIM_PORT
    run_apply "sweep-spread" "$WORK/rows300.csv" "$SIM_PORT" --no-verify &
    BG_PIDS+=($!)
    SWEEP_JOBS+=($!)
}

sweep_read() { # sweep_read TAG : the server's view and the summary's figures
    local tag=$1 port=${SW_PORT[$1]} json="$WORK/sweep-$1.json"
    local requests first last
    # The PUTs only: apply reads the listing first, one page at a time, at the latency.
    requests=$(stat_of "$port" puts)
    first=$(stat_of "$port" first_put_us)
    last=$(stat_of "$port" last_put_us)
    SW_RATE[$tag]=$(calc "($requests - 1) * 60e6 / ($last - $first)" .0f)
    SW_SHARE[$tag]=$(calc "100 * ($requests - 1) * 60e6 / ($last - $first) / 450")
    SW_MAX[$tag]=$(jget "$json" 'd["concurrency"]["max"]')
    SW_END[$tag]=$(jget "$json" 'd["concurrency"]["limit"]')
    SW_RED[$tag]=$(jget "$json" 'd["concurrency"]["reductions"]')
    SW_P50[$tag]=$(jget "$json" 'format(d["latency_ms"]["p50"], ".0f")')
    SW_P95[$tag]=$(jget "$json" 'format(d["latency_ms"]["p95"], ".0f")')
    SW_WALL[$tag]=$(jget "$json" 'format(d["elapsed_seconds"], ".1f")')
    SW_UPD[$tag]=$(jget "$json" 'd["counts"]["updated"]')
    SW_FAIL[$tag]=$(jget "$json" 'd["counts"]["failed"]')
    SW_ROWS[$tag]=$(( $(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1]))))' "$WORK/sweep-$tag.report.csv") - 1 ))
}

latency_sweep() {
    log "5. latency sweep: 150 rows, defaults and --concurrency 8, at ${SWEEP_LATENCIES[*]} ms; 30% 500s at 2000 ms; 300 rows at 2.5-7.5 s (~2 min)"
    gen_csv "$WORK/rows150.csv" 1 150
    gen_csv "$WORK/rows300.csv" 1 300
    local latency job
    for latency in "${SWEEP_LATENCIES[@]}"; do
        sweep_start "auto-$latency" "$latency" 0
        sweep_start "c8-$latency" "$latency" 0 --concurrency 8
    done
    sweep_start errors 2000 0.3
    sweep_spread_start
    for job in "${SWEEP_JOBS[@]}"; do
        wait "$job" || die "a latency-sweep run failed"
    done
    for latency in "${SWEEP_LATENCIES[@]}"; do
        sweep_read "auto-$latency"
        sweep_read "c8-$latency"
    done
    sweep_read errors
    sweep_read spread
}

print_sweep() {
    cat <<EOF

Latency sweep: 150 rows at --rate 450/min against the simulator (500/min limit) answering after
the latency shown; the rate is what the simulator saw, first to last PUT (goal: >= 95%).

| server latency | before: --concurrency 8 | after: --concurrency auto (default) | auto: in-flight limit reached (at the end) | auto: latency p50 / p95 | wall time before -> after |
|---|---|---|---|---|---|
EOF
    local latency a c
    for latency in "${SWEEP_LATENCIES[@]}"; do
        a="auto-$latency" c="c8-$latency"
        echo "| ${latency} ms | ${SW_RATE[$c]}/min = ${SW_SHARE[$c]}% | ${SW_RATE[$a]}/min = ${SW_SHARE[$a]}% | ${SW_MAX[$a]} (${SW_END[$a]}) | ${SW_P50[$a]} / ${SW_P95[$a]} ms | ${SW_WALL[$c]} s -> ${SW_WALL[$a]} s |"
    done
    cat <<EOF

| 30% 500s at 2000 ms, defaults | figure |
|---|---|
| in-flight limit | ${SW_MAX[errors]} at most, ${SW_END[errors]} at the end, lowered ${SW_RED[errors]} times |
| rows | ${SW_ROWS[errors]}/150 in the report: ${SW_UPD[errors]} updated, ${SW_FAIL[errors]} failed |
| rate the server saw | ${SW_RATE[errors]}/min = ${SW_SHARE[errors]}% of 450/min; wall time ${SW_WALL[errors]} s |

| 300 rows at 2.5-7.5 s (5 s on average), defaults | figure |
|---|---|
| rate the server saw | ${SW_RATE[spread]}/min = ${SW_SHARE[spread]}% of 450/min |
| in-flight limit | ${SW_MAX[spread]} at most, ${SW_END[spread]} at the end, lowered ${SW_RED[spread]} times |
| rows | ${SW_ROWS[spread]}/300 in the report: ${SW_UPD[spread]} updated, ${SW_FAIL[spread]} failed; latency p50 / p95 ${SW_P50[spread]} / ${SW_P95[spread]} ms; wall time ${SW_WALL[spread]} s |
EOF
}

log "scratch dir $WORK"
if [ "$MODE" = sweep ]; then
    latency_sweep
    print_sweep
    exit 0
fi
gen_csv "$WORK/rows500.csv" 1 500
gen_csv "$WORK/rows200.csv" 1 200
gen_csv "$WORK/rows5k.csv" 1 5000
gen_csv "$WORK/rows50k.csv" 1 50000
gen_csv "$WORK/rows1m.csv" 1 1000000

# ---------------------------------------------------------------------------------------------
# 1. Rate fidelity (about 67 s), in the background while the peers run: both are paced and
#    light on CPU, and each uses its own simulator, so they do not interfere.
# ---------------------------------------------------------------------------------------------
log "1. rate fidelity: 500 rows at the default --rate 450/min against --rate-limit 500/min (~67 s, background)"
start_sim rate --identities 1000 --rate-limit 500/min
RATE_PORT=$SIM_PORT
run_apply rate "$WORK/rows500.csv" "$RATE_PORT" &
BG_PIDS+=($!)
RATE_JOB=$!

# ---------------------------------------------------------------------------------------------
# 4. Peers: same 200 rows, a fresh simulator each (500/min, 10% of PUTs answered 500).
# ---------------------------------------------------------------------------------------------
PEER_SIM_ARGS=(--identities 1000 --rate-limit 500/min --error-rate 0.1)
declare -A P_ROWS P_WALL P_429 P_RSS P_REQ

peer_done() { # peer_done NAME PORT T_START T_END APPLIED_BEFORE
    P_WALL[$1]=$(calc "$4 - $3")
    P_ROWS[$1]=$(( $(stat_of "$2" applied) - $5 ))
    P_429[$1]=$(stat_of "$2" rate_limited)
    P_REQ[$1]=$(stat_of "$2" requests)
}

log "4a. peer: drata-svcacct apply, defaults"
start_sim peer-ours "${PEER_SIM_ARGS[@]}"
port=$SIM_PORT; before=$(stat_of "$port" applied); t1=$(now)
run_apply peer-ours "$WORK/rows200.csv" "$port"
t2=$(now); peer_done ours "$port" "$t1" "$t2" "$before"
P_ROWS[ours]=$(jget "$WORK/peer-ours.json" 'd["counts"]["updated"]')
P_RSS[ours]=$(maxrss_mb "$WORK/peer-ours.time")

log "4b. peer: GNU parallel -j 8 --delay 0.133 + curl --retry 5 --retry-all-errors"
cat >"$WORK/put_row.sh" <<'EOF'
#!/usr/bin/env bash
# put_row.sh BASE ID FLAG REASON : one PUT, curl's own retries.
exec curl -sS -f -o /dev/null --max-time 30 --retry 5 --retry-all-errors \
    -X PUT -H "Authorization: Bearer sim-token" -H "Content-Type: application/json" \
    --data "{\"serviceAccount\":$3,\"serviceAccountReason\":\"$4\"}" \
    "$1/user-identities/infrastructure/$2/service-account"
EOF
tail -n +2 "$WORK/rows200.csv" >"$WORK/rows200.noheader.csv"
start_sim peer-parallel "${PEER_SIM_ARGS[@]}"
port=$SIM_PORT; before=$(stat_of "$port" applied); t1=$(now)
timeout 240 /usr/bin/time -v -o "$WORK/peer-parallel.time" \
    parallel --will-cite -j 8 --delay 0.133 --colsep , \
    bash "$WORK/put_row.sh" "http://127.0.0.1:$port/public" {1} {2} {3} \
    :::: "$WORK/rows200.noheader.csv" >"$WORK/peer-parallel.out" 2>&1 || log "parallel exited $? (some rows failed)"
t2=$(now); peer_done parallel "$port" "$t1" "$t2" "$before"
P_RSS[parallel]=$(maxrss_mb "$WORK/peer-parallel.time")

log "4c. peer: newman run --delay-request 133"
start_sim peer-newman "${PEER_SIM_ARGS[@]}"
port=$SIM_PORT
cat >"$WORK/collection.json" <<EOF
{
  "info": {
    "name": "drata-svcacct bench",
    "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
  },
  "item": [
    {
      "name": "set service account",
      "request": {
        "method": "PUT",
        "header": [
          {"key": "Authorization", "value": "Bearer $TOKEN"},
          {"key": "Content-Type", "value": "application/json"}
        ],
        "body": {
          "mode": "raw",
          "raw": "{\"serviceAccount\": {{serviceAccount}}, \"serviceAccountReason\": \"{{serviceAccountReason}}\"}"
        },
        "url": "http://127.0.0.1:$port/public/user-identities/infrastructure/{{id}}/service-account"
      }
    }
  ]
}
EOF
before=$(stat_of "$port" applied); t1=$(now)
timeout 240 /usr/bin/time -v -o "$WORK/peer-newman.time" \
    newman run "$WORK/collection.json" -d "$WORK/rows200.csv" --delay-request 133 \
    --reporters cli --reporter-cli-no-summary --reporter-cli-no-success-assertions --disable-unicode \
    >"$WORK/peer-newman.out" 2>&1 || log "newman exited $?"
t2=$(now); peer_done newman "$port" "$t1" "$t2" "$before"
P_RSS[newman]=$(maxrss_mb "$WORK/peer-newman.time")

log "waiting for the rate-fidelity run"
wait "$RATE_JOB" || die "rate-fidelity run failed"
RATE_REQ=$(jget "$WORK/rate.json" 'd["requests"]')
RATE_EL=$(jget "$WORK/rate.json" 'd["elapsed_seconds"]')
RATE_429=$(jget "$WORK/rate.json" 'd["rate_limited"]')
RATE_EFF=$(jget "$WORK/rate.json" 'd["effective_rate_per_minute"]')
RATE_UPD=$(jget "$WORK/rate.json" 'd["counts"]["updated"]')
RATE_SIM429=$(stat_of "$RATE_PORT" rate_limited)
RATE_ACH=$(calc "$RATE_REQ * 60 / $RATE_EL")
RATE_SHARE=$(calc "100 * $RATE_ACH / 450")

# ---------------------------------------------------------------------------------------------
# 2 + 3. Engine and memory, alone on the machine: an unlimited simulator.
# ---------------------------------------------------------------------------------------------
log "3. memory: validate 1,000,000 rows"
vrc=0
timeout 120 /usr/bin/time -v -o "$WORK/validate.time" "$BIN" validate -q "$WORK/rows1m.csv" \
    >"$WORK/validate.out" 2>"$WORK/validate.err" || vrc=$?
[ "$vrc" -eq 0 ] || die "validate exited $vrc: $(tail -5 "$WORK/validate.err")"
VAL_RSS=$(maxrss_mb "$WORK/validate.time")
VAL_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/validate.time")

log "3. memory: validate an input with one 100 MB field"
python3 - "$WORK/field100m.csv" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"id,serviceAccount,serviceAccountReason\n1,true,ok\n2,true,")
    chunk = b"x" * (1 << 20)
    for _ in range(100):
        f.write(chunk)
    f.write(b"\n3,false,fine\n")
PY
frc=0
timeout 120 /usr/bin/time -v -o "$WORK/field.time" "$BIN" validate "$WORK/field100m.csv" \
    >"$WORK/field.out" 2>"$WORK/field.err" || frc=$?
[ "$frc" -eq 1 ] || die "validate of the 100 MB field exited $frc (expected 1: one invalid row)"
FIELD_RSS=$(maxrss_mb "$WORK/field.time")
FIELD_MSG=$(head -c 60 "$WORK/field.out")

start_sim engine --identities 50000 --rate-limit unlimited
ENG_PORT=$SIM_PORT

log "3. memory: apply 5,000 rows, --rate unlimited --concurrency 64"
run_apply apply5k "$WORK/rows5k.csv" "$ENG_PORT" --rate unlimited --concurrency 64
A5K_RSS=$(maxrss_mb "$WORK/apply5k.time")

log "2. engine: apply 50,000 rows, --rate unlimited --concurrency 64"
run_apply apply50k "$WORK/rows50k.csv" "$ENG_PORT" --rate unlimited --concurrency 64
A50K_RSS=$(maxrss_mb "$WORK/apply50k.time")
ENG_UPD=$(jget "$WORK/apply50k.json" 'd["counts"]["updated"]')
ENG_EL=$(jget "$WORK/apply50k.json" 'd["elapsed_seconds"]')
ENG_RPS=$(calc "$ENG_UPD / $ENG_EL" .0f)
ENG_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/apply50k.time")

log "2. engine: wrk -c 64 -t 2 -d 10s, same PUT, same simulator"
cat >"$WORK/put.lua" <<EOF
wrk.method = "PUT"
wrk.body = '{"serviceAccount":true,"serviceAccountReason":"bench row 1: deploy bot reviewed in the Q3 access review"}'
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
EOF
timeout 60 wrk -c 64 -t 2 -d 10s -s "$WORK/put.lua" \
    "http://127.0.0.1:$ENG_PORT/public/user-identities/infrastructure/1/service-account" \
    >"$WORK/wrk.out" 2>&1 || die "wrk failed: $(cat "$WORK/wrk.out")"
WRK_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/wrk.out")
WRK_NON2XX=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
[ -n "$WRK_RPS" ] || die "could not read wrk output: $(cat "$WORK/wrk.out")"
ENG_RATIO=$(calc "$ENG_RPS / $WRK_RPS" .2f)

latency_sweep

TOTAL=$(calc "$(now) - $T0" .0f)

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
VER=$("$BIN" --version 2>/dev/null || echo drata-svcacct)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$REV" != unknown ] && ! git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null; then
    REV="$REV + uncommitted changes in src/"
fi

cat <<EOF

## drata-svcacct bench

Machine: $(nproc) CPU(s), ${CPU:-unknown CPU}, $MEM RAM; $VER (commit $REV); bench wall time ${TOTAL} s (after the build).

| measurement | figure | goal |
|---|---|---|
| rate fidelity: achieved rate, 500 rows, default --rate 450/min vs 500/min server | ${RATE_ACH}/min = ${RATE_SHARE}% of 450/min (${RATE_REQ} requests in ${RATE_EL} s; summary says ${RATE_EFF}/min; ${RATE_UPD} updated) | >= 99% |
| rate fidelity: 429s provoked | ${RATE_429} (simulator counted ${RATE_SIM429}) | 0 |
| engine: ours, 50,000 rows, --rate unlimited --concurrency 64 | ${ENG_RPS} rows/s (${ENG_UPD} updated in ${ENG_EL} s; wall ${ENG_WALL}) | |
| engine: wrk -c 64 -t 2 -d 10s, same PUT, same simulator | ${WRK_RPS} req/s (non-2xx: ${WRK_NON2XX:-0}) | |
| engine: ratio ours / wrk | ${ENG_RATIO} | >= 0.5 |
| memory: validate, 1,000,000 rows (peak RSS) | ${VAL_RSS} MB (wall ${VAL_WALL}) | <= 64 MB |
| memory: validate, one 100 MB field (peak RSS) | ${FIELD_RSS} MB; reported "${FIELD_MSG}…" | <= 64 MB |
| memory: apply, 5,000 rows (peak RSS) | ${A5K_RSS} MB | <= 64 MB |
| memory: apply, 50,000 rows (peak RSS) | ${A50K_RSS} MB | <= 64 MB, flat in rows |

The rate-fidelity run went on alongside the peers (its own simulator, both paced); engine and memory ran alone.

Peers: 200 rows, a fresh simulator each (--rate-limit 500/min, bucket 5, --error-rate 0.1), same pacing (~450/min).
Peak RSS is /usr/bin/time's maximum resident set size: the largest single process of the run.

| tool | rows updated | wall time | 429s | peak RSS |
|---|---|---|---|---|
| drata-svcacct apply (defaults) | ${P_ROWS[ours]}/200 | ${P_WALL[ours]} s | ${P_429[ours]} | ${P_RSS[ours]} MB |
| GNU parallel -j 8 --delay 0.133 + curl --retry 5 --retry-all-errors | ${P_ROWS[parallel]}/200 | ${P_WALL[parallel]} s | ${P_429[parallel]} | ${P_RSS[parallel]} MB |
| newman run --delay-request 133 | ${P_ROWS[newman]}/200 | ${P_WALL[newman]} s | ${P_429[newman]} | ${P_RSS[newman]} MB |
EOF
print_sweep
