#!/usr/bin/env bash
# run.sh -- `make bench`: rmilter against the libmilter floor.
#
# Builds test/bench/mload.c (load generator) and test/bench/lm_accept.c
# (accept-everything libmilter milter) into build/bench/, then for each
# concurrency level starts a fresh daemon (so VmHWM is per level), runs
# mload against it and reads the daemon's CPU time and peak RSS from /proc.
#
# Rows:
#   main   2 KB message, 1 rcpt, one connection per message, every stage
#          replied: rmilter is offered 0x37F (v6 NO* bits, no NR_* bit;
#          0x3FF would include 0x80 = NR_HDR), so it must reply to every
#          event it takes; libmilter is offered 0x1FFFFF (it negotiates no
#          NR_* bits on its own).
#   (a)    rmilter offered 0x1FFFFF (negotiates NR_* itself) at c=100, 1000.
#   (c)    unix sockets at c=100, 1000: rmilter all replied / NR / engine
#          alone, beside libmilter.
#   (b)    Nagle: c=1 over TCP, every message gets a header added (-A),
#          p50 latency of both.
#
# Parts: BENCH_PARTS="engine scan store dkim" (default all four).  "engine" is
# everything above; "scan" is test/bench/scan.sh (rmilter + a real rspamd vs
# rspamd's own HTTP rate and rspamd's own milter; skipped when rspamd is
# missing); "store" is test/bench/store.sh (greylisting + limits against a
# real redis-server and the in-memory store; skipped without redis-server);
# "dkim" is test/bench/dkim.sh (DKIM signing at 2 KB and 100 KB: signatures/s
# and CPU per message beside a baseline without dkim).
#
# Knobs (environment): BENCH_LEVELS="1 10 100 1000 5000", BENCH_NMIN=4000,
# BENCH_NMAX=40000, BENCH_RUN_TIMEOUT=60 (s, per run), BENCH_NAGLE_N=300,
# BENCH_TARGETS="rmilter libmilter", RMILTER=src/rmilter, CC=cc.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build/bench
CC=${CC:-cc}
RMILTER=${RMILTER:-$ROOT/src/rmilter}
LEVELS=${BENCH_LEVELS:-"1 10 100 1000 5000"}
NMIN=${BENCH_NMIN:-4000}
NMAX=${BENCH_NMAX:-40000}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-60}
NAGLE_N=${BENCH_NAGLE_N:-300}
TARGETS=${BENCH_TARGETS:-"rmilter libmilter"}
RM_PORT=23461
LM_PORT=23462
CLK_TCK=$(getconf CLK_TCK)
PARTS=${BENCH_PARTS:-"engine scan store dkim"}
case " $PARTS " in
*" engine "*) ;;
*)
	# no engine rows: just the other parts
	ran=0 st=0
	if [[ " $PARTS " == *" scan "* ]]; then bash "$ROOT/test/bench/scan.sh" || st=1; ran=1; fi
	if [[ " $PARTS " == *" store "* ]]; then bash "$ROOT/test/bench/store.sh" || st=1; ran=1; fi
	if [[ " $PARTS " == *" dkim "* ]]; then bash "$ROOT/test/bench/dkim.sh" || st=1; ran=1; fi
	[ $ran = 1 ] || { echo "bench: BENCH_PARTS='$PARTS': nothing to run (parts: engine scan store dkim)" >&2; exit 2; }
	exit $st
	;;
esac

TMP=$(mktemp -d /tmp/rmilter-bench.XXXXXX)
DAEMON_PID=
DAEMON_NAME=
NOTES=()
STATUS=0

cleanup() {
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }
note() { NOTES+=("$*"); echo "bench: note: $*" >&2; }

# ---- build ------------------------------------------------------------------
mkdir -p "$OUT"
$CC -O2 -Wall -Wextra -Werror -o "$OUT/mload" "$ROOT/test/bench/mload.c" ||
	die "building mload failed"
