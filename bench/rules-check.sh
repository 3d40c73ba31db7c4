#!/usr/bin/env bash
# `validate --rules FILE` at scale, as figures: the time and peak memory of checking a rules
# file of 2,000 and 20,000 rules (each with a regular expression, a placeholder in its reason
# and two conditions, the usual nightly shape: about 160 bytes a rule), release build,
# offline. About 10 s after the release build. Goal: 20,000 rules checked in under 1 s.
#
#   bash bench/rules-check.sh                       # the release build of this tree
#   BIN=/tmp/old-build BIN_BUILT=1 bash bench/rules-check.sh   # another build
#   COUNTS="2000 20000 30000" bash bench/rules-check.sh         # other sizes
#
# Each size is checked three times; the table shows the fastest (the machine is shared, so
# the slower runs measure the neighbours) and the peak RSS of that run (/usr/bin/time -v).
# A file over the rules file's size cap (4 MiB) is refused before it is parsed: its row says
# so, with the time the refusal took.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/drata-svcacct}"
COUNTS="${COUNTS:-2000 20000}"

[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -n "${BIN_BUILT:-}" ] || (cd "$ROOT" && cargo build --release -q)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# $1: rules; $2: the file. Every rule valid, every name its own: the whole file is checked.
generate() {
    python3 - "$1" "$2" <<'PY'
import sys
count, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(count):
        f.write(
            "[[rule]]\n"
            f'name = "team-{i:05}"\n'
            f"service_account = {'true' if i % 4 else 'false'}\n"
            f'reason = "Automation of team {i}: {{username}}"\n'
            "[rule.match]\n"
            f'username = "^svc-team{i}-"\n'
            "marked = false\n\n"
        )
PY
}

# $1: rules. Prints one table row.
measure() {
    local count="$1" file="$WORK/rules-$1.toml" best="" code
    generate "$count" "$file"
    for run in 1 2 3; do
        code=0
        /usr/bin/time -v -o "$WORK/$run.time" "$BIN" validate --rules "$file" -q \
            >"$WORK/$run.out" 2>"$WORK/$run.err" || code=$?
        python3 - "$WORK/$run.time" >"$WORK/$run.figures" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
print(f"{seconds:.3f} {rss / 1024:.1f}")
PY
        read -r seconds rss <"$WORK/$run.figures"
        if [ -z "$best" ] || python3 -c "import sys; sys.exit(not $seconds < ${best%% *})"; then
            best="$seconds $rss $code"
        fi
    done
    read -r seconds rss code <<<"$best"
    local size verdict
    size=$(python3 -c "import os, sys; print(f'{os.path.getsize(sys.argv[1]) / 1e6:.1f} MB')" "$file")
    case "$code" in
        0) verdict="checked, valid" ;;
        2) verdict="refused: $(grep -o 'larger than [0-9]* MiB' "$WORK/1.err" | head -1)" ;;
        *) verdict="exit $code" ;;
    esac
    printf '| %s | %s | %s s | %s MB | %s |\n' "$(printf "%'d" "$count")" "$size" "$seconds" "$rss" "$verdict"
}

echo "| rules | file | validate --rules (best of 3) | peak RSS | result |"
echo "|---|---|---|---|---|"
for count in $COUNTS; do
    measure "$count"
done
