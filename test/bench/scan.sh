#!/usr/bin/env bash
# scan.sh -- the scanner part of `make bench` (BENCH_PARTS="scan"): rmilter +
# a real rspamd against rspamd's own HTTP throughput and rspamd's own milter.
#
# Starts dnsmasq (local=/#/: answers the test zone, NXDOMAIN for the rest,
# never forwards) and rspamd on loopback, offline (test-ground.md §7): one
# "normal" worker (count = 1) and one rspamd_proxy worker in milter mode with
# self_scan (count = 1), fuzzy_check off, DNS pointed at the dnsmasq.  Then,
# per concurrency level, with the same 2 KB ham message (mload's):
#   http   hload: POST /checkv2, one kept-alive connection per slot, straight
#          to the normal worker, with the headers rmilter sends
#   rm     mload -> rmilter (TCP) -> rspamd normal worker; rmilter has only
#          the rspamd module (max_inflight = 256, tempfail_on_error = yes);
#          a fresh rmilter per level (its CPU per message and VmHWM)
#   proxy  mload -> rspamd_proxy worker (milter, self_scan)
# Both milter paths: one message per connection, OPTNEG offers 0x1FFFFF
# (what Postfix offers); both negotiate NR_* and answer only at EOM.
#
# A run counts only if every message was scanned: hload saw HTTP 200 with an
# "action" for each; mload saw no tempfail/reject and no error; rspamd logged
# one task per message (rspamd.log delta); rmilter's upstream counters show
# one request per message and no failure.  Otherwise the row says INVALID.
#
# Knobs: BENCH_SCAN_LEVELS="10 100", BENCH_SCAN_N=1000 (messages per run),
# BENCH_SCAN_ROUNDS=3 (rounds of http, rm, proxy per level; best one shown),
# BENCH_SCAN_TIMEOUT=20 (s per run; a run cut short is marked),
# BENCH_SCAN_PORT=23470 (first port tried; busy ports are stepped over),
# RMILTER=src/rmilter, CC=cc, BENCH_SCAN_KEEP=1 keeps the temp dir,
# BENCH_SCAN_RM_SERVER=HOST:PORT points rmilter elsewhere (a closed port
# checks that failed scans are reported INVALID).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build/bench
CC=${CC:-cc}
RMILTER=${RMILTER:-$ROOT/src/rmilter}
LEVELS=${BENCH_SCAN_LEVELS:-"10 100"}
SCAN_N=${BENCH_SCAN_N:-1000}
ROUNDS=${BENCH_SCAN_ROUNDS:-3}
SCAN_TIMEOUT=${BENCH_SCAN_TIMEOUT:-20}
PORT_NEXT=${BENCH_SCAN_PORT:-23470}
PORT_LAST=$((PORT_NEXT + 29))
CACHE=$OUT/rspamd-db            # our Hyperscan cache
E2E_CACHE=$ROOT/build/e2e-rspamd-db
CLK_TCK=$(getconf CLK_TCK)
# the SMTP client of every scanned message: in the test zone (SPF pass,
# DMARC pass), not loopback (rspamd treats 127.0.0.1 as local: no SPF/RBL,
# and it would try to DKIM-sign)
CLIENT_IP=192.0.2.1
CLIENT_NAME=client.test.example
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

NOTES=()
STATUS=0
NRUNS=0
NOISY=0
DNS_PID=
RSPAMD_PID=
RM_PID=
SD=

note() { NOTES+=("$*"); echo "bench-scan: note: $*" >&2; }
say() { echo "bench-scan: $*" >&2; }

# ---- cleanup: everything we started, by PID -----------------------------------
# stop_pid: test/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RSPAMD_CHILDREN=()
cleanup() {
	local p
	stop_pid "$RM_PID" 5
	RM_PID=
	if [ -n "$RSPAMD_PID" ]; then
		stop_pid "$RSPAMD_PID" 10
		save_cache
		# workers normally die with the main process
		for p in "${RSPAMD_CHILDREN[@]}"; do
			case $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") in
			"rspamd: "*) kill -KILL "$p" 2>/dev/null ;;
			esac
		done
		RSPAMD_PID=
	fi
	stop_pid "$DNS_PID" 5
	DNS_PID=
	if [ -n "$SD" ] && [ "${BENCH_SCAN_KEEP:-0}" != 1 ]; then
		rm -rf "$SD"
	elif [ -n "$SD" ]; then
		echo "bench-scan: kept $SD" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- prerequisites -------------------------------------------------------------
