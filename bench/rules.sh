#!/usr/bin/env bash
# `plan --rules` at scale, as figures: 10 rules over 50,000 identities of the simulator, and
# the same identities planned from an input file without rules. Release build, loopback only,
# about 1 minute (plus the release build the first time).
#
#   bash bench/rules.sh                    # the release build of this tree
#   IDENTITIES=10000 bash bench/rules.sh   # another size
#
# Phases, from the run's own log time stamps (text logs, UTC) and the clock around it:
#   listing   start of the run → "current state read" (the listing's GETs: on Drata the rate
#             bounds them, 50,000 identities are 1,000 pages, about 2.2 min at 450/min)
#   deciding  → the rules' table ("rule: matched, would change, already so"): every identity
#             through the rules, and every rule row through the planner to count the changes
#   report    → the process's end: every row decided again and written to the report
# Peak memory is /usr/bin/time -v's maximum resident set size.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/drata-svcacct}"
IDENTITIES="${IDENTITIES:-50000}"
export DRATA_API_KEY=sim-token NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -n "${BIN_BUILT:-}" ] || (cd "$ROOT" && cargo build --release -q)
WORK="$(mktemp -d)"
SIM_PID=""
cleanup() { [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# Ten rules, the usual nightly shapes. A person's identity (the most common) is tried against
# all ten and matches none: the slowest path through the rules.
cat >"$WORK/rules.toml" <<'TOML'
[[rule]]
name = "unmarked-automation"
service_account = true
reason = "Automation account {username} ({connection}); rule {rule}"
[rule.match]
username = "^(deploy-bot|ci-runner|github-actions|terraform-ci|backup-bot)-\\d+$"
email_absent = true
marked = false

[[rule]]
name = "svc-accounts"
service_account = true
reason = "Seeded: automation account"
[rule.match]
username = "^svc-"
marked = true

[[rule]]
name = "aws-terraform"
service_account = true
reason = "Terraform on AWS: {username}; rule {rule}"
[rule.match]
username = "(?i)terraform"
client_type = "AWS"
marked = false

[[rule]]
name = "gcp-deploy"
service_account = true
reason = "Deployment on GCP: {username}; rule {rule}"
[rule.match]
username = "(?i)deploy"
client_type = ["GCP"]
marked = false

[[rule]]
name = "azure-backup"
service_account = true
reason = "Backup on Azure: {username}; rule {rule}"
[rule.match]
username = "(?i)backup"
connection = "azure-corp"
marked = false

[[rule]]
name = "monitors"
service_account = true
reason = "Monitoring {username}; rule {rule}"
[rule.match]
username = "monitor"
linked_user = false
marked = false

[[rule]]
name = "contractors"
service_account = false
reason = "Contractor {email}: a person; rule {rule}"
[rule.match]
email = "@contractors\\.example\\.com$"
marked = true

[[rule]]
name = "nameless"
service_account = true
reason = "No email and no Drata user: {username}; rule {rule}"
[rule.match]
email_absent = true
linked_user = false
marked = false

[[rule]]
name = "people-marked"
service_account = false
reason = "{username} is a person ({email}); rule {rule}"
[rule.match]
email = "^[a-z]+\\.[a-z]+\\d*@example\\.com$"
linked_user = true
marked = true

[[rule]]
name = "ci-prefix"
service_account = true
reason = "CI account {username}; rule {rule}"
[rule.match]
username = "^ci[-_]"
marked = false
TOML

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
"$BIN" simulate --listen "127.0.0.1:$port" --identities "$IDENTITIES" --rate-limit unlimited -q >/dev/null 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/_sim/stats" >/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$port/public"

# The input of the plan without rules: every identity as Drata has it (all `unchanged`), the
# three columns of a decision, from an export.
"$BIN" export -o "$WORK/export.csv" --base-url "$URL" --rate unlimited -q
python3 - "$WORK/export.csv" "$WORK/decisions.csv" <<'PY'
import csv, sys
with open(sys.argv[1], newline="") as src, open(sys.argv[2], "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["id", "serviceAccount", "serviceAccountReason"])
    for r in csv.DictReader(src):
        w.writerow([r["id"], r["serviceAccount"], r["serviceAccountReason"]])
PY

# $1: a file name for the run's files; $2: its label; the rest: plan's arguments. Prints one
# table row.
measure() {
    local name="$1" label="$2"; shift 2
    local start end code=0
    start=$(python3 -c 'import time; print(time.time())')
    NO_COLOR=1 /usr/bin/time -v -o "$WORK/$name.time" "$BIN" plan "$@" --base-url "$URL" \
        --rate unlimited --report "$WORK/$name.csv" >"$WORK/$name.out" 2>"$WORK/$name.log" || code=$?
    end=$(python3 -c 'import time; print(time.time())')
    python3 - "$label" "$start" "$end" "$WORK/$name.log" "$WORK/$name.time" "$WORK/$name.csv" "$code" <<'PY'
import csv, re, sys
from datetime import datetime
name, start, end, log, timing, report, code = sys.argv[1:]
start, end = float(start), float(end)
def at(text):
    for line in open(log):
        if text in line:
            stamp = line.split()[0]
            return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=__import__("datetime").timezone.utc).timestamp()
    return None
listed = at("current state read")
decided = at("rule: matched, would change, already so")
requests = re.search(r"current state read identities=(\d+) requests=(\d+)", open(log).read())
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(timing).read()).group(1))
rows = sum(1 for _ in csv.DictReader(open(report, newline="")))
would = sum(1 for r in csv.DictReader(open(report, newline="")) if r["outcome"] == "would_update")
ms = lambda a, b: f"{(b - a) * 1000:,.0f} ms"
deciding = ms(listed, decided) if decided else "–"
report_phase = ms(decided or listed, end)
print(f"| {name} | {requests.group(1) if requests else '?'} | {ms(start, listed)} ({requests.group(2) if requests else '?'} GETs) "
      f"| {deciding} | {report_phase} | {ms(start, end)} | {rss / 1024:.1f} MB | {rows:,} rows, {would:,} would update | {code} |")
PY
}

echo "| plan | identities | listing | deciding (rules) | decide again + report | wall | peak RSS | report | exit |"
echo "|---|---|---|---|---|---|---|---|---|"
measure rules "\`--rules\` (10 rules), no input" --rules "$WORK/rules.toml"
measure input "an input of every identity, no rules" "$WORK/decisions.csv"
measure both "that input and \`--rules\` (every row wins)" "$WORK/decisions.csv" --rules "$WORK/rules.toml"
echo
echo "Rule table of the first run:"
grep -E "rule [a-z-]+: |matched no rule" "$WORK/rules.log" | sed -E 's/^[^ ]+ +INFO +/    /; s/ rule=.*$//; s/ unmatched=.*$//'
