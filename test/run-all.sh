#!/bin/bash
# test/run-all.sh -- every test of rmilter, in order (called by "make check"):
#   a) unit tests, plain build                   (build/default/test/test_*)
#   b) unit tests under ASan+UBSan               (build/san-address_undefined/test/test_*)
#   c) unit tests under valgrind (definite/indirect leaks are errors)
#   d) e2e suite (real Postfix + smtp-sink + miltertest), plain daemon
#   e) e2e suite, daemon built with ASan+UBSan (any report fatal; its stderr must be clean)
#   f) e2e suite, daemon under valgrind (leak check at its SIGTERM exit)
#   g) short fuzzing: every build/fuzz/fuzz_* for FUZZ_SECONDS (default 30)
# Counting: unit binaries print "N passed, N failed" (summed; a binary that fails
# without a failed case, e.g. a sanitizer report, adds 1); e2e cases print
# "ok NAME"/"FAIL NAME"; each fuzz target is one test; a build that fails is one
# failed test.  The LAST line is "N passed, N failed" (totals); the exit status is
# non-zero if anything failed or if no test ran at all.
# Under CI=true a missing tool (valgrind, clang, postfix, swaks, miltertest) is a
# failure; otherwise that step is reported as skipped.
# Environment: FUZZ_SECONDS, STEPS (e.g. STEPS="a d" runs only those steps),
# E2E_PORT_BASE (see test/e2e/lib.sh).

set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
unset MAKEFLAGS MFLAGS MAKELEVEL
JOBS=$(nproc 2>/dev/null || echo 2)
MAKE=(make -j"$JOBS")
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
STEPS=${STEPS:-a b c d e f g}
LOGDIR=$ROOT/build/test-logs
mkdir -p "$LOGDIR"

TOTAL_P=0
TOTAL_F=0
SUMMARY=()

is_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }
want_step() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
banner() { echo; echo "=================== $* ==================="; }

# count STEP-NAME RC LOGFILE -> adds the last "N passed, N failed" of LOGFILE
count() {
	local name=$1 rc=$2 log=$3 line p=0 f=0
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*passed, }
		f=${f%% failed*}
	fi
	if [ "$rc" -eq 77 ]; then
		SUMMARY+=("$(printf '%-34s skipped (%s)' "$name" "$(grep -m1 '^skip' "$log")")")
		return
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "FAIL $name: exit code $rc without a counted failure"
	fi
	TOTAL_P=$((TOTAL_P + p))
	TOTAL_F=$((TOTAL_F + f))
	SUMMARY+=("$(printf '%-34s %4d passed, %d failed' "$name" "$p" "$f")")
}

# build STEP-NAME MAKE-ARGS... -> runs make; a failure counts as one failed test
build() {
	local name=$1 log
	shift
	log="$LOGDIR/build-${name// /_}.log"
	echo "+ make $*"
	if "${MAKE[@]}" "$@" >"$log" 2>&1; then
		return 0
	fi
	echo "FAIL build ($name): make $* failed; tail of $log:"
	tail -30 "$log" | sed 's/^/   | /'
	TOTAL_F=$((TOTAL_F + 1))
	SUMMARY+=("$(printf '%-34s build FAILED (make %s)' "$name" "$*")")
	return 1
}