missing=()
for t in rspamd dnsmasq curl ss; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
id _rspamd >/dev/null 2>&1 || missing+=("user:_rspamd")
[ -x "$RMILTER" ] || missing+=("$RMILTER")
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench-scan: skipped, missing: ${missing[*]}" | tee "$OUT/scan.txt"
	exit 0
fi

if grep -aq -e __asan_init -e __ubsan_handle -e __tsan_init "$RMILTER" 2>/dev/null; then
	note "$RMILTER is a sanitizer build (SANITIZER=...): its CPU and RSS figures are not representative; rebuild with plain 'make' or set RMILTER"
fi

mkdir -p "$OUT"
$CC -O2 -Wall -Wextra -Werror -o "$OUT/mload" "$ROOT/test/bench/mload.c" ||
	{ echo "bench-scan: building mload failed" >&2; exit 1; }
$CC -O2 -Wall -Wextra -Werror -o "$OUT/hload" "$ROOT/test/bench/hload.c" -levent ||
	{ echo "bench-scan: building hload failed (libevent-dev installed?)" >&2; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

# ---- ports ---------------------------------------------------------------------
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null &&
		! ss -Hlntu "sport = :$1" 2>/dev/null | grep -q .
}
pick_port() {       # pick_port VAR
	while [ "$PORT_NEXT" -le "$PORT_LAST" ]; do
		if port_free "$PORT_NEXT"; then
			printf -v "$1" %s "$PORT_NEXT"
			PORT_NEXT=$((PORT_NEXT + 1))
			return 0
		fi
		PORT_NEXT=$((PORT_NEXT + 1))
	done
	echo "bench-scan: no free port up to $PORT_LAST" >&2
	exit 1
}
pick_port DNS_PORT
pick_port NORMAL_PORT
pick_port PROXY_PORT
pick_port RM_PORT

SD=$(mktemp -d /tmp/rmilter-bench-scan.XXXXXX)
chmod 755 "$SD"

# ---- dnsmasq -------------------------------------------------------------------
mkdir -p "$SD/dns"
cat >"$SD/dns/dnsmasq.conf" <<EOF
no-resolv
no-hosts
no-poll
bind-interfaces
listen-address=127.0.0.1
local=/#/
txt-record=test.example,"v=spf1 ip4:127.0.0.0/8 ip4:192.0.2.0/24 -all"
txt-record=_dmarc.test.example,"v=DMARC1; p=none"
mx-host=test.example,mx.test.example,10
host-record=mx.test.example,127.0.0.1
host-record=client.test.example,192.0.2.1
ptr-record=1.2.0.192.in-addr.arpa,client.test.example
EOF
dnsmasq --keep-in-foreground --conf-file="$SD/dns/dnsmasq.conf" --port="$DNS_PORT" \
	--pid-file="$SD/dns/dnsmasq.pid" >"$SD/dns/dnsmasq.log" 2>&1 &
DNS_PID=$!

# ---- rspamd --------------------------------------------------------------------
R=$SD/rspamd
mkdir -p "$R/local.d" "$R/db" "$R/run" "$R/log"
cat >"$R/rspamd.conf" <<EOF
.include "\$CONFDIR/common.conf"
options {
    pidfile = "\$RUNDIR/rspamd.pid";
    .include "\$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "\$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "file";
    filename = "\$LOGDIR/rspamd.log";
    level = "notice";
}
worker "normal" {
    bind_socket = "127.0.0.1:$NORMAL_PORT";
    .include "\$CONFDIR/worker-normal.inc"
    count = 1;
    task_timeout = 8s;
}
worker "rspamd_proxy" {
    bind_socket = "127.0.0.1:$PROXY_PORT";
    milter = yes;
    timeout = 120s;
    upstream "local" {
        default = yes;
        self_scan = yes;
    }
    count = 1;
    discard_on_reject = false;
    quarantine_on_reject = false;
    spam_header = "X-Spam";
    reject_message = "Spam message rejected";
}
EOF
cat >"$R/local.d/options.inc" <<EOF
dns {
    nameserver = ["127.0.0.1:$DNS_PORT"];   # our dnsmasq; NEVER the system resolver
    timeout = 1s;
    retransmits = 1;
}
EOF
echo 'enabled = false;' >"$R/local.d/fuzzy_check.conf"   # would query rspamd.com
# a warm Hyperscan cache (14 s to build cold): ours, else the e2e suite's
if [ -d "$CACHE" ]; then
	cp -a "$CACHE"/. "$R/db/" 2>/dev/null
