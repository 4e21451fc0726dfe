#!/usr/bin/env bash
# store.sh -- the policy-store part of `make bench` (BENCH_PARTS="store"):
# greylisting + rate limits in rmilter against a real redis-server on loopback
# (and, for comparison, the in-memory store), driven by mload straight to the
# daemon (one message per connection, OPTNEG 0x1FFFFF like Postfix).
#
# Per backend and concurrency level, two rows:
#   new     every triplet never seen: greylisted at DATA (one limits check
#           at RCPT + one greylist call; nothing counted)
#   white   every triplet whitelisted beforehand by a real pass (send, wait
#           the 1 s timeout, send again: passed), then measured as the third
#           send: accepted (limits check at RCPT, greylist, limits count at
#           end of message)
# Each row: msg/s, latency, rmilter CPU per message, and from redis INFO
# before/after: round trips per message (EVALSHA + EVAL + every other
# client command; the commands a Lua script runs inside redis are counted
# apart), redis CPU per message, and connections redis accepted during the
# run (must stay ~0: rmilter keeps its connections, never one per message).
# A row counts only if every verdict is the expected one (new: all 451 at
# DATA; white: all accepted, no X-Greylist) with no mload error; else
# INVALID and exit status 1.
#
# Knobs: BENCH_STORE_LEVELS="100 1000", BENCH_STORE_NMIN=4000,
# BENCH_STORE_NMAX=20000 (n = clamp(4 x c)), BENCH_STORE_BACKENDS="redis mem",
# BENCH_STORE_TIMEOUT=60 (s per mload run), BENCH_STORE_PORT=23520 (first
# port tried), BENCH_STORE_KEEP=1 keeps the temp dir, RMILTER, CC.
set -u

# bench_part, bench_prepare, stop_pid: test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_part store
LEVELS=${BENCH_STORE_LEVELS:-"100 1000"}
NMIN=${BENCH_STORE_NMIN:-4000}
NMAX=${BENCH_STORE_NMAX:-20000}
BACKENDS=${BENCH_STORE_BACKENDS:-"redis mem"}
RUN_TIMEOUT=${BENCH_STORE_TIMEOUT:-60}
GREY_T=1

bench_prepare store redis-server redis-cli "$PY"

SD=$(mktemp -d /tmp/rmilter-bench-store.XXXXXX)
chmod 755 "$SD"
# the redis helpers of the e2e suite (redis_start/redis_stop/redis_info), on
# ports from BENCH_STORE_PORT up
PEERS_DIR=$SD
PEERS_NEXT_PORT=${BENCH_STORE_PORT:-23520}
PEERS_LAST_PORT=$((PEERS_NEXT_PORT + 29))
# shellcheck source=../e2e/peers.sh
. "$ROOT/test/e2e/peers.sh"


cleanup() {
	stop_pid "$RM_PID" 5
	RM_PID=
	redis_stop_all
	if [ -n "$SD" ] && [ "${BENCH_STORE_KEEP:-0}" != 1 ]; then
		rm -rf "$SD"
	elif [ -n "$SD" ]; then
		echo "bench-store: kept $SD" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if ! redis_start bench; then
	echo "bench-store: redis did not start: $PEERS_WHY" >&2
	exit 1
fi
RP=$REDIS_PORT
peer_port RM_PORT || { echo "bench-store: no free port" >&2; exit 1; }
say "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$RP, rmilter on :$RM_PORT"

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

# start_rmilter BACKEND: a fresh daemon (greylisting + limits)
start_rmilter() {
	local redis=
	[ "$1" = redis ] && redis="redis {
    servers_grey = 127.0.0.1:$RP;
    servers_limits = 127.0.0.1:$RP;
}"
	cat >"$SD/rmilter.conf" <<-EOF
	bind_socket = "inet:$RM_PORT@127.0.0.1";
	log_level = warning;
	max_connections = 20000;
	listen_backlog = 8192;
	control_socket = "$SD/rmilter.ctl";
	$redis
	greylisting {
	    timeout = ${GREY_T}s; expire = 1h; expire_white = 1h;
	    awl_enable = no;
	}
	limits {
	    limit_to = 1000000:1000;
	}
	EOF
	"$RMILTER" -n -c "$SD/rmilter.conf" >"$SD/rmilter.log" 2>&1 &
	RM_PID=$!
	"$PY" "$ROOT/test/e2e/tools/waitport.py" 127.0.0.1 "$RM_PORT" 10 >/dev/null && return 0
	echo "bench-store: rmilter did not start:" >&2
	tail -5 "$SD/rmilter.log" >&2
	stop_pid "$RM_PID"
	RM_PID=
	return 1
}

