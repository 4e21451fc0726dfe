#!/usr/bin/env bash
# dkim.sh -- the DKIM part of `make bench` (BENCH_PARTS="dkim"): rmilter signing
# every message (dkim { } with an RSA 2048 key, sign_networks = 127.0.0.1, so
# mload's sender bench@test.example is always signed), driven by mload straight to
# the daemon (one message per connection, OPTNEG 0x1FFFFF like Postfix), at 2 KB
# and 100 KB messages; and, in the same session, the same runs against a daemon
# without a dkim section (the baseline).
#
# Each row: signatures/s (= msg/s), p50 latency, and rmilter's CPU per message
# (utime+stime from /proc/PID/stat before/after the run).  A signed row counts
# only if every message was accepted and got exactly one inserted header (mload's
# 'i' modification count = messages, i.e. a DKIM-Signature at index 0); the
# baseline must insert none.  Else INVALID and exit status 1.  An ed25519 row at
# 2 KB follows (sign_alg = ed25519), unless rmilter -t refuses it (libopendkim
# <= 2.11.0 leaks the key of every Ed25519 signature).
#
# Knobs: BENCH_DKIM_N2K=20000, BENCH_DKIM_N100K=4000 (messages per run),
# BENCH_DKIM_CONC=50, BENCH_DKIM_TIMEOUT=120 (s per run), BENCH_DKIM_PORT=23560,
# BENCH_DKIM_KEEP=1 keeps the temp dir, RMILTER, CC.
set -u

# bench_part, bench_prepare, stop_pid: test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_part dkim
N2K=${BENCH_DKIM_N2K:-20000}
N100K=${BENCH_DKIM_N100K:-4000}
CONC=${BENCH_DKIM_CONC:-50}
RUN_TIMEOUT=${BENCH_DKIM_TIMEOUT:-120}
PORT=${BENCH_DKIM_PORT:-23560}

bench_prepare dkim openssl "$PY"

SD=$(mktemp -d /tmp/rmilter-bench-dkim.XXXXXX)
cleanup() {
	stop_pid "$RM_PID" 5
	RM_PID=
	if [ -n "$SD" ] && [ "${BENCH_DKIM_KEEP:-0}" != 1 ]; then
		rm -rf "$SD"
	elif [ -n "$SD" ]; then
		echo "bench-dkim: kept $SD" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

openssl genrsa -out "$SD/rsa.key" 2048 2>/dev/null &&
	openssl genpkey -algorithm ed25519 -out "$SD/ed.key" 2>/dev/null ||
	{ echo "bench-dkim: openssl could not make the keys" >&2; exit 1; }
chmod 600 "$SD/rsa.key" "$SD/ed.key"
while ! "$PY" -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$PORT" 2>/dev/null; do
	PORT=$((PORT + 1))
done

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

# start_rmilter MODE: a fresh daemon; MODE rsa | ed25519 | none (no dkim section) |
# unsigned (dkim configured, but the client is not allowed to sign: the body is
# received and spooled, nothing is signed)
start_rmilter() {
	local dk=
	case $1 in
	unsigned) dk="dkim {
    domain { key = $SD/rsa.key; domain = \"test.example\"; selector = \"bench\"; }
}" ;;
	rsa) dk="dkim {
    sign_networks = 127.0.0.1;
    domain { key = $SD/rsa.key; domain = \"test.example\"; selector = \"bench\"; }
}" ;;
	ed25519) dk="dkim {
    sign_networks = 127.0.0.1; sign_alg = ed25519;
    domain { key = $SD/ed.key; domain = \"test.example\"; selector = \"bench\"; }
}" ;;
	esac
	cat >"$SD/rmilter.conf" <<-EOF
	bind_socket = "inet:$PORT@127.0.0.1";
	log_level = warning;
	max_connections = 20000;
	listen_backlog = 8192;
	$dk
	EOF
	"$RMILTER" -n -c "$SD/rmilter.conf" >"$SD/rmilter-$1.log" 2>&1 &
	RM_PID=$!
	"$PY" "$ROOT/test/e2e/tools/waitport.py" 127.0.0.1 "$PORT" 10 >/dev/null && return 0
	echo "bench-dkim: rmilter did not start:" >&2
	tail -5 "$SD/rmilter-$1.log" >&2
	stop_pid "$RM_PID"
	RM_PID=
	return 1
}

ROWS=()
declare -A CPU_US MPS