elif [ -d "$E2E_CACHE" ]; then
	cp -a "$E2E_CACHE"/. "$R/db/" 2>/dev/null
fi
chown -R _rspamd:_rspamd "$R/db" "$R/run" "$R/log"
RVARS=(--var=CONFDIR=/etc/rspamd "--var=LOCAL_CONFDIR=$R" "--var=DBDIR=$R/db"
	"--var=RUNDIR=$R/run" "--var=LOGDIR=$R/log")

save_cache() {      # the compiled Hyperscan files -> $CACHE (atomic rename)
	local n tmp
	n=$(find "$R/db" -maxdepth 1 -name '*.hs*' 2>/dev/null | wc -l)
	[ "$n" -gt 0 ] || return 0
	if [ -d "$CACHE" ] && [ -z "$(comm -23 \
	    <(find "$R/db" -maxdepth 1 -name '*.hs*' -printf '%f\n' | sort) \
	    <(find "$CACHE" -maxdepth 1 -name '*.hs*' -printf '%f\n' | sort))" ]; then
		return 0
	fi
	tmp=$(mktemp -d "$CACHE.new.XXXXXX") || return 0
	find "$R/db" -maxdepth 1 -name '*.hs*' -exec cp -p {} "$tmp/" \;
	rm -rf "$CACHE.old"
	[ -d "$CACHE" ] && mv "$CACHE" "$CACHE.old"
	mv "$tmp" "$CACHE" && rm -rf "$CACHE.old"
}

t0=$(date +%s%N)
rspamd -f -u _rspamd -g _rspamd -c "$R/rspamd.conf" "${RVARS[@]}" >"$R/console.log" 2>&1 &
RSPAMD_PID=$!

since_ms() { echo $((($(date +%s%N) - t0) / 1000000)); }

# dnsmasq answers, rspamd's normal worker says pong, the proxy listens
ready=no
for i in $(seq 1200); do       # 60 s: a cold Hyperscan compile takes ~15 s
	kill -0 "$DNS_PID" 2>/dev/null || { say "dnsmasq exited: $(tail -3 "$SD/dns/dnsmasq.log")"; break; }
	kill -0 "$RSPAMD_PID" 2>/dev/null || { say "rspamd exited: $(tail -5 "$R/console.log" "$R/log/rspamd.log" 2>/dev/null)"; break; }
	if curl -s --max-time 1 "http://127.0.0.1:$NORMAL_PORT/ping" 2>/dev/null | grep -q '^pong' &&
	    ! port_free "$PROXY_PORT"; then
		ready=yes
		break
	fi
	sleep 0.05
done
if [ $ready != yes ]; then
	echo "bench-scan: rspamd did not come up; log:" >&2
	tail -20 "$R/console.log" "$R/log/rspamd.log" >&2 2>/dev/null
	exit 1
fi
say "rspamd up after $(since_ms) ms (normal 127.0.0.1:$NORMAL_PORT, proxy-milter 127.0.0.1:$PROXY_PORT, dns 127.0.0.1:$DNS_PORT)"

# worker PIDs (for their CPU time): children of the main process by title
worker_pid() {      # worker_pid normal|rspamd_proxy
	local p
	for p in $(ps -o pid= --ppid "$RSPAMD_PID"); do
		case $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") in
		"rspamd: $1 process"*) echo "$p"; return 0 ;;
		esac
	done
	return 1
}
NORMAL_PID=$(worker_pid normal)
PROXY_PID=$(worker_pid rspamd_proxy)
mapfile -t RSPAMD_CHILDREN < <(ps -o pid= --ppid "$RSPAMD_PID" | tr -d ' ')
[ -n "$NORMAL_PID" ] && [ -n "$PROXY_PID" ] || {
	echo "bench-scan: rspamd workers not found: $(ps -o pid=,args= --ppid "$RSPAMD_PID")" >&2
	exit 1
}

