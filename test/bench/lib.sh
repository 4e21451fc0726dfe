#!/bin/bash
# test/bench/lib.sh -- helpers shared by the bench parts (scan.sh, store.sh,
# dkim.sh).

# bench_part PART: the settings every part shares (ROOT, OUT, CC, RMILTER,
# CLK_TCK, PY, NOTES, STATUS, RM_PID, SD) and its note()/say() lines,
# prefixed "bench-PART:".
bench_part() {
	BENCH_PART=$1
	ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	OUT=$ROOT/build/bench
	CC=${CC:-cc}
	RMILTER=${RMILTER:-$ROOT/src/rmilter}
	CLK_TCK=$(getconf CLK_TCK)
	PY=/usr/bin/python3
	NOTES=()
	STATUS=0
	RM_PID=
	SD=
	note() { NOTES+=("$*"); echo "bench-$BENCH_PART: note: $*" >&2; }
	say() { echo "bench-$BENCH_PART: $*" >&2; }
}

# stop_pid PID [SECS]: SIGTERM, wait up to SECS (default 10), then SIGKILL.
stop_pid() {
	local p=$1 n=$((${2:-10} * 20))
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	while [ $n -gt 0 ] && kill -0 "$p" 2>/dev/null; do
		sleep 0.05
		n=$((n - 1))
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

# bench_prepare PART TOOL...: the common start of a part that drives rmilter
# with mload.  Writes "bench-PART: skipped, missing: ..." to $OUT/PART.txt
# and exits 0 when a tool or $RMILTER is missing; notes a sanitizer build
# (its CPU figures mean nothing); builds $OUT/mload; raises the fd limit.
# Needs bench_part first.
bench_prepare() {
	local part=$1 t
	local -a missing=()
	shift
	mkdir -p "$OUT"
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ -x "$RMILTER" ] || missing+=("$RMILTER")
	if [ ${#missing[@]} -gt 0 ]; then
		echo "bench-$part: skipped, missing: ${missing[*]}" | tee "$OUT/$part.txt"
		exit 0
	fi
	if grep -aq -e __asan_init -e __ubsan_handle -e __tsan_init "$RMILTER" 2>/dev/null; then
		note "$RMILTER is a sanitizer build: its CPU figures are not representative; rebuild with plain 'make' or set RMILTER"
	fi
	$CC -O2 -Wall -Wextra -Werror -o "$OUT/mload" "$ROOT/test/bench/mload.c" ||
		{ echo "bench-$part: building mload failed" >&2; exit 1; }
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
}