$CC -O2 -Wall -Wextra -Werror -o "$OUT/lm_accept" \
	"$ROOT/test/bench/lm_accept.c" -lmilter -lpthread ||
	die "building lm_accept failed (libmilter-dev installed?)"

# ---- limits -----------------------------------------------------------------
ulimit -n 65536 2>/dev/null || {
	hard=$(ulimit -Hn)
	ulimit -n "$hard" 2>/dev/null
	note "ulimit -n 65536 refused; using the hard limit $(ulimit -n)"
}
somax=$(cat /proc/sys/net/core/somaxconn)
if [ "$somax" -lt 8192 ]; then
	if (echo 8192 >/proc/sys/net/core/somaxconn) 2>/dev/null; then
		note "net.core.somaxconn raised $somax -> 8192"
	else
		note "net.core.somaxconn=$somax is read-only here: listen backlog is capped at $somax"
	fi
fi
synb=$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)
if [ "$synb" -lt 8192 ]; then
	(echo 8192 >/proc/sys/net/ipv4/tcp_max_syn_backlog) 2>/dev/null &&
		note "net.ipv4.tcp_max_syn_backlog raised $synb -> 8192" ||
		note "net.ipv4.tcp_max_syn_backlog=$synb (read-only)"
fi

# ---- helpers ----------------------------------------------------------------
# port_listening PORT: is 127.0.0.1:PORT in LISTEN state?
port_listening() {
	grep -q "0100007F:$(printf '%04X' "$1") 00000000:0000 0A" /proc/net/tcp
}