# Hyperscan: until the hs_helper has compiled (or validated the cached) regexp
# databases, the workers match with PCRE.  rspamd logs that only at info, so
# wait until the hs_helper's CPU time stays flat for 1.5 s (at most 60 s).
HS_PID=$(worker_pid hs_helper)
if [ -n "$HS_PID" ]; then
	last=-1 flat=0
	for i in $(seq 240); do
		cur=$(sed 's/.*) //' "/proc/$HS_PID/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		[ -n "$cur" ] || break
		if [ "$cur" = "$last" ]; then
			flat=$((flat + 1))
			[ $flat -ge 6 ] && break
		else
			flat=0
		fi
		last=$cur
		sleep 0.25
	done
	[ "${flat:-0}" -ge 6 ] || note "rspamd's hs_helper still busy after 60 s: the workers may scan with PCRE (slower)"
	say "hs_helper idle after $(since_ms) ms (CPU $last ticks)"
else
	note "no hs_helper process found"
fi
save_cache

# ---- helpers ---------------------------------------------------------------------
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
# user+nice+system+steal jiffies of the machine (irq/softirq left out: loopback
# TCP work lands there and belongs to the run; steal = a hypervisor's noise)
sys_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $9; exit }' /proc/stat; }
# every non-idle jiffy of the machine (irq and softirq included)
sys_all_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# CPU ticks of every process of ours but the load generator
our_ticks() {
	local p t=0 x
	for p in "$RSPAMD_PID" "${RSPAMD_CHILDREN[@]}" "$DNS_PID" "$RM_PID"; do
		[ -n "$p" ] || continue
		x=$(cpu_ticks "$p")
		t=$((t + ${x:-0}))
	done
	echo "$t"
}
vmhwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
# rspamd logs one line per task (rspamd_task_write_log) at notice, tagged
# with the worker: "#PID(normal)" or "#PID(rspamd_proxy)"
task_lines() { grep -c "($1) .*rspamd_task_write_log" "$R/log/rspamd.log" 2>/dev/null || true; }

start_rmilter() {
	cat >"$SD/rmilter.conf" <<-EOF
	bind_socket = "inet:$RM_PORT@127.0.0.1";
	log_level = notice;
	log_file = "$SD/rmilter.log";
	max_connections = 20000;
	listen_backlog = 8192;
	spool_memory_limit = 16M;
	control_socket = "$SD/rmilter.ctl";
	rspamd {
	    servers = ${BENCH_SCAN_RM_SERVER:-127.0.0.1:$NORMAL_PORT};
	    max_inflight = 256;
	    tempfail_on_error = yes;
	}
	EOF
	: >"$SD/rmilter.log"
	"$RMILTER" -n -c "$SD/rmilter.conf" >"$SD/rmilter.out" 2>&1 &
	RM_PID=$!
	for i in $(seq 100); do
		! port_free "$RM_PORT" && return 0
		kill -0 "$RM_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench-scan: rmilter did not start; output:" >&2
	tail -20 "$SD/rmilter.out" "$SD/rmilter.log" >&2
	stop_pid "$RM_PID"
	RM_PID=
	return 1
}

# stop_rmilter -> RM_STATS: rmilter's counters (rmilter -s) just before
stop_rmilter() {
	RM_STATS=$("$RMILTER" -s -c "$SD/rmilter.conf" 2>&1)
	stop_pid "$RM_PID" 5
	RM_PID=
}

