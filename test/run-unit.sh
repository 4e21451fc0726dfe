#!/bin/bash
# test/run-unit.sh BUILD-DIR [--valgrind] -- run every unit-test binary BUILD-DIR/test/test_*
# (built by "make unit-build", or "make SANITIZER=... unit-build" for build/san-*).
# Each binary prints "ok   NAME" / "FAIL NAME" per case and "N passed, N failed" as its
# last line; those counts are summed.  A binary that exits non-zero although its summary
# says 0 failed (sanitizer report, valgrind error, crash) or that prints no summary at all
# counts as one more failure.  Last line: "N passed, N failed" (totals).
# --valgrind: run each binary under valgrind with a definite/indirect leak check.

set -u
cd "$(dirname "$0")/.." || exit 1

B=${1:?usage: test/run-unit.sh BUILD-DIR [--valgrind]}
MODE=${2:-}
VG=()
if [ "$MODE" = --valgrind ]; then
	VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect
		--show-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no)
fi

passed=0
failed=0
nbin=0
for t in "$B"/test/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	nbin=$((nbin + 1))
	name=$(basename "$t")
	out=$(mktemp)
	timeout 600 "${VG[@]}" "$t" >"$out" 2>&1
	rc=$?
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
	if [ -n "$summary" ]; then
		p=${summary%% passed*}
		f=${summary#*passed, }
		f=${f%% failed*}
	else
		p=0
		f=0
	fi
	extra=
	if [ -z "$summary" ]; then
		extra="no summary line (crashed?), exit code $rc"
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		case $rc in
		99) extra="valgrind reported errors (exit code 99)" ;;
		124) extra="timed out" ;;
		*) extra="exit code $rc with 0 failed cases (sanitizer report or crash)" ;;
		esac
	fi
	[ -n "$extra" ] && f=$((f + 1))
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name: $p passed, $f failed${extra:+ -- $extra}"
		grep -vE '^ok ' "$out" | head -80 | sed 's/^/   | /'
	else
		echo "ok   $name: $p passed"
	fi
	rm -f "$out"
done
# every test/unit/test_*.c must have produced a binary
for src in test/unit/test_*.c; do
	[ -f "$src" ] || continue
	bin="$B/test/$(basename "$src" .c)"
	if [ ! -x "$bin" ]; then
		echo "FAIL $(basename "$bin"): not built ($bin missing)"
		failed=$((failed + 1))
	fi
done
[ $nbin -eq 0 ] && echo "no unit-test binaries in $B/test/"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