# tool_missing STEP-NAME TOOL... -> true (and recorded) if a tool is absent
tool_missing() {
	local name=$1 t miss=()
	shift
	for t in "$@"; do command -v "$t" >/dev/null 2>&1 || miss+=("$t"); done
	[ ${#miss[@]} -eq 0 ] && return 1
	if is_ci; then
		echo "FAIL $name: missing ${miss[*]} (CI=true: a missing tool is a failure)"
		TOTAL_F=$((TOTAL_F + 1))
		SUMMARY+=("$(printf '%-34s FAILED: missing %s' "$name" "${miss[*]}")")
	else
		echo "skip $name: missing ${miss[*]}"
		SUMMARY+=("$(printf '%-34s skipped (missing %s)' "$name" "${miss[*]}")")
	fi
	return 0
}

# run STEP-NAME LOGFILE COMMAND... -> runs, shows and counts
run() {
	local name=$1 log=$2 rc
	shift 2
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	count "$name" "$rc" "$log"
}

SAN_ENV=(ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
VALGRIND_DAEMON="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --error-exitcode=1 --num-callers=30"

restore_plain() {
	# the sanitizer build replaced src/rmilter: put the plain daemon back
	"${MAKE[@]}" >"$LOGDIR/build-restore.log" 2>&1 ||
		echo "warning: could not rebuild the plain daemon (see $LOGDIR/build-restore.log)"
}
trap 'restore_plain' EXIT

T0=$(date +%s)

# ---- a) unit tests, plain ---------------------------------------------------
if want_step a; then
	banner "a) unit tests (plain)"
	if build "unit (plain)" unit-build; then
		run "unit (plain)" "$LOGDIR/unit-plain.log" bash test/run-unit.sh build/default
	fi
fi

# ---- b) unit tests, ASan+UBSan -----------------------------------------------
if want_step b; then
	banner "b) unit tests (ASan+UBSan)"
	if build "unit (asan+ubsan)" SANITIZER=address,undefined unit-build; then
		run "unit (asan+ubsan)" "$LOGDIR/unit-san.log" \
			env "${SAN_ENV[@]}" bash test/run-unit.sh build/san-address_undefined
	fi
fi

# ---- c) unit tests, valgrind -------------------------------------------------
if want_step c; then
	banner "c) unit tests (valgrind)"
	if ! tool_missing "unit (valgrind)" valgrind; then
		if build "unit (valgrind)" unit-build; then
			run "unit (valgrind)" "$LOGDIR/unit-valgrind.log" \
				bash test/run-unit.sh build/default --valgrind
		fi
	fi
fi

# ---- d) e2e, plain daemon ------------------------------------------------------
if want_step d; then
	banner "d) e2e (plain daemon)"
	if build "e2e (plain)" all; then
		run "e2e (plain)" "$LOGDIR/e2e-plain.log" bash test/e2e/run.sh
	fi
fi

# ---- e) e2e, ASan+UBSan daemon -------------------------------------------------
if want_step e; then
	banner "e) e2e (ASan+UBSan daemon)"
	if build "e2e (asan+ubsan)" SANITIZER=address,undefined all; then
		run "e2e (asan+ubsan)" "$LOGDIR/e2e-san.log" env "${SAN_ENV[@]}" bash test/e2e/run.sh
	fi
	restore_plain
fi

# ---- f) e2e, daemon under valgrind ----------------------------------------------
if want_step f; then
	banner "f) e2e (daemon under valgrind)"
	if ! tool_missing "e2e (valgrind)" valgrind; then
		if build "e2e (valgrind)" all; then
			run "e2e (valgrind)" "$LOGDIR/e2e-valgrind.log" \
				env RMILTER_WRAPPER="$VALGRIND_DAEMON" bash test/e2e/run.sh
		fi
	fi
fi

# ---- g) fuzzing ----------------------------------------------------------------------
if want_step g; then
	banner "g) fuzz (${FUZZ_SECONDS}s per target)"
	if ! tool_missing "fuzz" clang; then
		if build "fuzz" fuzz-build; then
			run "fuzz" "$LOGDIR/fuzz.log" bash test/fuzz/run.sh "$FUZZ_SECONDS"
		fi
	fi
fi

restore_plain
trap - EXIT
banner "summary ($(( $(date +%s) - T0 ))s; logs in build/test-logs/)"
for s in "${SUMMARY[@]}"; do echo "  $s"; done
if [ $((TOTAL_P + TOTAL_F)) -eq 0 ]; then
	echo "FAIL: no test ran at all"
	TOTAL_F=1
fi
echo "$TOTAL_P passed, $TOTAL_F failed"
[ "$TOTAL_F" -eq 0 ]