# run_one PATH C N ROUND: one measured run; stores, under K=PATH_C_ROUND,
# OK_K MPS_K BAD_K (why it is invalid, empty if valid) UNF_K P50_K OTHER_K
# WT_K (CPU ticks of the scanning worker) RT_K (rmilter's); the JSON line goes
# to scan.jsonl
run_one() {
	local path=$1 c=$2 n=$3 r=$4 k="$1_$2_$4" json l0 l1 t0=0 t1=0 wt0 wt1 ok err
	local why= mps tasks unfinished fin bad worker=normal wpid=$NORMAL_PID
	local s0 s1 o0 o1 other i a0 a1 el
	if [ "$path" = proxy ]; then
		worker=rspamd_proxy
		wpid=$PROXY_PID
	fi
	l0=$(task_lines $worker)
	s0=$(sys_busy_ticks); o0=$(our_ticks); a0=$(sys_all_ticks)
	wt0=$(cpu_ticks "$wpid")
	[ "$path" = rm ] && t0=$(cpu_ticks "$RM_PID")
	case $path in
	http)
		json=$("$OUT/hload" -a "127.0.0.1:$NORMAL_PORT" -c "$c" -n "$n" -b 2048 \
			-t "$SCAN_TIMEOUT" -I "$CLIENT_IP" -h "$CLIENT_NAME" -j \
			-L "scan/http/$c/$r" 2>"$SD/load.err")
		;;
	rm)
		json=$("$OUT/mload" -s "inet:$RM_PORT@127.0.0.1" -c "$c" -n "$n" -b 2048 -r 1 -m 1 \
			-p 0x1FFFFF -I "$CLIENT_IP" -i "$CLIENT_NAME" -t "$SCAN_TIMEOUT" -j \
			-L "scan/rm/$c/$r" 2>"$SD/load.err")
		;;
	proxy)
		json=$("$OUT/mload" -s "inet:$PROXY_PORT@127.0.0.1" -c "$c" -n "$n" -b 2048 -r 1 -m 1 \
			-p 0x1FFFFF -I "$CLIENT_IP" -i "$CLIENT_NAME" -t "$SCAN_TIMEOUT" -j \
			-L "scan/proxy/$c/$r" 2>"$SD/load.err")
		;;
	esac
	[ "$path" = rm ] && t1=$(cpu_ticks "$RM_PID")
	wt1=$(cpu_ticks "$wpid")
	s1=$(sys_busy_ticks); o1=$(our_ticks); a1=$(sys_all_ticks)
	echo "$json" >>"$OUT/scan.jsonl"
	el=$(echo "$json" | jget elapsed_s)
	# how busy the scanning worker and the whole machine were (CPUs)
	printf -v "WBUSY_$k" %s "$(awk -v a="$wt0" -v b="$wt1" -v h="$CLK_TCK" -v e="$el" \
		'BEGIN { if (e + 0 < 0.5) print "-"; else printf "%.2f", (b - a) / h / e }')"
	printf -v "BOX_$k" %s "$(awk -v a="$a0" -v b="$a1" -v h="$CLK_TCK" -v e="$el" \
		'BEGIN { if (e + 0 < 0.5) print "-"; else printf "%.2f", (b - a) / h / e }')"
	ok=$(echo "$json" | jget messages)
	[ -n "$ok" ] || { ok=0; why="no result from the load generator;"; }
	# rspamd writes its log line when the task ends, a moment after the
	# reply: wait until the count is reached (at most 3 s)
	for i in $(seq 30); do
		l1=$(task_lines $worker)
		[ $((l1 - l0)) -ge "$ok" ] && break
		sleep 0.1
	done
	sleep 0.2
	l1=$(task_lines $worker)
	tasks=$((l1 - l0))
	if [ -s "$SD/load.err" ]; then
		say "$path c=$c round $r: load generator stderr:"
		head -12 "$SD/load.err" >&2
	fi
	# CPUs kept busy by processes not ours during the run (the machine is
	# shared): rspamd, dnsmasq, rmilter and the load generator left out
	other=$(awk -v a="$s0" -v b="$s1" -v x="$o0" -v y="$o1" -v h="$CLK_TCK" \
	    -v m="$(echo "$json" | sed -n 's/.*"[hm]load_cpu_s":\([0-9.]*\).*/\1/p')" \
	    -v e="$el" 'BEGIN {
		if (e + 0 < 0.5) { print "-"; exit }
		v = ((b - a) - (y - x)) / h - m; v /= e
		printf "%.2f", v < 0 ? 0 : v }')
	err=$(echo "$json" | jget errors)
	unfinished=$(echo "$json" | jget unfinished)
	mps=$(echo "$json" | jget msgs_per_s)
	err=${err:-0}
	unfinished=${unfinished:-0}
	# unfinished at the run timeout is a cut-short run, not a failed scan
	[ $((err - unfinished)) -gt 0 ] && why="$why $((err - unfinished)) errors;"
	if [ "$path" = http ]; then
		printf -v "ACT_$c" %s "$(echo "$json" | sed -n 's/.*"actions":{\([^}]*\)}.*/\1/p')"
		printf -v "CONN_$k" %s "$(echo "$json" | jget connects)"
	else
		# every final reply must be continue/accept: no tempfail, reject..
		fin=$(echo "$json" | sed -n 's/.*"finals":{\([^}]*\)}.*/\1/p')
		bad=$(echo "$fin" | tr ',' '\n' | grep -v '^"[ca]":' | grep . | tr '\n' ' ')
		[ -n "$bad" ] && why="$why finals $bad;"
		printf -v "NEG_$path" %s "$(echo "$json" | sed -n 's/.*"protocol":"\(0x[0-9a-f]*\)".*/\1/p')"
	fi
	[ "$tasks" -ne "$ok" ] && why="$why rspamd logged $tasks tasks for $ok messages;"
	[ "$unfinished" -gt 0 ] &&
		note "$path c=$c round $r: cut at ${SCAN_TIMEOUT}s with $unfinished of $n messages unfinished (msg/s over the completed ones)"
	NRUNS=$((NRUNS + 1))
	awk -v x="$other" 'BEGIN { exit !(x + 0 > 0.3) }' && NOISY=$((NOISY + 1))
	if [ -n "$why" ]; then
		STATUS=1
		note "$path c=$c round $r INVALID:$why"
	fi
	printf -v "OK_$k" %s "$ok"
	printf -v "MPS_$k" %s "$mps"
	printf -v "BAD_$k" %s "$why"
	printf -v "UNF_$k" %s "$unfinished"
	printf -v "P50_$k" %s "$(echo "$json" | jget p50_ms)"
	printf -v "OTHER_$k" %s "$other"
	printf -v "WT_$k" %s "$((${wt1:-0} - ${wt0:-0}))"
	printf -v "RT_$k" %s "$((${t1:-0} - ${t0:-0}))"
	say "$path c=$c round $r: $ok scans, $mps msg/s, rspamd tasks $tasks, other CPUs $other${why:+, INVALID:$why}"
}