# cpu_ticks PID: utime+stime of the whole process (all threads, incl. exited).
cpu_ticks() {
	# field 2 (comm) may contain spaces: cut after the last ')'
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

# sys_busy_ticks: user+nice+system jiffies of the whole machine (irq and
# softirq left out: loopback TCP work lands there and belongs to the run).
sys_busy_ticks() {
	awk '/^cpu / { print $2 + $3 + $4; exit }' /proc/stat
}

vmhwm_kb() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# jget KEY < json: the scalar value of "KEY" in mload's JSON line.
jget() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

# start_daemon TARGET: start it, set DAEMON_PID, wait until it listens.
# BENCH_SOCK=unix uses unix sockets in $TMP instead of TCP; RM_POLICY=no runs
# rmilter with nothing configured (the engine alone).
start_daemon() {
	local port i
	[ "$1" = rmilter ] && port=$RM_PORT || port=$LM_PORT
	port_listening $port && die "port $port already in use"
	rm -f "$TMP/$1.sock"
	case $1 in
	rmilter)
		cat >"$TMP/rmilter.conf" <<-EOF
		bind_socket = "$(sock_spec rmilter)";
		test_policy = ${RM_POLICY:-yes};
		log_level = warning;
		max_connections = 20000;
		listen_backlog = 8192;
		${RM_EXTRA:-}
		EOF
		"$RMILTER" -n -c "$TMP/rmilter.conf" >"$TMP/rmilter.log" 2>&1 &
		;;
	libmilter)
		"$OUT/lm_accept" "$(sock_spec libmilter)" >"$TMP/lm.log" 2>&1 &
		;;
	esac
	DAEMON_PID=$!
	DAEMON_NAME=$1
	for i in $(seq 100); do
		if [ "${BENCH_SOCK:-inet}" = unix ]; then
			[ -S "$TMP/$1.sock" ] && return 0
		else
			port_listening $port && return 0
		fi
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: $1 did not start listening on $port; log:" >&2
	tail -20 "$TMP"/*.log >&2
	stop_daemon
	return 1
}

stop_daemon() {
	local i tries=20
	[ -n "$DAEMON_PID" ] || return 0
	# rmilter shuts down gracefully; libmilter checks for termination only
	# every 5 s (MI_CHK_TIME), don't wait for it.
	[ "$DAEMON_NAME" = rmilter ] && tries=100
	kill -TERM "$DAEMON_PID" 2>/dev/null
	for i in $(seq $tries); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		[ "$DAEMON_NAME" = rmilter ] &&
			note "rmilter did not exit within 5 s of SIGTERM; killed"
		kill -KILL "$DAEMON_PID" 2>/dev/null
	fi
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# sock_spec TARGET: where the daemon listens (libmilter/rmilter syntax; mload
# takes the same).
sock_spec() {
	local port
	[ "$1" = rmilter ] && port=$RM_PORT || port=$LM_PORT
	if [ "${BENCH_SOCK:-inet}" = unix ]; then
		echo "unix:$TMP/$1.sock"
	else
		echo "inet:$port@127.0.0.1"
	fi
}

# measure TARGET KEY MLOAD-ARGS...: one mload run against the running daemon;
# stores "json|cpu_s|alive" in RES_<KEY>.
measure() {
	local target=$1 key=$2 port t0 t1 s0 s1 json cpu alive=yes nc neg other
	shift 2
	[ "$target" = rmilter ] && port=$RM_PORT || port=$LM_PORT
	s0=$(sys_busy_ticks)
	t0=$(cpu_ticks "$DAEMON_PID")
	json=$("$OUT/mload" -s "$(sock_spec "$target")" -t "$RUN_TIMEOUT" -j \
		-L "$target/$key" "$@" 2>"$TMP/mload.err")
	t1=$(cpu_ticks "$DAEMON_PID")
	s1=$(sys_busy_ticks)
	if ! kill -0 "$DAEMON_PID" 2>/dev/null || [ -z "$t1" ]; then
		alive=no
		STATUS=1
		t1=$t0
		note "$target died during $key; its log:"
		tail -5 "$TMP"/*.log >&2
	fi
	if [ -s "$TMP/mload.err" ]; then
		echo "bench: mload stderr for $target $key:" >&2
		head -24 "$TMP/mload.err" >&2
	fi
	echo "$json" >>"$OUT/results.jsonl"
	[ "$(echo "$json" | jget errors)" = 0 ] || STATUS=1
	nc=$(echo "$json" | jget no_close_after_quit)
	[ "${nc:-0}" != 0 ] &&
		note "$target $key: $nc connections not closed by the milter within 1 s of QUIT"
	neg=$(echo "$json" | sed -n 's/.*"protocol":"\(0x[0-9a-f]*\)".*/\1/p')
	case $key in rm_*|lm_[0-9]*)
		[ -n "$neg" ] && [ $((neg & 0xFF080)) != 0 ] &&
			note "$target $key negotiated protocol $neg: NR_* bits in an every-stage-replied row"
	esac
	cpu=$(awk -v a="$t0" -v b="$t1" -v h="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / h }')
	# CPU used by anything but the daemon and mload during the run, in
	# CPUs: on a shared 2-CPU box this is what makes msgs/s unreliable.
	other=$(awk -v a="$s0" -v b="$s1" -v h="$CLK_TCK" -v d="$cpu" \
	    -v m="$(echo "$json" | jget mload_cpu_s)" \
	    -v e="$(echo "$json" | jget elapsed_s)" 'BEGIN {
		if (e + 0 < 1) { print 0; exit }
		x = ((b - a) / h - d - m) / e; printf "%.2f", x < 0 ? 0 : x }')
	awk -v x="$other" 'BEGIN { exit !(x > 0.3) }' &&
		note "$target $key: other processes kept $other CPUs busy during the run (msgs/s and latency unreliable; CPU/msg still valid)"
	printf -v "RES_$key" '%s|%s|%s' "$json" "$cpu" "$alive"
}