# redis_snap -> "calls_of_client_commands script_inner_calls total_cmds cpu_s conns"
# from one INFO (commandstats, stats, cpu).  Client commands: EVALSHA, EVAL,
# SCRIPT, PING, SELECT, AUTH, HELLO, CLIENT, INFO, and whatever else a client sent;
# the data commands a script runs (GET SET EXISTS DEL INCR PEXPIRE ...) show up
# in commandstats too: with only scripts in use they are all script-inner.
redis_snap() {
	redis_cli bench INFO all 2>/dev/null | tr -d '\r' | awk -F'[:,=]' '
		/^cmdstat_/ { name = substr($1, 9); calls = $3
			if (name ~ /^(evalsha|eval|evalsha_ro|eval_ro|script|ping|select|auth|hello|client|info|config)/) rt += calls
			else inner += calls }
		/^total_commands_processed:/ { total = $2 }
		/^used_cpu_sys:/ { cpu += $2 }
		/^used_cpu_user:/ { cpu += $2 }
		/^total_connections_received:/ { conns = $2 }
		/^connected_clients:/ { clients = $2 }
		END { printf "%d %d %d %.6f %d %d\n", rt, inner, total, cpu, conns, clients }'
}

# run_row KEY C N EXPECT ARGS... -> one measured mload run; EXPECT new|white
run_row() {
	local key=$1 c=$2 n=$3 expect=$4 json t0 t1 s0 s1 why= err fin at mods
	shift 4
	s0=$(redis_snap)
	t0=$(cpu_ticks "$RM_PID")
	json=$("$OUT/mload" -s "inet:$RM_PORT@127.0.0.1" -c "$c" -n "$n" -b 2048 -r 1 -m 1 -p 0x1FFFFF \
		-t "$RUN_TIMEOUT" -j -f -L "store/$key" "$@" 2>"$SD/mload.err")
	t1=$(cpu_ticks "$RM_PID")
	s1=$(redis_snap)
	echo "$json" >>"$OUT/store.jsonl"
	if [ -s "$SD/mload.err" ]; then
		say "$key: mload stderr:"
		head -8 "$SD/mload.err" >&2
	fi
	err=$(echo "$json" | jget errors)
	fin=$(echo "$json" | sed -n 's/.*"finals":{\([^}]*\)}.*/\1/p')
	at=$(echo "$json" | sed -n 's/.*"finals_at":{\(.*\)}}$/\1/p')
	mods=$(echo "$json" | sed -n 's/.*"mods":{\([^}]*\)}.*/\1/p')
	[ "${err:-1}" = 0 ] || why="$why ${err:-?} errors;"
	case $expect in
	new) [ "$at" = "\"DATA\":{\"T\":$n}" ] || why="$why verdicts $at (want all 451 at DATA);" ;;
	white) { [ "$fin" = "\"c\":$n" ] && [ -z "$mods" ]; } || why="$why verdicts {$fin} mods {$mods} (want all accepted, no header);" ;;
	esac
	[ -n "$why" ] && { STATUS=1; note "$key INVALID:$why"; }
	printf -v "ROW_$key" '%s|%s|%s|%s|%s' "$json" "$((t1 - t0))" "$s0" "$s1" "$why"
	say "$key: c=$c n=$n $(echo "$json" | jget msgs_per_s) msg/s, finals {$fin}${why:+, INVALID:$why}"
}

# seed KEY C N ARGS: the triplets passed (new, wait, retry): whitelisted
seed() {
	local key=$1 c=$2 n=$3 j1 j2
	shift 3
	j1=$("$OUT/mload" -s "inet:$RM_PORT@127.0.0.1" -c "$c" -n "$n" -t "$RUN_TIMEOUT" -j -f "$@" 2>/dev/null)
	sleep $((GREY_T + 1))
	j2=$("$OUT/mload" -s "inet:$RM_PORT@127.0.0.1" -c "$c" -n "$n" -t "$RUN_TIMEOUT" -j -f "$@" 2>/dev/null)
	if [ "$(echo "$j2" | sed -n 's/.*"finals":{\([^}]*\)}.*/\1/p')" != "\"c\":$n" ]; then
		note "$key: seeding did not whitelist all $n triplets: pass 1 $(echo "$j1" | sed -n 's/.*"finals":{\([^}]*\)}.*/\1/p'), pass 2 $(echo "$j2" | sed -n 's/.*"finals":{\([^}]*\)}.*/\1/p')"
	fi
}