# run_row MODE SIZE-LABEL BODY-BYTES N -> one row; CPU_US/MPS[MODE-SIZE] for the ratios
run_row() {
	local mode=$1 label=$2 body=$3 n=$4 key=$1-$2 t0 t1 out msgs errs ins mps p50 us valid=ok
	start_rmilter "$mode" || { STATUS=1; ROWS+=("$(printf '%-9s %-6s  daemon did not start' "$mode" "$label")"); return; }
	t0=$(cpu_ticks "$RM_PID")
	out=$(timeout $((RUN_TIMEOUT + 30)) "$OUT/mload" -s "inet:$PORT@127.0.0.1" -c "$CONC" -n "$n" \
		-b "$body" -t "$RUN_TIMEOUT" -j -L "dkim-$key" 2>"$SD/mload-$key.err")
	t1=$(cpu_ticks "$RM_PID")
	stop_pid "$RM_PID" 5
	RM_PID=
	msgs=$(printf '%s' "$out" | jget messages)
	errs=$(printf '%s' "$out" | jget errors)
	mps=$(printf '%s' "$out" | jget msgs_per_s)
	p50=$(printf '%s' "$out" | jget p50_ms)
	ins=$(printf '%s' "$out" | sed -n 's/.*"mods":{[^}]*"i":\([0-9]*\).*/\1/p')
	ins=${ins:-0}
	if [ -z "$msgs" ] || [ "$msgs" != "$n" ] || [ "${errs:-1}" != 0 ]; then
		valid="INVALID: $msgs/$n messages, ${errs:-?} errors ($(head -c 200 "$SD/mload-$key.err" | tr '\n' ' '))"
	elif [ "$mode" = none ] && [ "$ins" != 0 ]; then
		valid="INVALID: $ins headers inserted without dkim"
	elif [ "$mode" = unsigned ] && [ "$ins" != 0 ]; then
		valid="INVALID: $ins headers inserted for a client not allowed to sign"
	elif [ "$mode" != none ] && [ "$mode" != unsigned ] && [ "$ins" != "$n" ]; then
		valid="INVALID: $ins of $n messages signed"
	fi
	[ "$valid" = ok ] || STATUS=1
	us=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v m="${msgs:-0}" \
		'BEGIN { if (m > 0) printf "%.1f", (b - a) / hz / m * 1e6; else print "-" }')
	CPU_US[$key]=$us
	MPS[$key]=${mps:-0}
	ROWS+=("$(printf '%-9s %-6s %7s %9s %9s %11s %9s  %s' "$mode" "$label" "$n" "${mps:-?}" "${p50:-?}" "$us" "$ins" "$valid")")
	say "${ROWS[-1]}"
}

say "rmilter $("$RMILTER" -v 2>&1 | head -1), mload c=$CONC, port $PORT, RSA 2048 / Ed25519 keys"
# 2 KB and 100 KB messages: mload's headers are ~230 bytes
for spec in "2KB 1800 $N2K" "100KB 102000 $N100K"; do
	read -r label body n <<<"$spec"
	run_row none "$label" "$body" "$n"
	run_row unsigned "$label" "$body" "$n"
	run_row rsa "$label" "$body" "$n"
done
# libopendkim <= 2.11.0 leaks every Ed25519 key: rmilter refuses sign_alg = ed25519
start_rmilter_check() {
	cat >"$SD/ed-check.conf" <<-EOF
	dkim { sign_alg = ed25519; domain { key = $SD/ed.key; domain = "test.example"; selector = "bench"; } }
	EOF
	"$RMILTER" -t -c "$SD/ed-check.conf" 2>&1
}
if ed_out=$(start_rmilter_check); then
	run_row ed25519 2KB 1800 "$N2K"
else
	ROWS+=("$(printf '%-9s %-6s  refused by rmilter -t: %s' ed25519 2KB "$(printf '%s' "$ed_out" | grep -o 'libopendkim.*' | head -1 | cut -c1-90)")")
fi

{
	echo "DKIM signing (rmilter + libopendkim $(dpkg-query -W -f '${Version}' libopendkim11 2>/dev/null || echo '?'), $(nproc) CPUs, mload c=$CONC, one message per connection)"
	printf '%-9s %-6s %7s %9s %9s %11s %9s  %s\n' mode size msgs "sigs/s" "p50 ms" "cpu us/msg" inserted valid
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "signing cost against the baseline without dkim (same session):"
	for l in 2KB 100KB; do
		awk -v l="$l" -v cs="${CPU_US[rsa-$l]:-0}" -v cb="${CPU_US[none-$l]:-0}" \
			-v ms="${MPS[rsa-$l]:-0}" -v mb="${MPS[none-$l]:-0}" 'BEGIN {
			printf "  %-6s rsa-sha256: +%.1f us CPU per message (x%.1f), msg/s x%.3f of the baseline\n",
			    l, cs - cb, (cb > 0 ? cs / cb : 0), (mb > 0 ? ms / mb : 0) }'
	done
	[ -n "${CPU_US[ed25519-2KB]:-}" ] && awk -v cs="${CPU_US[ed25519-2KB]}" -v cb="${CPU_US[none-2KB]:-0}" 'BEGIN {
		printf "  2KB    ed25519-sha256: +%.1f us CPU per message\n", cs - cb }'
	echo "  (libopendkim decodes the PEM key for every signature; with OpenSSL 3 that costs about as much as an RSA-2048 signature)"
	for n in "${NOTES[@]}"; do echo "note: $n"; done
} | tee "$OUT/dkim.txt"
exit $STATUS