# fmt KEY: "msgs/s p50 p99 cpu-s/1000 us/msg errors" from RES_KEY.
fmt_row() {
	local v="RES_$1" json cpu msgs
	[ -n "${!v:-}" ] || { echo "- - - - - -"; return; }
	json=${!v%%|*}
	cpu=${!v#*|}; cpu=${cpu%%|*}
	msgs=$(echo "$json" | jget messages)
	[ -n "$msgs" ] || { echo "fail - - - - -"; return; }
	awk -v m="$msgs" -v mps="$(echo "$json" | jget msgs_per_s)" \
	    -v p50="$(echo "$json" | jget p50_ms)" \
	    -v p99="$(echo "$json" | jget p99_ms)" \
	    -v e="$(echo "$json" | jget errors)" -v cpu="$cpu" 'BEGIN {
		if (m > 0) printf "%.0f %.2f %.2f %.2f %.0f %d\n", mps, p50, p99,
		    cpu / m * 1000, cpu / m * 1e6, e;
		else printf "0 - - - - %d\n", e }'
}

# ---- runs -------------------------------------------------------------------
: >"$OUT/results.jsonl"
have_rmilter=yes
if [[ " $TARGETS " == *" rmilter "* ]] && [ ! -x "$RMILTER" ]; then
	note "$RMILTER not built: rmilter columns left empty"
	have_rmilter=no
fi
if [ $have_rmilter = yes ] &&
    grep -aq -e __asan_init -e __ubsan_handle -e __tsan_init "$RMILTER" 2>/dev/null; then
	note "$RMILTER is a sanitizer build: rmilter figures are not representative; rebuild with plain 'make' or set RMILTER"
fi

for c in $LEVELS; do
	n=$((4 * c)); [ $n -lt "$NMIN" ] && n=$NMIN; [ $n -gt "$NMAX" ] && n=$NMAX
	N[$c]=$n
	for target in $TARGETS; do
		[ "$target" = rmilter ] && [ $have_rmilter = no ] && continue
		start_daemon "$target" || {
			note "$target failed to start (c=$c)"
			STATUS=1
			continue
		}
		echo "bench: $target c=$c n=$n" >&2
		if [ "$target" = rmilter ]; then
			measure rmilter "rm_$c" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x37F
			if [ "$c" = 100 ] || [ "$c" = 1000 ]; then
				echo "bench: rmilter c=$c n=$n, NR flags offered" >&2
				measure rmilter "rmnr_$c" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x1FFFFF
			fi
		else
			measure libmilter "lm_$c" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x1FFFFF
		fi
		printf -v "RSS_${target}_$c" '%s' "$(vmhwm_kb "$DAEMON_PID")"
		stop_daemon
	done
done

# Nagle row: c=1, TCP, a header added to every message.
for target in $TARGETS; do
	[ "$target" = rmilter ] && [ $have_rmilter = no ] && continue
	start_daemon "$target" || continue
	echo "bench: $target nagle c=1 n=$NAGLE_N -A" >&2
	if [ "$target" = rmilter ]; then
		measure rmilter rm_nagle -c 1 -n "$NAGLE_N" -A -p 0x37F
	else
		measure libmilter lm_nagle -c 1 -n "$NAGLE_N" -A -p 0x1FFFFF
	fi
	stop_daemon
done

# Unix-socket rows (how Postfix usually reaches a local milter): the same
# 2 KB message at c=100 and 1000; rmilter every stage replied, with NR flags,
# and with NR flags and nothing configured (the engine alone); libmilter.
UNIX_LEVELS=${BENCH_UNIX_LEVELS:-"100 1000"}
for c in $UNIX_LEVELS; do
	n=$((4 * c)); [ $n -lt "$NMIN" ] && n=$NMIN; [ $n -gt "$NMAX" ] && n=$NMAX
	for target in $TARGETS; do
		[ "$target" = rmilter ] && [ $have_rmilter = no ] && continue
		BENCH_SOCK=unix
		if [ "$target" = rmilter ]; then
			start_daemon rmilter || continue
			echo "bench: rmilter unix c=$c n=$n" >&2
			measure rmilter "ux_rm_$c" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x37F
			measure rmilter "ux_rmnr_$c" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x1FFFFF
			stop_daemon
			RM_POLICY=no start_daemon rmilter || continue
			measure rmilter "ux_rmeng_$c" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x1FFFFF
			stop_daemon
		else
			start_daemon libmilter || continue
			echo "bench: libmilter unix c=$c n=$n" >&2
			measure libmilter "ux_lm_$c" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x1FFFFF
			stop_daemon
		fi
		BENCH_SOCK=inet
	done
