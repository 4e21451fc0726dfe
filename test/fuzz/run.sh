#!/bin/bash
# test/fuzz/run.sh [SECONDS] -- run every libFuzzer target build/fuzz/fuzz_NAME for
# SECONDS (default 60) over its seed corpus test/fuzz/corpus/NAME/ (read-only: new
# inputs go to a scratch directory; crash reproducers to build/fuzz/artifacts/).
# Build the targets first ("make fuzz-build"; "make fuzz" does both).
# Prints "ok fuzz_NAME ..." / "FAIL fuzz_NAME: ..." per target and a last line
# "N passed, N failed".  No target at all: a failure under CI=true, else a skip (77).

set -u
cd "$(dirname "$0")/../.." || exit 1

SECS=${1:-60}
ART=build/fuzz/artifacts
mkdir -p "$ART"
passed=0
failed=0
n=0
for bin in build/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	n=$((n + 1))
	tname=$(basename "$bin")
	name=${tname#fuzz_}
	corpus=test/fuzz/corpus/$name
	work=$(mktemp -d)
	log=build/fuzz/$tname.log
	dirs=("$work")
	if [ -d "$corpus" ]; then
		dirs+=("$corpus")
	else
		echo "   # $tname: no seed corpus at $corpus/"
	fi
	# -timeout: one input taking > 10 s is a hang; -rss_limit_mb guards runaway growth
	timeout $((SECS + 120)) "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$ART/$tname-" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok $tname: ${SECS}s, ${execs:-?} execs, ${cov:-cov: ?}, seeds: $(find "$corpus" -type f 2>/dev/null | wc -l)"
	else
		failed=$((failed + 1))
		echo "FAIL $tname: exit code $rc after ${execs:-?} execs (log $log; reproducers in $ART/)"
		grep -E -A25 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==[0-9]+== ?ERROR|deadly signal|Test unit written' \
			"$log" | head -60 | sed 's/^/   | /'
	fi
	rm -rf "$work"
done
# every test/fuzz/fuzz_*.c must have produced a target
for src in test/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	if [ ! -x "build/fuzz/$(basename "$src" .c)" ]; then
		echo "FAIL $(basename "$src" .c): not built (build/fuzz/$(basename "$src" .c) missing)"
		failed=$((failed + 1))
	fi
done
if [ $n -eq 0 ] && [ $failed -eq 0 ]; then
	if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
		echo "FAIL fuzz: no fuzz target in build/fuzz/ (run make fuzz-build; test/fuzz/fuzz_*.c)"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "skip fuzz: no fuzz target in build/fuzz/"
	echo "0 passed, 0 failed"
	exit 77
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