# ---- warm-up: both workers --------------------------------------------------------------
: >"$OUT/scan.jsonl"
"$OUT/hload" -a "127.0.0.1:$NORMAL_PORT" -c 4 -n 200 -b 2048 -t 30 -I "$CLIENT_IP" -h "$CLIENT_NAME" \
	-L warmup >"$SD/warm.txt" 2>&1 || { say "warm-up against rspamd failed:"; cat "$SD/warm.txt" >&2; }
"$OUT/mload" -s "inet:$PROXY_PORT@127.0.0.1" -c 4 -n 200 -b 2048 -r 1 -m 1 -p 0x1FFFFF \
	-I "$CLIENT_IP" -i "$CLIENT_NAME" -t 30 \
	-L warmup >>"$SD/warm.txt" 2>&1 || { say "warm-up against the proxy failed:"; cat "$SD/warm.txt" >&2; }
say "warm-up: $(grep -h 'msgs/s' "$SD/warm.txt" | tr -s ' ' | tr '\n' ' ')"

# one sample reply, for the report
SAMPLE=$("$OUT/hload" -a "127.0.0.1:$NORMAL_PORT" -c 1 -n 1 -b 2048 -I "$CLIENT_IP" -h "$CLIENT_NAME" -v 2>&1 |
	sed -n 's/^hload: reply: //p' | head -1)

