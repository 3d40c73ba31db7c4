#!/usr/bin/env bash
# Mutation testing of the pure decision logic: every mutant cargo-mutants makes of these
# functions must make a unit test fail (`cargo test --lib`), or be listed as equivalent,
# with its reason, in .cargo/mutants.toml, which also makes every build and test run
# `--lib` (the unit tests only: `cargo mutants -- --lib` would build the integration tests
# for every mutant and not run them). One file at a time, one job, so that it shares a
# small machine; results in target/mutants/<file>/mutants.out. Extra arguments go to every
# `cargo mutants` (e.g. `--in-diff changes.diff`, `--list`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
# cargo-mutants builds a copy of the tree. One target directory of its own, kept between
# runs: the dependencies build once, and a build of the working tree never replaces the
# test binary of a mutant (both copies of the crate share the artifact's name).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/mutants-build}"
# Every mutant is one build and link of the test binary: without debug information, and
# with mold when it is installed, a mutant takes 5 to 15 s here instead of about 40.
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0
if command -v mold >/dev/null; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
fi

# Whole files: the engine's decisions, the exit codes, the input's sniffing and decoding.
files=(
  src/engine/throttle.rs
  src/engine/retry.rs
  src/engine/budget.rs
  src/engine/concurrency.rs
  src/engine/control.rs
  src/exit.rs
  src/input/sniff.rs
  src/input/encoding.rs
  src/input/rules.rs
  src/commands/run/review.rs
  src/field/mod.rs
  src/field/service_account.rs
  src/field/link.rs
  src/field/access.rs
)
# Parts of larger files: the listing's paging decision and the lookups through what was
# read (not the loops that drive pages through the engine: they are I/O, covered end to
# end by tests/cli: answers.rs, reconcile.rs, review.rs, hostile.rs, liars.rs); the id,
# flag and cell parsing, a column's letters and the header search.
parts=(
  "src/engine/listing.rs|ListingReader::|ListingWarning|Listing::|Lookup for|fits"
  "src/input/rows.rs|normalize_header|looks_like_an_id|is_header|find_header|parse_id|decimal_integer|parse_flag|mark_hint"
  "src/input/sheet.rs|Cell::|is_integral|cell_name"
  "src/input/bounds.rs|column_letters"
)

failed=()
run() {
  local file=$1
  shift
  local out
  out="target/mutants/$(basename "$file" .rs)"
  mkdir -p "$out"
  cargo mutants --jobs 1 --file "$file" --output "$out" "$@" ||
    failed+=("$file")
}
for file in "${files[@]}"; do
  run "$file" "${@}"
done
for part in "${parts[@]}"; do
  run "${part%%|*}" --re "${part#*|}" "${@}"
done
if ((${#failed[@]})); then
  echo "missed or timed-out mutants (or a failed baseline) in: ${failed[*]} (see target/mutants/)" >&2
  exit 1
fi