done

# Rules rows: 20 regex rules (10 header, 10 body; none fires on the bench
# message, so every header and every body line is matched against them) at
# c=BENCH_RULES_C over a unix socket and TCP, NR offered like Postfix does,
# beside the engine alone (nothing configured) in the same transport.
# Target: the rules cost < 30 % of the engine-only throughput.
rules_conf() {
	local w i=0
	for w in viagra cialis casino lottery "wire transfer" bitcoin "act now" \
	    "free money" "dear friend" "100% free"; do
		i=$((i + 1))
		printf 'rule { name = "bench-h%d"; reject "550 5.7.1 header rule %d"; header /^(subject|x-spam-words)$/i /%s/i; }\n' "$i" "$i" "$w"
	done
	for w in "click here" "unsubscribe now" "nigerian prince" "limited time offer" \
	    "claim your prize" "verify your account" "password expired" \
	    "wire the money" "crypto giveaway" "miracle cure"; do
		i=$((i + 1))
		printf 'rule { name = "bench-b%d"; reject "550 5.7.1 body rule %d"; body /%s/i; }\n' "$i" "$i" "$w"
	done
}
RULES_C=${BENCH_RULES_C:-100}
RULES_N=$((4 * RULES_C)); [ $RULES_N -lt "$NMIN" ] && RULES_N=$NMIN
[ $RULES_N -gt "$NMAX" ] && RULES_N=$NMAX
if [[ " $TARGETS " == *" rmilter "* ]] && [ $have_rmilter = yes ]; then
	for BENCH_SOCK in unix inet; do
		RM_POLICY=no start_daemon rmilter || continue
		echo "bench: rmilter engine alone, $BENCH_SOCK c=$RULES_C n=$RULES_N" >&2
		measure rmilter "rl_eng_$BENCH_SOCK" -c "$RULES_C" -n "$RULES_N" -b 2048 -r 1 -m 1 -p 0x1FFFFF
		stop_daemon
		# content baseline: one rule dead at HELO that still makes the
		# MTA send every header and the body (no regex runs on them)
		RM_POLICY=no RM_EXTRA='rule { name = "content"; reject; helo /^never$/; header /^x$/ /y/; body /never/; }' \
			start_daemon rmilter || continue
		echo "bench: rmilter content baseline, $BENCH_SOCK c=$RULES_C n=$RULES_N" >&2
		measure rmilter "rl_content_$BENCH_SOCK" -c "$RULES_C" -n "$RULES_N" -b 2048 -r 1 -m 1 -p 0x1FFFFF
		stop_daemon
		RM_POLICY=no RM_EXTRA=$(rules_conf) start_daemon rmilter || continue
		echo "bench: rmilter 20 rules, $BENCH_SOCK c=$RULES_C n=$RULES_N" >&2
		measure rmilter "rl_rules_$BENCH_SOCK" -c "$RULES_C" -n "$RULES_N" -b 2048 -r 1 -m 1 -p 0x1FFFFF
		stop_daemon
	done
	BENCH_SOCK=inet
fi