: >"$OUT/store.jsonl"
TAG=$$
for be in $BACKENDS; do
	for c in $LEVELS; do
		n=$((4 * c)); [ $n -lt "$NMIN" ] && n=$NMIN; [ $n -gt "$NMAX" ] && n=$NMAX
		N[$c]=$n
		start_rmilter "$be" || { STATUS=1; note "rmilter did not start ($be c=$c)"; continue; }
		say "$be c=$c n=$n: seeding $n whitelisted triplets"
		seed "${be}_white_$c" "$c" "$n" -I 198.51.100.20 -i white.example \
			-F "w%m-$be-$c-$TAG@src.example" -R "w%m@dest.example"
		# warm: connections to redis made, scripts loaded
		"$OUT/mload" -s "inet:$RM_PORT@127.0.0.1" -c 10 -n 200 -t 30 -I 203.0.113.99 \
			-F "warm%m-$be-$c-$TAG@src.example" >/dev/null 2>&1
		run_row "${be}_new_$c" "$c" "$n" new -I 203.0.113.20 -i new.example \
			-F "n%m-$be-$c-$TAG@src.example" -R "n%m@dest.example"
		run_row "${be}_white_$c" "$c" "$n" white -I 198.51.100.20 -i white.example \
			-F "w%m-$be-$c-$TAG@src.example" -R "w%m@dest.example"
		printf -v "RMSTATS_${be}_$c" '%s' "$(timeout 10 "$RMILTER" -s -c "$SD/rmilter.conf" 2>&1 |
			grep -E '^(module (greylisting|limits)|store)' | tr '\n' ';')"
		stop_pid "$RM_PID" 5
		RM_PID=
	done
done

# ---- report -------------------------------------------------------------------
fmt() {     # fmt KEY -> the table row's columns
	local v="ROW_$1" json ticks s0 s1 why n
	[ -n "${!v:-}" ] || { echo "- - - - - - - - - -"; return; }
	IFS='|' read -r json ticks s0 s1 why <<<"${!v}"
	n=$(echo "$json" | jget messages)
	awk -v n="${n:-0}" -v mps="$(echo "$json" | jget msgs_per_s)" -v p50="$(echo "$json" | jget p50_ms)" \
	    -v p99="$(echo "$json" | jget p99_ms)" -v t="$ticks" -v h="$CLK_TCK" -v s0="$s0" -v s1="$s1" \
	    -v bad="$why" 'BEGIN {
		split(s0, a, " "); split(s1, b, " ")
		if (n + 0 == 0) { print "fail - - - - - - - - -"; exit }
		# the "after" INFO is a client command itself (and one connection)
		rt = (b[1] - a[1] - 1) / n; inner = (b[2] - a[2]) / n
		rcpu = (b[4] - a[4]) / n * 1e6; conns = b[5] - a[5] - 1
		printf "%.0f %.2f %.2f %.0f %.2f %.2f %.0f %d %d %s\n", mps, p50, p99, t / h / n * 1e6,
		    rt, inner, rcpu, conns, b[6] - 1, bad == "" ? "ok" : "INVALID" }'
}
{
echo
echo "store: greylisting + limits in rmilter, redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on loopback vs the in-memory store"
echo "($(nproc) CPUs shared by redis, rmilter and mload; 2 KB message, 1 rcpt, 1 message per connection,"
echo " OPTNEG 0x1FFFFF; greylisting timeout ${GREY_T}s, awl off; limits: limit_to = 1000000:1000)"
echo "new   = never-seen triplets: 451 at DATA (limits check at RCPT + greylist)"
echo "white = triplets whitelisted by a real pass beforehand: accepted (check + greylist + count)"
echo
printf '%-5s %-5s %-5s %6s | %7s %7s %7s | %6s | %6s %6s %6s | %5s %4s | %s\n' \
	store c rows n "msg/s" "p50 ms" "p99 ms" "rm us" "rt/msg" "in/msg" "rd us" conns held valid
for be in $BACKENDS; do
	for c in $LEVELS; do
		for r in new white; do
			read -r mps p50 p99 us rt inner rcpu conns held valid <<<"$(fmt "${be}_${r}_$c")"
			if [ "$be" = mem ]; then rt=-; inner=-; rcpu=-; conns=-; held=-; fi
			printf '%-5s %-5s %-5s %6s | %7s %7s %7s | %6s | %6s %6s %6s | %5s %4s | %s\n' \
				"$be" "$c" "$r" "${N[$c]}" "$mps" "$p50" "$p99" "$us" "$rt" "$inner" "$rcpu" "$conns" "$held" "$valid"
		done
	done
done
echo
echo "rm us  = rmilter CPU (utime+stime) per message"
echo "rt/msg = redis round trips per message: client commands (EVALSHA, EVAL, SCRIPT ...) from INFO"
echo "         commandstats; in/msg = commands the Lua scripts ran inside redis (not round trips);"
echo "         rd us = redis CPU per message (used_cpu_user+sys)"
echo "conns  = connections redis accepted during the run (rmilter keeps its own: ~0 wanted);"
echo "held   = clients connected to redis at the end of the run (rmilter's pool)"
for be in $BACKENDS; do
	for c in $LEVELS; do
		v="RMSTATS_${be}_$c"; [ -n "${!v:-}" ] && echo "rmilter -s, $be c=$c: ${!v}"
	done
done
if [ ${#NOTES[@]} -gt 0 ]; then
	echo
	echo "notes:"
	for x in "${NOTES[@]}"; do echo "  - $x"; done
fi
echo
echo "raw results: $OUT/store.jsonl"
} | tee "$OUT/store.txt"
exit $STATUS