# ---- runs ------------------------------------------------------------------------------
# Per level a fresh rmilter (its VmHWM and CPU are per level), then ROUNDS
# rounds of http, rm, proxy back to back (order rotated): the machine is
# shared, noise only ever slows a run down, so the table shows each path's
# best round.
for c in $LEVELS; do
	say "level c=$c: $ROUNDS rounds of $SCAN_N messages per path, at most ${SCAN_TIMEOUT}s each"
	start_rmilter || { note "rmilter failed to start (c=$c)"; STATUS=1; }
	for r in $(seq "$ROUNDS"); do
		# the order rotates from round to round: no path always runs
		# first (or right after another one)
		case $((r % 3)) in
		1) order="http rm proxy" ;;
		2) order="rm proxy http" ;;
		0) order="proxy http rm" ;;
		esac
		for path in $order; do
			[ "$path" = rm ] && [ -z "$RM_PID" ] && continue
			run_one "$path" "$c" "$SCAN_N" "$r"
		done
	done
	[ -n "$RM_PID" ] || continue
	printf -v "RSS_$c" '%s' "$(vmhwm_kb "$RM_PID")"
	stop_rmilter
	# rmilter's own counters: one rspamd result per message, all "none"
	# (scanned, no action; a failed scan would be "tempfail", as
	# tempfail_on_error = yes), one upstream request each, no failure
	sent=0
	for r in $(seq "$ROUNDS"); do v="OK_rm_${c}_$r"; sent=$((sent + ${!v:-0})); done
	modl=$(echo "$RM_STATS" | grep '^module rspamd:')
	none=$(echo "$modl" | sed -n 's/.* none \([0-9]*\).*/\1/p')
	total=$(echo "$modl" | tr ' ' '\n' | grep -E '^[0-9]+$' | awk '{ s += $1 } END { print s + 0 }')
	upl=$(echo "$RM_STATS" | grep '^upstream rspamd')
	req=$(echo "$upl" | sed -n 's/.* requests \([0-9]*\).*/\1/p')
	fails=$(echo "$upl" | sed -n 's/.* failures \([0-9]*\).*/\1/p')
	bad=
	if [ -z "$modl" ]; then
		note "rm c=$c: no 'module rspamd' counters from rmilter -s: $(echo "$RM_STATS" | head -3 | tr '\n' ' ')"
	elif [ "${none:-0}" != "$sent" ] || [ "$total" != "$sent" ]; then
		bad="rmilter counted '$modl' for $sent messages;"
	fi
	if [ -z "$req" ]; then
		note "rm c=$c: no 'upstream rspamd' counters from rmilter -s (request count not checked)"
	elif [ "$req" != "$sent" ] || [ "${fails:-0}" != 0 ]; then
		bad="$bad rmilter upstream: requests $req failures $fails for $sent messages;"
	fi
	if [ -n "$bad" ]; then
		note "rm c=$c INVALID: $bad"
		STATUS=1
		v="BAD_rm_${c}_1"
		printf -v "BAD_rm_${c}_1" %s "${!v}$bad"
	fi
	printf -v "RMSTATS_$c" '%s' "$(echo "$RM_STATS" | grep -E '^(messages|module|upstream)' | tr '\n' ';')"
done

# ---- report ------------------------------------------------------------------------------
[ "$NOISY" -gt 0 ] &&
	note "$NOISY of $NRUNS runs had other processes keep > 0.3 CPUs busy (column oth): their msg/s are low"