# ---- report -----------------------------------------------------------------
{
echo
echo "rmilter vs libmilter floor: 2 KB message, 1 rcpt, 1 message per connection, every stage replied"
echo "($(nproc) CPUs, load generator on the same machine; CPU = daemon utime+stime from /proc)"
echo
printf '%-5s %6s | %7s %7s %8s %7s %6s %7s | %7s %7s %8s %7s %6s %7s | %6s\n' \
	c n "rm m/s" "p50 ms" "p99 ms" "cpu/1k" "us/msg" "RSS MB" \
	"lm m/s" "p50 ms" "p99 ms" "cpu/1k" "us/msg" "RSS MB" "rm/lm"
for c in $LEVELS; do
	read -r rm_mps rm_p50 rm_p99 rm_cpu rm_us rm_err <<<"$(fmt_row "rm_$c")"
	read -r lm_mps lm_p50 lm_p99 lm_cpu lm_us lm_err <<<"$(fmt_row "lm_$c")"
	v="RSS_rmilter_$c"; rm_rss=${!v:-}
	v="RSS_libmilter_$c"; lm_rss=${!v:-}
	ratio=$(awk -v a="$rm_mps" -v b="$lm_mps" 'BEGIN {
		if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-5s %6s | %7s %7s %8s %7s %6s %7s | %7s %7s %8s %7s %6s %7s | %6s\n' \
		"$c" "${N[$c]}" "$rm_mps" "$rm_p50" "$rm_p99" "$rm_cpu" "$rm_us" \
		"$(awk -v k="$rm_rss" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }')" \
		"$lm_mps" "$lm_p50" "$lm_p99" "$lm_cpu" "$lm_us" \
		"$(awk -v k="$lm_rss" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }')" \
		"$ratio"
	for e in "$rm_err" "$lm_err"; do
		[ "$e" != "-" ] && [ "${e:-0}" != 0 ] && echo "      ^ errors in this row: rmilter=$rm_err libmilter=$lm_err" && break
	done
done
first=${LEVELS%% *}
for t in rm lm; do
	v="RES_${t}_$first"
	neg=$(echo "${!v:-}" | sed -n 's/.*"protocol":"\(0x[0-9a-f]*\)".*/\1/p')
	[ -n "$neg" ] || continue
	bits=
	for b in 0x1:NOCONNECT 0x2:NOHELO 0x4:NOMAIL 0x8:NORCPT 0x10:NOBODY \
	    0x20:NOHDRS 0x40:NOEOH 0x80:NR_HDR 0x100:NOUNKNOWN 0x200:NODATA; do
		[ $((neg & ${b%%:*})) != 0 ] && bits="$bits ${b#*:}"
	done
	[ $t = rm ] && name=rmilter || name=libmilter
	echo "negotiated by $name in the main rows: $neg${bits:+ (}${bits# }${bits:+)}"
done
echo
echo "(a) rmilter with NR flags (offer 0x1FFFFF, rmilter negotiates NR_*), vs every stage replied (offer 0x37F)"
printf '%-5s | %-10s %7s %7s %6s | %7s %6s\n' c negotiated "NR m/s" "p50 ms" "us/msg" "all m/s" "us/msg"
for c in 100 1000; do
	v="RES_rmnr_$c"; [ -n "${!v:-}" ] || continue
	read -r nr_mps nr_p50 _ _ nr_us _ <<<"$(fmt_row "rmnr_$c")"
	read -r rm_mps _ _ _ rm_us _ <<<"$(fmt_row "rm_$c")"
	neg=$(echo "${!v%%|*}" | sed -n 's/.*"protocol":"\([^"]*\)".*/\1/p')
	printf '%-5s | %-10s %7s %7s %6s | %7s %6s\n' "$c" "$neg" "$nr_mps" "$nr_p50" "$nr_us" "$rm_mps" "$rm_us"
done
echo
echo "(b) TCP Nagle: c=1, every message gets X-Bench added at EOM (h + final reply), n=$NAGLE_N"
read -r _ rm_p50 rm_p99 _ _ _ <<<"$(fmt_row rm_nagle)"
read -r _ lm_p50 lm_p99 _ _ _ <<<"$(fmt_row lm_nagle)"
rm_h=$(echo "${RES_rm_nagle:-}" | sed -n 's/.*"mods":{"h":\([0-9]*\).*/\1/p')
lm_h=$(echo "${RES_lm_nagle:-}" | sed -n 's/.*"mods":{"h":\([0-9]*\).*/\1/p')
echo "    rmilter   p50 ${rm_p50} ms  p99 ${rm_p99} ms  (headers added: ${rm_h:-0})"
echo "    libmilter p50 ${lm_p50} ms  p99 ${lm_p99} ms  (headers added: ${lm_h:-0})"
echo
echo "(c) unix socket, 2 KB, 1 rcpt: msgs/s and daemon CPU us/msg"
echo "    rm all = every stage replied (offer 0x37F); rm NR = NR offered, test policy"
echo "    (replies at MAIL/RCPT/EOM); rm engine = NR offered, nothing configured"
printf '%-5s | %8s %6s | %8s %6s | %8s %6s | %8s %6s | %6s\n' c "rm all" us "rm NR" us \
	"rm eng" us "lm" us "rm/lm"
for c in $UNIX_LEVELS; do
	read -r a_mps _ _ _ a_us _ <<<"$(fmt_row "ux_rm_$c")"
	read -r b_mps _ _ _ b_us _ <<<"$(fmt_row "ux_rmnr_$c")"
	read -r e_mps _ _ _ e_us _ <<<"$(fmt_row "ux_rmeng_$c")"
	read -r l_mps _ _ _ l_us _ <<<"$(fmt_row "ux_lm_$c")"
	ratio=$(awk -v a="$a_mps" -v b="$l_mps" 'BEGIN {
		if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-5s | %8s %6s | %8s %6s | %8s %6s | %8s %6s | %6s\n' "$c" "$a_mps" "$a_us" \
		"$b_mps" "$b_us" "$e_mps" "$e_us" "$l_mps" "$l_us" "$ratio"
done
if [ -n "${RES_rl_rules_unix:-}${RES_rl_rules_inet:-}" ]; then
	echo
	echo "(d) 20 regex rules (10 header + 10 body, none fires), c=$RULES_C, 2 KB, NR offered:"
	echo "    engine = nothing configured (the MTA sends no header or body);"
	echo "    content = one dead rule: headers and body are sent, no regex runs on them;"
	echo "    cost = throughput lost to the rules vs engine / vs content (target < 30 %)"
	printf '%-6s | %8s %6s | %8s %6s | %8s %6s | %7s %7s\n' sock "eng m/s" us "content" us "rules" us "vs eng" "vs cont"
	for sk in unix inet; do
		read -r e_mps _ _ _ e_us _ <<<"$(fmt_row "rl_eng_$sk")"
		read -r c_mps _ _ _ c_us _ <<<"$(fmt_row "rl_content_$sk")"
		read -r r_mps _ _ _ r_us _ <<<"$(fmt_row "rl_rules_$sk")"
		cost=$(awk -v a="$r_mps" -v b="$e_mps" 'BEGIN {
			if (a + 0 > 0 && b + 0 > 0) printf "%.0f%%", (1 - a / b) * 100; else print "-" }')
		costc=$(awk -v a="$r_mps" -v b="$c_mps" 'BEGIN {
			if (a + 0 > 0 && b + 0 > 0) printf "%.0f%%", (1 - a / b) * 100; else print "-" }')
		[ "$sk" = inet ] && name=tcp || name=unix
		printf '%-6s | %8s %6s | %8s %6s | %8s %6s | %7s %7s\n' "$name" "$e_mps" "$e_us" "$c_mps" "$c_us" "$r_mps" "$r_us" "$cost" "$costc"
	done
fi
if [ ${#NOTES[@]} -gt 0 ]; then
	echo
	echo "notes:"
	for x in "${NOTES[@]}"; do echo "  - $x"; done
fi
echo
echo "raw results: $OUT/results.jsonl"
} | tee "$OUT/results.txt"
if [[ " $PARTS " == *" scan "* ]]; then
	bash "$ROOT/test/bench/scan.sh" || STATUS=1
fi
if [[ " $PARTS " == *" store "* ]]; then
	bash "$ROOT/test/bench/store.sh" || STATUS=1
fi
if [[ " $PARTS " == *" dkim "* ]]; then
	bash "$ROOT/test/bench/dkim.sh" || STATUS=1
fi
exit $STATUS