# agg PATH C -> "best median valid why total_ok worker_ticks rm_ticks best_round"
agg() {
	local path=$1 c=$2 r v m best= bestr= why= ok=0 wt=0 rt=0 list=()
	for r in $(seq "$ROUNDS"); do
		v="MPS_${path}_${c}_$r"; m=${!v:-}
		[ -n "$m" ] || continue
		v="BAD_${path}_${c}_$r"; [ -n "${!v:-}" ] && why="$why r$r:${!v}"
		v="OK_${path}_${c}_$r"; ok=$((ok + ${!v:-0}))
		v="WT_${path}_${c}_$r"; wt=$((wt + ${!v:-0}))
		v="RT_${path}_${c}_$r"; rt=$((rt + ${!v:-0}))
		list+=("$m")
		if [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a > b) }'; then
			best=$m
			bestr=$r
		fi
	done
	[ ${#list[@]} -gt 0 ] || { echo "- - no - 0 0 0 -"; return; }
	m=$(printf '%s\n' "${list[@]}" | sort -g | awk '{ a[NR] = $1 } END {
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
	echo "$best $m $([ -z "$why" ] && echo "yes -" || echo "no x") $ok $wt $rt $bestr"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
f0() { awk -v x="$1" 'BEGIN { if (x == "-" || x == "") print "-"; else printf "%.0f", x }'; }
per_msg_us() { awk -v t="$1" -v n="$2" -v h="$CLK_TCK" 'BEGIN { if (n + 0 > 0) printf "%.0f", t / h / n * 1e6; else print "-" }'; }
{
echo
echo "scan: rmilter + rspamd vs rspamd's own HTTP rate and rspamd's own milter"
echo "(rspamd $(rspamd --version 2>/dev/null | sed -n 's/.*version //p' | head -1): 1 normal worker + 1 rspamd_proxy worker (milter, self_scan);"
echo " $(nproc) CPUs shared by rspamd, dnsmasq, the load generator and rmilter; 2 KB ham message, 1 rcpt,"
echo " client $CLIENT_IP ($CLIENT_NAME); $ROUNDS rounds x $SCAN_N messages per path and level (<= ${SCAN_TIMEOUT}s each);"
echo " milter paths: 1 message per connection, OPTNEG offers 0x1FFFFF)"
echo
echo "msg/s = best of the $ROUNDS rounds (median in the second table); INVALID = some scan did not happen"
printf '%-5s | %9s | %9s %7s | %9s %8s %9s | %7s %6s\n' c "http m/s" "rm m/s" "rm/http" \
	"proxy m/s" "rm/proxy" "http/prx" "rm us/m" "RSS MB"
for c in $LEVELS; do
	read -r hb hm hv _ hok hwt _ _ <<<"$(agg http "$c")"
	read -r rb rm_ rv _ rok rwt rrt _ <<<"$(agg rm "$c")"
	read -r pb pm pv _ pok pwt _ _ <<<"$(agg proxy "$c")"
	[ "$hv" = yes ] && h=$(f0 "$hb") || h=INVALID
	[ "$rv" = yes ] && r=$(f0 "$rb") || r=INVALID
	[ "$pv" = yes ] && p=$(f0 "$pb") || p=INVALID
	v="RSS_$c"; rss=$(awk -v k="${!v:-}" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }')
	printf '%-5s | %9s | %9s %7s | %9s %8s %9s | %7s %6s\n' "$c" "$h" "$r" "$(ratio "$r" "$h")" \
		"$p" "$(ratio "$r" "$p")" "$(ratio "$h" "$p")" "$(per_msg_us "$rrt" "$rok")" "$rss"
done
echo
echo "targets: rm/http >= 0.90 (rmilter's overhead < 10 % of rspamd's own HTTP rate), rm/proxy >= 1.0."
echo "http/prx = rspamd's HTTP path vs its own milter path, no rmilter involved: the ceiling of"
echo "rm/proxy, as rmilter can only reach rspamd's normal worker over HTTP."
echo
echo "per path: median msg/s, the scanning worker's CPU per message (us, all rounds), and per"
echo "round: msg/s, CPUs used by the scanning worker (wrk), by the whole machine (box, of $(nproc))"
echo "and by processes not part of the run (oth: noise from the shared machine)"
printf '%-5s %-6s | %6s %8s | %s\n' c path "median" "wrk us/m" "rounds: msg/s wrk box oth"
for c in $LEVELS; do
	for path in http rm proxy; do
		read -r _ med _ _ ok wt _ _ <<<"$(agg "$path" "$c")"
		rounds=
		for r in $(seq "$ROUNDS"); do
			v="MPS_${path}_${c}_$r"; o="OTHER_${path}_${c}_$r"
			w="WBUSY_${path}_${c}_$r"; b="BOX_${path}_${c}_$r"
			rounds="$rounds | $(printf '%4s %4s %4s %4s' "$(f0 "${!v:--}")" "${!w:--}" "${!b:--}" "${!o:--}")"
		done
		printf '%-5s %-6s | %6s %8s %s\n' "$c" "$path" "$(f0 "$med")" "$(per_msg_us "$wt" "$ok")" "$rounds"
	done
done
echo "(wrk = rspamd's normal worker for http and rm, its rspamd_proxy worker for proxy; a"
echo " worker below ~0.95 CPU while the box is near $(nproc).0 is starved of CPU, not of work)"
echo
echo "negotiated (OPTNEG reply protocol bits): rmilter ${NEG_rm:-?}, rspamd proxy ${NEG_proxy:-?}"
for c in $LEVELS; do
	v="ACT_$c"; echo "rspamd actions at c=$c (http path, last round): ${!v:-?}"
	v="RMSTATS_$c"; [ -n "${!v:-}" ] && echo "rmilter c=$c (rmilter -s, all rounds): ${!v}"
done
v="CONN_http_${LEVELS%% *}_1"; w="OK_http_${LEVELS%% *}_1"
[ -n "${!v:-}" ] && [ "${!v}" = "${!w:-x}" ] &&
	echo "rspamd answered every /checkv2 with 'Connection: close': one TCP connection per scan on the http and rm paths"
[ -n "$SAMPLE" ] && echo "sample /checkv2 reply: $(echo "$SAMPLE" | cut -c1-200)..."
for c in $LEVELS; do
	for path in http rm proxy; do
		for r in $(seq "$ROUNDS"); do
			v="BAD_${path}_${c}_$r"
			[ -n "${!v:-}" ] && echo "INVALID $path c=$c round $r:${!v}"
		done
	done
done
if [ ${#NOTES[@]} -gt 0 ]; then
	echo
	echo "notes:"
	for x in "${NOTES[@]}"; do echo "  - $x"; done
fi
echo
echo "raw results: $OUT/scan.jsonl"
} | tee "$OUT/scan.txt"
exit $STATUS
