#!/bin/bash
# test/e2e/peers.sh -- the real scanners of the e2e suite, on loopback, offline.
#
# Sourced by run.sh (only when a scanner case is selected); also runnable on its own:
#   bash test/e2e/peers.sh selftest     start all, scan GTUBE/EICAR through each, stop,
#                                       check nothing is left running
#   bash test/e2e/peers.sh start        start all and print the ports; stays in the
#                                       foreground until Ctrl-C / SIGTERM, then stops all
#
# Functions:
#   peers_start        start dnsmasq, rspamd, spamd and clamd in parallel and wait until
#                      each answers (rspamd /ping = pong, spamd PING = PONG, clamd PING);
#                      returns 1 (PEERS_WHY says why) if a tool is missing or a peer
#                      did not come up.  Sets DNS_PORT RSPAMD_PORT RSPAMD_SOCK SPAMD_PORT
#                      CLAMD_PORT CLAMD_SOCK, PEERS_DIR, PEERS_START_SECS.
#   peers_stop         SIGTERM every started peer by its PID (then SIGKILL after 10 s);
#                      also stops the fake servers started with fake_start.
#   peers_leftovers    prints the PIDs (and their descendants seen at start) still alive
#   fake_start NAME MODE PROTO [ARGS]   a tools/fake_upstream.py server on a free port;
#                      sets FAKE_PORT, FAKE_LOG, FAKE_CTL (write a mode there to change
#                      it at run time), FAKE_ADDR (127.0.0.1:PORT or the socket path
#                      when ARGS has --unix)
#   fake_conns NAME    number of connections the fake NAME accepted so far
#   fake_mode NAME MODE  switch the fake's mode (takes effect for the next request)
#   fake_stop NAME
#   redis_start NAME [PORT]  a private redis-server (loopback, no persistence) on a free
#                      port of the block (or PORT: a restart on the same port); waits for
#                      PONG; sets REDIS_PORT, REDIS_PID, REDIS_DIR (its log: redis.log)
#   redis_stop NAME [KILL]  SIGTERM (or SIGKILL: a crash) by its PID, waits until gone
#   redis_cli NAME ARGS...  redis-cli against it (bounded by a 10 s timeout)
#   redis_info NAME FIELD   one field of INFO (total_connections_received, ...)
#   redis_port NAME / redis_pid NAME; peers_stop stops every redis started here too.
#   `bash test/e2e/peers.sh redis-selftest` checks these on their own.
#
# Ports: a block 50..99 above the e2e port base (lib.sh: $SMTP_PORT, or E2E_PORT_BASE,
# default 24525), each port stepped up while busy.  Nothing ever talks to the system
# resolver: rspamd and spamd are pointed at our dnsmasq (local=/#/: NXDOMAIN for all
# names not configured here).  rspamd's Hyperscan cache (14 s to build) is kept in
# build/e2e-rspamd-db and copied into the per-run DBDIR, so later starts take < 1 s.

PEERS_SH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PEERS_ROOT=$(cd "$PEERS_SH_DIR/../.." && pwd)
: "${PY:=/usr/bin/python3}"
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
PEERS_RSPAMD_CACHE=${PEERS_RSPAMD_CACHE:-$PEERS_ROOT/build/e2e-rspamd-db}
PEERS_TIMEOUT=${PEERS_TIMEOUT:-60}      # readiness budget (rspamd cold start ~14 s)

PEER_PIDS=()          # "name:pid"
REDIS_NAMES=()        # redis-servers started with redis_start (by name)
PEER_DESC=()          # descendants seen after readiness (workers, children)
FAKE_NAMES=()
PEERS_WHY=
PEERS_STARTED=0

_peers_now() { date +%s.%N; }
# running = exists and is not a zombie
_peers_running() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
_peers_since() { awk -v a="$1" -v b="$(_peers_now)" 'BEGIN { printf "%.2f", b - a }'; }
_peers_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# peer_port VAR -> sets VAR to a free port from the block, never the same twice
# in a run (not in $(...): the counter must survive)
peer_port() {
	local p
	if [ -z "${PEERS_NEXT_PORT:-}" ]; then
		PEERS_NEXT_PORT=$((${SMTP_PORT:-${E2E_PORT_BASE:-24525}} + 50))
		PEERS_LAST_PORT=$((PEERS_NEXT_PORT + 49))
	fi
	p=$PEERS_NEXT_PORT
	while [ "$p" -le "$PEERS_LAST_PORT" ]; do
		# a UDP-only user (dnsmasq) is not seen by the TCP probe; ss sees both
		if _peers_port_free "$p" && ! ss -Hlnu "sport = :$p" 2>/dev/null | grep -q .; then
			PEERS_NEXT_PORT=$((p + 1))
			printf -v "$1" %s "$p"
			return 0
		fi
		p=$((p + 1))
	done
	return 1
}

peers_prereq() {
	local t missing=()
	for t in dnsmasq rspamd rspamadm spamd spamc clamd curl dig ss "$PY"; do
		case $t in
		/*) [ -x "$t" ] || missing+=("$t") ;;
		*) command -v "$t" >/dev/null 2>&1 || missing+=("$t") ;;
		esac
	done
	for t in _rspamd debian-spamd clamav; do
		id "$t" >/dev/null 2>&1 || missing+=("user:$t")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	PEERS_WHY="missing: ${missing[*]}"
	return 1
}

_peer_add() { PEER_PIDS+=("$1:$2"); }
_peer_pid() {
	local e
	for e in "${PEER_PIDS[@]}"; do
		[ "${e%%:*}" = "$1" ] && { echo "${e#*:}"; return 0; }
	done
	return 1
}

# ---- configuration -----------------------------------------------------------

_peers_write_dns() {
	mkdir -p "$PEERS_DIR/dns"
	cat >"$PEERS_DIR/dns/dnsmasq.conf" <<EOF
no-resolv
no-hosts
no-poll
bind-interfaces
listen-address=127.0.0.1
log-queries
local=/#/
txt-record=test.example,"v=spf1 ip4:127.0.0.0/8 ip4:192.0.2.0/24 -all"
txt-record=_dmarc.test.example,"v=DMARC1; p=none"
mx-host=test.example,mx.test.example,10
host-record=mx.test.example,127.0.0.1
host-record=client.test.example,192.0.2.1
ptr-record=1.2.0.192.in-addr.arpa,client.test.example
EOF
}

_peers_write_rspamd() {
	local d=$PEERS_DIR/rspamd
	mkdir -p "$d/local.d" "$d/db" "$d/run" "$d/log"
	cat >"$d/rspamd.conf" <<EOF
.include "\$CONFDIR/common.conf"
options {
    pidfile = "\$RUNDIR/rspamd.pid";
    .include "\$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "\$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "console";
    level = "notice";
}
worker "normal" {
    bind_socket = "127.0.0.1:$RSPAMD_PORT";
    bind_socket = "$RSPAMD_SOCK mode=0666";
    .include "\$CONFDIR/worker-normal.inc"
    count = 1;
    task_timeout = 8s;
}
EOF
	cat >"$d/local.d/options.inc" <<EOF
dns {
    nameserver = ["127.0.0.1:$DNS_PORT"];   # our dnsmasq; NEVER the system resolver
    timeout = 1s;
    retransmits = 1;
}
EOF
	echo 'enabled = false;' >"$d/local.d/fuzzy_check.conf"   # would query rspamd.com
	# thresholds: score >= 6 add header, >= 8 rewrite subject, >= 15 reject; the
	# E2E_* rules below put a message exactly into one of them by its Subject
	cat >"$d/local.d/actions.conf" <<'EOF'
reject = 15;
rewrite_subject = 8;
add_header = 6;
greylist = null;
subject = "[E2E-SPAM] %s";
EOF
	cat >"$d/rspamd.local.lua" <<'EOF'
-- e2e test rules: a Subject keyword selects the rspamd action
local reconf = config['regexp']
reconf['E2E_ADD_HEADER'] = {
  re = 'Subject=/e2e-rspamd-add-header/i{header}',
  score = 7.0, description = 'e2e: add header', group = 'e2e',
}
reconf['E2E_REWRITE_SUBJECT'] = {
  re = 'Subject=/e2e-rspamd-rewrite-subject/i{header}',
  score = 10.0, description = 'e2e: rewrite subject', group = 'e2e',
}
reconf['E2E_REJECT'] = {
  re = 'Subject=/e2e-rspamd-reject/i{header}',
  score = 20.0, description = 'e2e: reject by score', group = 'e2e',
}
EOF
	# a warm Hyperscan cache from an earlier run (hard links when on the same file
	# system: ~90 MB; rspamd replaces a stale file, never edits one in place)
	if [ -d "$PEERS_RSPAMD_CACHE" ]; then
		cp -al "$PEERS_RSPAMD_CACHE"/. "$d/db/" 2>/dev/null ||
			cp -a "$PEERS_RSPAMD_CACHE"/. "$d/db/" 2>/dev/null
	fi
	chown -R _rspamd:_rspamd "$d/db" "$d/run" "$d/log"
	PEERS_RSPAMD_VARS=(--var=CONFDIR=/etc/rspamd "--var=LOCAL_CONFDIR=$d" "--var=DBDIR=$d/db"
		"--var=RUNDIR=$d/run" "--var=LOGDIR=$d/log")
}

_peers_write_spamd() {
	local d=$PEERS_DIR/sa
	mkdir -p "$d"
	cp /etc/spamassassin/*.pre "$d/"
	cat >"$d/local.cf" <<EOF
dns_server 127.0.0.1:$DNS_PORT
use_bayes 0
bayes_auto_learn 0
# e2e test rules: a body token gives a known score
body     E2E_SA_SPAM /e2e-sa-spam-token/
score    E2E_SA_SPAM 7.0
describe E2E_SA_SPAM e2e: spam below the kill level
body     E2E_SA_KILL /e2e-sa-kill-token/
score    E2E_SA_KILL 12.0
describe E2E_SA_KILL e2e: spam above the kill level
body     E2E_SA_TAG /e2e-sa-tag-token/
score    E2E_SA_TAG 3.0
describe E2E_SA_TAG e2e: ham above the tag level
EOF
	chmod -R a+rX "$d"
}

_peers_write_clamd() {
	local d=$PEERS_DIR/clam
	mkdir -p "$d/db"
	"$PY" - "$d/db/test.ndb" <<'EOF'
import sys
eicar = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
marker = b'MILTER-TEST-VIRUS-MARKER-7f3a'
with open(sys.argv[1], 'w') as f:          # Name:TargetType:Offset:HexSig
    f.write(f"Eicar-Test-Signature:0:*:{eicar.hex()}\n")
    f.write(f"Test.Milter.Marker:0:*:{marker.hex()}\n")
EOF
	cat >"$d/clamd.conf" <<EOF
Foreground yes
LogFile $d/clamd.log
LogTime yes
PidFile $d/clamd.pid
DatabaseDirectory $d/db
TCPSocket $CLAMD_PORT
TCPAddr 127.0.0.1
LocalSocket $CLAMD_SOCK
LocalSocketMode 666
FixStaleSocket yes
MaxThreads 4
StreamMaxLength 25M
ScanMail yes
SelfCheck 0
User clamav
EOF
	chown -R clamav:clamav "$d"
}

# ---- start / wait / stop ---------------------------------------------------------

# peers_launch -> writes the configs and starts every peer in the background
peers_launch() {
	peers_prereq || return 1
	if [ -z "${PEERS_DIR:-}" ]; then
		if [ -n "${TG:-}" ]; then
			PEERS_DIR=$TG/peers
		else
			PEERS_DIR=$(mktemp -d /tmp/rmilter-peers.XXXXXX) || return 1
			PEERS_OWN_DIR=1
		fi
	fi
	mkdir -p "$PEERS_DIR" "$PEERS_DIR/fake"
	chmod 755 "$PEERS_DIR" "$PEERS_DIR/fake"
	[ -n "${TG:-}" ] && chmod 755 "$TG"
	if ! { peer_port DNS_PORT && peer_port RSPAMD_PORT && peer_port SPAMD_PORT && peer_port CLAMD_PORT; }; then
		PEERS_WHY="no free ports in ${PEERS_NEXT_PORT}..$PEERS_LAST_PORT"
		return 1
	fi
	RSPAMD_SOCK=$PEERS_DIR/rspamd/rspamd.sock
	CLAMD_SOCK=$PEERS_DIR/clam/clamd.sock
	_peers_write_dns
	_peers_write_rspamd
	_peers_write_spamd
	_peers_write_clamd
	PEERS_T0=$(_peers_now)

	dnsmasq --keep-in-foreground --conf-file="$PEERS_DIR/dns/dnsmasq.conf" --port="$DNS_PORT" \
		--pid-file="$PEERS_DIR/dns/dnsmasq.pid" --log-facility="$PEERS_DIR/dns/dnsmasq.log" \
		>"$PEERS_DIR/dns/stdout.log" 2>&1 &
	_peer_add dnsmasq $!

	rspamd -f -u _rspamd -g _rspamd -c "$PEERS_DIR/rspamd/rspamd.conf" "${PEERS_RSPAMD_VARS[@]}" \
		>"$PEERS_DIR/rspamd/console.log" 2>&1 &
	_peer_add rspamd $!

	spamd -L -i 127.0.0.1 -p "$SPAMD_PORT" -A 127.0.0.1 -u debian-spamd -m 4 --min-children=2 \
		--min-spare=1 --max-spare=2 --syslog=stderr --pidfile="$PEERS_DIR/sa/spamd.pid" \
		--siteconfigpath="$PEERS_DIR/sa" >"$PEERS_DIR/sa/spamd.log" 2>&1 &
	_peer_add spamd $!

	clamd -c "$PEERS_DIR/clam/clamd.conf" >"$PEERS_DIR/clam/stdout.log" 2>&1 &
	_peer_add clamd $!
	PEERS_STARTED=1
}

_peers_alive() {
	local p
	p=$(_peer_pid "$1") || return 1
	kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ]
}

_peers_clamd_ping() {
	"$PY" - "$CLAMD_PORT" "$CLAMD_SOCK" <<'EOF' 2>/dev/null
import socket, sys
for addr in (('127.0.0.1', int(sys.argv[1])), sys.argv[2]):
    s = socket.socket(socket.AF_INET if isinstance(addr, tuple) else socket.AF_UNIX)
    s.settimeout(2)
    s.connect(addr)
    s.sendall(b'zPING\0')
    r = b''
    while not r.endswith(b'\0'):
        d = s.recv(100)
        if not d:
            break
        r += d
    s.close()
    assert r == b'PONG\0', r
EOF
}

_peers_ready() {
	case $1 in
	dnsmasq) dig +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 +short TXT test.example 2>/dev/null | grep -q spf1 ;;
	rspamd) curl -s --max-time 2 "http://127.0.0.1:$RSPAMD_PORT/ping" 2>/dev/null | grep -q '^pong' &&
		curl -s --max-time 2 --unix-socket "$RSPAMD_SOCK" http://localhost/ping 2>/dev/null | grep -q '^pong' ;;
	spamd) timeout 3 spamc -d 127.0.0.1 -p "$SPAMD_PORT" -K 2>/dev/null | grep -q '^SPAMD/[0-9.]* 0' ;;
	clamd) _peers_clamd_ping ;;
	esac
}

# peers_wait -> waits (all at once, up to PEERS_TIMEOUT s) until every peer answers
peers_wait() {
	local pending=(dnsmasq rspamd spamd clamd) still n t0 ready=()
	t0=${PEERS_T0:-$(_peers_now)}
	PEERS_READY_AT=()
	while [ ${#pending[@]} -gt 0 ]; do
		still=()
		for n in "${pending[@]}"; do
			if ! _peers_alive "$n"; then
				PEERS_WHY="$n exited at startup: $(_peers_log_tail "$n")"
				return 1
			fi
			if _peers_ready "$n"; then
				PEERS_READY_AT+=("$n $(_peers_since "$t0")s")
			else
				still+=("$n")
			fi
		done
		pending=("${still[@]}")
		[ ${#pending[@]} -eq 0 ] && break
		if awk -v a="$(_peers_since "$t0")" -v b="$PEERS_TIMEOUT" 'BEGIN { exit !(a > b) }'; then
			PEERS_WHY="not ready after ${PEERS_TIMEOUT}s: ${pending[*]} ($(for n in "${pending[@]}"; do echo "$n: $(_peers_log_tail "$n")"; done | tr '\n' ' '))"
			return 1
		fi
		sleep 0.1
	done
	PEERS_START_SECS=$(_peers_since "$t0")
	# remember the workers/children too, so "nothing left running" can be checked
	local e p c
	for e in "${PEER_PIDS[@]}"; do
		p=${e#*:}
		while read -r c; do PEER_DESC+=("$c"); done < <(ps -o pid= --ppid "$p" 2>/dev/null)
	done
	_peers_save_rspamd_cache
	return 0
}

peers_start() {
	peers_launch || return 1
	peers_wait
}

_peers_log_tail() {
	local f
	case $1 in
	dnsmasq) f=$PEERS_DIR/dns/stdout.log ;;
	rspamd) f=$PEERS_DIR/rspamd/console.log ;;
	spamd) f=$PEERS_DIR/sa/spamd.log ;;
	clamd) f=$PEERS_DIR/clam/clamd.log ;;
	esac
	tail -3 "$f" 2>/dev/null | cut -c1-200 | tr '\n' '|'
}

# the Hyperscan files rspamd compiled into this run's DBDIR go to the cache (a new
# directory renamed into place, so a concurrent run never sees half a cache)
_peers_save_rspamd_cache() {
	local d=$PEERS_DIR/rspamd/db n_new n_old tmp
	n_new=$(find "$d" -maxdepth 1 -name '*.hs*' 2>/dev/null | wc -l)
	[ "$n_new" -gt 0 ] || return 0
	n_old=$(find "$PEERS_RSPAMD_CACHE" -maxdepth 1 -name '*.hs*' 2>/dev/null | wc -l)
	# the same set as cached (names are content hashes): nothing to do
	if [ "$n_old" -ge "$n_new" ] && [ -z "$(comm -23 \
			<(find "$d" -maxdepth 1 -name '*.hs*' -printf '%f\n' | sort) \
			<(find "$PEERS_RSPAMD_CACHE" -maxdepth 1 -name '*.hs*' -printf '%f\n' 2>/dev/null | sort))" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$PEERS_RSPAMD_CACHE")" || return 0
	tmp=$(mktemp -d "$PEERS_RSPAMD_CACHE.new.XXXXXX") || return 0
	chmod 755 "$tmp"
	find "$d" -maxdepth 1 -name '*.hs*' -exec cp -p {} "$tmp/" \;
	rm -rf "$PEERS_RSPAMD_CACHE.old"
	[ -d "$PEERS_RSPAMD_CACHE" ] && mv "$PEERS_RSPAMD_CACHE" "$PEERS_RSPAMD_CACHE.old"
	mv "$tmp" "$PEERS_RSPAMD_CACHE" && rm -rf "$PEERS_RSPAMD_CACHE.old"
}

# peers_leftovers -> prints "name:pid" of whatever we started that is still alive
peers_leftovers() {
	local e p
	for e in "${PEER_PIDS[@]}"; do
		p=${e#*:}
		_peers_running "$p" && echo "$e"
	done
	for p in "${PEER_DESC[@]}"; do
		_peers_running "$p" && echo "child:$p($(ps -o comm= -p "$p" 2>/dev/null))"
	done
}

peers_stop() {
	local e p n=0 left
	for n in "${FAKE_NAMES[@]}"; do fake_stop "$n"; done
	FAKE_NAMES=()
	redis_stop_all
	[ ${#PEER_PIDS[@]} -gt 0 ] || return 0
	PEERS_STOP_T0=$(_peers_now)
	for e in "${PEER_PIDS[@]}"; do kill -TERM "${e#*:}" 2>/dev/null; done
	n=0
	while [ $n -lt 200 ]; do
		left=$(peers_leftovers)
		[ -z "$left" ] && break
		sleep 0.05
		n=$((n + 1))
	done
	if [ -n "$left" ]; then
		echo "# peers still running after 10 s, SIGKILL: $(echo "$left" | tr '\n' ' ')"
		for e in "${PEER_PIDS[@]}"; do kill -KILL "${e#*:}" 2>/dev/null; done
		for p in "${PEER_DESC[@]}"; do kill -KILL "$p" 2>/dev/null; done
	fi
	for e in "${PEER_PIDS[@]}"; do wait "${e#*:}" 2>/dev/null; done
	PEERS_STOP_SECS=$(_peers_since "$PEERS_STOP_T0")
	_peers_save_rspamd_cache
	PEERS_STOPPED_PIDS=("${PEER_PIDS[@]}")
	PEERS_STOPPED_DESC=("${PEER_DESC[@]}")
	PEER_PIDS=()
	PEER_DESC=()
	PEERS_STARTED=0
}

# ---- fault-injecting fake servers (tools/fake_upstream.py) ------------------------

_fake_var() { printf 'FAKE_%s_%s' "$1" "$2" | tr -c 'A-Za-z0-9_' '_'; }

# fake_start NAME MODE PROTO [--unix] [extra fake_upstream.py args]
fake_start() {
	local name=$1 mode=$2 proto=$3 listen dir pid i
	shift 3
	dir=${PEERS_DIR:?peers_launch first}/fake
	mkdir -p "$dir"
	if [ "${1:-}" = --unix ]; then
		shift
		listen=$dir/$name.sock
		FAKE_PORT=
		FAKE_ADDR=$listen
	else
		peer_port FAKE_PORT || return 1
		listen=127.0.0.1:$FAKE_PORT
		FAKE_ADDR=$listen
	fi
	FAKE_LOG=$dir/$name.log
	FAKE_CTL=$dir/$name.mode
	rm -f "$dir/$name.pid" "$FAKE_CTL"
	echo "$mode" >"$FAKE_CTL"
	"$PY" "$PEERS_SH_DIR/tools/fake_upstream.py" --listen "$listen" --mode "$mode" --proto "$proto" \
		--pidfile "$dir/$name.pid" --control "$FAKE_CTL" "$@" >"$FAKE_LOG" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		[ -s "$dir/$name.pid" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.03
	done
	if [ ! -s "$dir/$name.pid" ]; then
		echo "fake $name did not start: $(tail -3 "$FAKE_LOG" | tr '\n' '|')"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	printf -v "$(_fake_var "$name" PID)" %s "$pid"
	printf -v "$(_fake_var "$name" ADDR)" %s "$FAKE_ADDR"
	FAKE_NAMES+=("$name")
}

fake_pid() { local v; v=$(_fake_var "$1" PID); echo "${!v:-}"; }
fake_addr() { local v; v=$(_fake_var "$1" ADDR); echo "${!v:-}"; }
fake_conns() { grep -c '^conn ' "$PEERS_DIR/fake/$1.log" 2>/dev/null || true; }
fake_mode() { echo "$2" >"$PEERS_DIR/fake/$1.mode"; }

fake_stop() {
	local pid n
	pid=$(fake_pid "$1")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for n in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	printf -v "$(_fake_var "$1" PID)" %s ""
	local keep=() x
	for x in "${FAKE_NAMES[@]}"; do [ "$x" = "$1" ] || keep+=("$x"); done
	FAKE_NAMES=("${keep[@]}")
}

# ---- redis-server (test-ground.md §6) ----------------------------------------------

_redis_var() { printf 'REDIS_%s_%s' "$1" "$2" | tr -c 'A-Za-z0-9_' '_'; }
redis_port() { local v; v=$(_redis_var "$1" PORT); echo "${!v:-}"; }
redis_pid() { local v; v=$(_redis_var "$1" PID); echo "${!v:-}"; }

redis_prereq() {
	local t missing=()
	for t in redis-server redis-cli; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	PEERS_WHY="missing: ${missing[*]}"
	return 1
}

# the directory of peers' files ($TG/peers inside the e2e suite)
_peers_dir() {
	[ -n "${PEERS_DIR:-}" ] && { mkdir -p "$PEERS_DIR"; return 0; }
	if [ -n "${TG:-}" ]; then
		PEERS_DIR=$TG/peers
	else
		PEERS_DIR=$(mktemp -d /tmp/rmilter-peers.XXXXXX) || return 1
		PEERS_OWN_DIR=1
	fi
	mkdir -p "$PEERS_DIR"
	chmod 755 "$PEERS_DIR"
}

# redis_cli NAME ARGS... -> redis-cli against the instance NAME (10 s at most)
redis_cli() {
	local port
	port=$(redis_port "$1")
	shift
	timeout 10 redis-cli -h 127.0.0.1 -p "${port:?redis not started}" "$@"
}

# redis_info NAME FIELD -> the value of FIELD in INFO (all sections), CR removed
redis_info() {
	redis_cli "$1" INFO all 2>/dev/null | tr -d '\r' | sed -n "s/^$2:\(.*\)/\1/p" | head -1
}

# redis_start NAME [PORT] -> a redis-server on 127.0.0.1 without persistence; returns
# once it answers PING (at most 10 s), or 1 with PEERS_WHY set
redis_start() {
	local name=$1 port=${2:-} dir pid i
	redis_prereq || return 1
	_peers_dir || { PEERS_WHY="no directory for the peers"; return 1; }
	if [ -z "$port" ]; then
		peer_port port || { PEERS_WHY="no free port for redis $name"; return 1; }
	fi
	dir=$PEERS_DIR/redis-$name
	mkdir -p "$dir"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no --dir "$dir" --logfile "$dir/redis.log" \
		--maxclients 10000 >>"$dir/stdout.log" 2>&1 &
	pid=$!
	for i in $(seq 200); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			PEERS_WHY="redis $name exited at startup: $(tail -3 "$dir/redis.log" "$dir/stdout.log" 2>/dev/null | tr '\n' '|' | cut -c1-300)"
			return 1
		fi
		[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = PONG ] && break
		sleep 0.05
	done
	if [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" != PONG ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		PEERS_WHY="redis $name on port $port did not answer PING within 10 s: $(tail -3 "$dir/redis.log" 2>/dev/null | tr '\n' '|')"
		return 1
	fi
	printf -v "$(_redis_var "$name" PID)" %s "$pid"
	printf -v "$(_redis_var "$name" PORT)" %s "$port"
	REDIS_PORT=$port
	REDIS_PID=$pid
	REDIS_DIR=$dir
	local x keep=()
	for x in "${REDIS_NAMES[@]}"; do [ "$x" = "$name" ] || keep+=("$x"); done
	REDIS_NAMES=("${keep[@]}" "$name")
	return 0
}

# redis_stop NAME [KILL] -> SIGTERM (default; redis exits ~0.5 s later) or SIGKILL by
# PID, then waits until the process is gone (10 s at most, then SIGKILL)
redis_stop() {
	local name=$1 sig=TERM pid n
	[ "${2:-}" = KILL ] && sig=KILL
	pid=$(redis_pid "$name")
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null
	for n in $(seq 200); do _peers_running "$pid" || break; sleep 0.05; done
	_peers_running "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	printf -v "$(_redis_var "$name" PID)" %s ""
	local x keep=()
	for x in "${REDIS_NAMES[@]}"; do [ "$x" = "$name" ] || keep+=("$x"); done
	REDIS_NAMES=("${keep[@]}")
}

redis_stop_all() {
	local n
	for n in "${REDIS_NAMES[@]}"; do redis_stop "$n"; done
	REDIS_NAMES=()
}

# start, SET/GET, INFO, a crash (SIGKILL) and a restart on the same port, stop; and
# nothing left running
_peers_redis_selftest() {
	local rc=0 port pid out t
	PEERS_OWN_DIR=
	trap 'redis_stop_all; [ -n "${PEERS_OWN_DIR:-}" ] && [ "${PEERS_KEEP:-0}" != 1 ] && rm -rf "$PEERS_DIR"' EXIT
	trap 'exit 1' INT TERM HUP PIPE
	t=$(_peers_now)
	redis_start st || { echo "FAIL redis_start: $PEERS_WHY"; return 1; }
	port=$REDIS_PORT
	pid=$REDIS_PID
	echo "ok redis_start: 127.0.0.1:$port pid $pid after $(_peers_since "$t")s ($(redis-server --version | cut -d' ' -f3))"
	out=$(redis_cli st SET foo bar PX 60000)$(redis_cli st GET foo)
	[ "$out" = OKbar ] && echo "ok redis_set_get" || { echo "FAIL redis_set_get: '$out'"; rc=1; }
	out=$(redis_info st total_connections_received)
	[ -n "$out" ] && [ "$out" -ge 2 ] && echo "ok redis_info (total_connections_received $out)" ||
		{ echo "FAIL redis_info: '$out'"; rc=1; }
	redis_stop st KILL
	_peers_running "$pid" && { echo "FAIL redis_kill: pid $pid still running"; rc=1; }
	_peers_port_free "$port" && echo "ok redis_kill (port $port closed)" || { echo "FAIL redis_kill: port $port still open"; rc=1; }
	t=$(_peers_now)
	redis_start st "$port" || { echo "FAIL redis_restart: $PEERS_WHY"; return 1; }
	out=$(redis_cli st GET foo)
	[ -z "$out" ] && echo "ok redis_restart (same port after $(_peers_since "$t")s, empty: no persistence)" ||
		{ echo "FAIL redis_restart: GET foo = '$out' after a restart without persistence"; rc=1; }
	pid=$REDIS_PID
	t=$(_peers_now)
	redis_stop st
	if _peers_running "$pid" || ! _peers_port_free "$port"; then
		echo "FAIL redis_stop: still running or port open"; rc=1
	else
		echo "ok redis_stop (SIGTERM, gone after $(_peers_since "$t")s)"
	fi
	return $rc
}

# ---- standalone: selftest ---------------------------------------------------------

# every mode of the fake, for each protocol, seen from a plain client
_peers_fake_selftest() {
	local proto mode out rc=0 t
	t=$(_peers_now)
	for proto in rspamd spamd clamd; do
		fake_start "st-$proto" ok "$proto" --interval 0.3 || { echo "FAIL fake_start $proto"; return 1; }
		fake_start "st-$proto-refuse" refuse "$proto" || { echo "FAIL fake_start $proto refuse"; return 1; }
		local refuse_addr=$FAKE_ADDR
		fake_start "st-$proto-unix" spam "$proto" --unix || { echo "FAIL fake_start $proto unix"; return 1; }
		local unix_addr=$FAKE_ADDR
		for mode in close reset hang drip garbage cut huge ok spam refuse unix; do
			case $mode in
			refuse) out=$("$PY" - "$proto" "$refuse_addr" refuse <<<"$_PEERS_FAKE_CLIENT" 2>&1) ;;
			unix) out=$("$PY" - "$proto" "$unix_addr" spam <<<"$_PEERS_FAKE_CLIENT" 2>&1) ;;
			*)
				fake_mode "st-$proto" "$mode"
				out=$("$PY" - "$proto" "$(fake_addr "st-$proto")" "$mode" <<<"$_PEERS_FAKE_CLIENT" 2>&1)
				;;
			esac
			case $out in
			ok*) ;;
			*) echo "FAIL fake $proto $mode: $out"; rc=1 ;;
			esac
		done
		local before
		before=$(fake_conns "st-$proto")
		[ "$before" = 9 ] || { echo "FAIL fake $proto: counted $before connections, want 9"; rc=1; }
	done
	for proto in rspamd spamd clamd; do
		fake_stop "st-$proto"; fake_stop "st-$proto-refuse"; fake_stop "st-$proto-unix"
	done
	[ $rc = 0 ] && echo "ok fake_upstream: 3 protocols x 11 modes as expected ($(_peers_since "$t")s)"
	return $rc
}

# client for the fake self-test: python3 - PROTO ADDR EXPECTED-MODE -> "ok ..." or why not
_PEERS_FAKE_CLIENT=$(cat <<'EOF'
import socket, struct, sys, time
proto, addr, want = sys.argv[1:4]
msg = b"From: a@test.example\r\nSubject: t\r\n\r\nbody\r\n"
if proto == "rspamd":
    req = b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(msg) + msg
elif proto == "spamd":
    req = b"CHECK SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % len(msg) + msg
else:
    req = b"zINSTREAM\0" + struct.pack(">I", len(msg)) + msg + struct.pack(">I", 0)
if addr.startswith("/"):
    s = socket.socket(socket.AF_UNIX)
    target = addr
else:
    s = socket.socket()
    h, p = addr.rsplit(":", 1)
    target = (h, int(p))
s.settimeout(2)
try:
    s.connect(target)
except ConnectionRefusedError:
    print("ok refused" if want == "refuse" else "connection refused"); sys.exit()
except OSError as e:     # a reset can already hit the connect
    print(f"ok connect failed: {e}" if want in ("close", "reset") else f"connect failed: {e}"); sys.exit()
try:
    s.sendall(req)
except OSError as e:
    print(f"ok send failed: {e}" if want in ("close", "reset") else f"send failed: {e}"); sys.exit()
got, how, t0 = b"", "eof", time.time()
deadline = 1.0
while True:
    left = deadline - (time.time() - t0)
    if left <= 0:
        how = "timeout"; break
    s.settimeout(left)
    try:
        d = s.recv(1 << 20)
    except socket.timeout:
        how = "timeout"; break
    except ConnectionResetError:
        how = "reset"; break
    if not d:
        break
    got += d
    if len(got) > (2 << 20):
        how = "huge"; break
ok_sig = {"rspamd": b'"action": "no action"', "spamd": b"Spam: False ; 0.0 / 5.0", "clamd": b"stream: OK\0"}[proto]
spam_sig = {"rspamd": b'"action": "reject"', "spamd": b"Spam: True ; 1000.0 / 5.0", "clamd": b"FOUND\0"}[proto]
good = {
    "close": how in ("eof", "reset") and not got,
    "reset": how in ("eof", "reset") and not got,
    "hang": how == "timeout" and not got,
    "drip": how == "timeout" and 1 <= len(got) <= 4,
    "garbage": how == "eof" and got.startswith(b"\0\x16\x03\x01 NOT-A-SCANNER"),
    "cut": how == "eof" and 5 <= len(got) and ok_sig not in got,
    "huge": how == "huge",
    "ok": how == "eof" and ok_sig in got,
    "spam": how == "eof" and spam_sig in got,
}[want]
print(("ok " if good else "unexpected: ") + f"{how} after {len(got)} bytes: {got[:60]!r}")
EOF
)

_peers_selftest() {
	local rc=0 out t
	PEERS_OWN_DIR=
	trap 'peers_stop; [ -n "${PEERS_OWN_DIR:-}" ] && [ "${PEERS_KEEP:-0}" != 1 ] && rm -rf "$PEERS_DIR"' EXIT
	trap 'exit 1' INT TERM HUP PIPE      # -> the EXIT trap stops everything
	if ! peers_start; then
		echo "FAIL peers_start: $PEERS_WHY"
		return 1
	fi
	echo "peers up in ${PEERS_START_SECS}s (${PEERS_READY_AT[*]}); dir $PEERS_DIR"
	echo "  dns 127.0.0.1:$DNS_PORT rspamd 127.0.0.1:$RSPAMD_PORT + $RSPAMD_SOCK spamd 127.0.0.1:$SPAMD_PORT clamd 127.0.0.1:$CLAMD_PORT + $CLAMD_SOCK"
	"$PY" - "$PEERS_DIR" <<'EOF'
import sys, base64
d = sys.argv[1]
open(f"{d}/gtube.eml", "w").write(
    "From: sender@test.example\nTo: rcpt@dest.example\nSubject: GTUBE\nMessage-ID: <g@test.example>\n\n"
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n")
open(f"{d}/ham.eml", "w").write(
    "From: sender@test.example\nTo: rcpt@dest.example\nSubject: Meeting notes\n"
    "Date: Sun, 22 Nov 2026 00:00:00 +0000\nMessage-ID: <h@test.example>\n\n"
    "Hi, here are the meeting notes from today. Regards.\n")
eicar = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
open(f"{d}/eicar.eml", "wb").write(
    b"From: a@test.example\r\nTo: b@dest.example\r\nSubject: att\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
    b"see attachment\r\n--XX\r\nContent-Type: application/octet-stream; name=eicar.com\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(eicar) + b"--XX--\r\n")
EOF
	check() {  # check NAME EXPECTED-REGEX OUTPUT
		if printf '%s' "$3" | grep -qE -- "$2"; then
			echo "ok $1: $(printf "%s\n" "$3" | grep -oE -- "$2" | head -1 | cut -c1-150)"
		else
			echo "FAIL $1: got '$(printf '%s' "$3" | tr '\n' ' ' | cut -c1-300)'"
			rc=1
		fi
	}
	t=$(_peers_now)
	out=$(curl -s --max-time 10 --data-binary @"$PEERS_DIR/gtube.eml" -H 'IP: 127.0.0.1' \
		-H 'From: sender@test.example' -H 'Rcpt: rcpt@dest.example' "http://127.0.0.1:$RSPAMD_PORT/checkv2")
	check rspamd_gtube_tcp '"action": ?"reject".*Gtube pattern' "$out"
	out=$(curl -s --max-time 10 --unix-socket "$RSPAMD_SOCK" --data-binary @"$PEERS_DIR/ham.eml" \
		-H 'IP: 127.0.0.1' http://localhost/checkv2)
	check rspamd_ham_unix '"action": ?"no action"' "$out"
	out=$(sed 's/^Subject: .*/Subject: e2e-rspamd-add-header x/' "$PEERS_DIR/ham.eml" |
		curl -s --max-time 10 --data-binary @- -H 'IP: 127.0.0.1' "http://127.0.0.1:$RSPAMD_PORT/checkv2")
	check rspamd_add_header '"action": ?"add header"' "$out"
	out=$(sed 's/^Subject: .*/Subject: e2e-rspamd-rewrite-subject x/' "$PEERS_DIR/ham.eml" |
		curl -s --max-time 10 --data-binary @- -H 'IP: 127.0.0.1' "http://127.0.0.1:$RSPAMD_PORT/checkv2")
	check rspamd_rewrite_subject '"action": ?"rewrite subject".*"subject": ?"\[E2E-SPAM\] e2e-rspamd-rewrite-subject x"' "$out"
	out=$(timeout 20 spamc -d 127.0.0.1 -p "$SPAMD_PORT" -c <"$PEERS_DIR/gtube.eml")
	check spamd_gtube '^10[0-9][0-9](\.[0-9])?/5\.0' "$out"
	out=$(timeout 20 spamc -d 127.0.0.1 -p "$SPAMD_PORT" -c <"$PEERS_DIR/ham.eml")
	check spamd_ham '^-?0(\.0)?/5\.0' "$out"
	out=$(sed 's/^Hi,/Hi e2e-sa-spam-token,/' "$PEERS_DIR/ham.eml" | timeout 20 spamc -d 127.0.0.1 -p "$SPAMD_PORT" -c)
	check spamd_custom_rule '^[0-9]+(\.[0-9])?/5\.0' "$out"
	out=$("$PY" - "$CLAMD_PORT" "$CLAMD_SOCK" "$PEERS_DIR/eicar.eml" <<'EOF'
import socket, struct, sys
def scan(addr, data):
    s = socket.socket(socket.AF_INET if isinstance(addr, tuple) else socket.AF_UNIX)
    s.settimeout(10); s.connect(addr)
    s.sendall(b'zINSTREAM\0' + struct.pack('>I', len(data)) + data + struct.pack('>I', 0))
    r = b''
    while not r.endswith(b'\0'):
        d = s.recv(4096)
        if not d: break
        r += d
    s.close(); return r.rstrip(b'\0').decode()
eml = open(sys.argv[3], 'rb').read()
print("tcp:", scan(('127.0.0.1', int(sys.argv[1])), eml))
print("unix:", scan(sys.argv[2], eml))
print("marker:", scan(sys.argv[2], b"Subject: m\r\n\r\nhello MILTER-TEST-VIRUS-MARKER-7f3a bye\r\n"))
print("clean:", scan(('127.0.0.1', int(sys.argv[1])), b"Subject: c\r\n\r\nclean\r\n"))
EOF
)
	check clamd_eicar_tcp '^tcp: stream: Eicar-Test-Signature\.UNOFFICIAL FOUND' "$out"
	check clamd_eicar_unix 'unix: stream: Eicar-Test-Signature\.UNOFFICIAL FOUND' "$out"
	check clamd_marker 'marker: stream: Test\.Milter\.Marker\.UNOFFICIAL FOUND' "$out"
	check clamd_clean 'clean: stream: OK' "$out"
	echo "scans took $(_peers_since "$t")s"
	_peers_fake_selftest || rc=1
	if grep -vE 'test\.example|in-addr\.arpa|^$' "$PEERS_DIR/dns/dnsmasq.log" | grep -q 'query\['; then
		echo "   # DNS queries rspamd/spamd made (all answered locally): $(grep -c 'query\[' "$PEERS_DIR/dns/dnsmasq.log")"
	fi
	peers_stop
	echo "peers stopped in ${PEERS_STOP_SECS}s"
	local e p left=
	for e in "${PEERS_STOPPED_PIDS[@]}" "${PEERS_STOPPED_DESC[@]}"; do
		p=${e#*:}
		_peers_running "$p" && left="$left $e($(ps -o stat=,comm= -p "$p" 2>/dev/null))"
	done
	if [ -n "$left" ]; then
		echo "FAIL nothing_left_running:$left"
		rc=1
	else
		echo "ok nothing_left_running (${#PEERS_STOPPED_PIDS[@]} peers, ${#PEERS_STOPPED_DESC[@]} children checked)"
	fi
	# nothing listens on our ports any more
	for p in "$DNS_PORT" "$RSPAMD_PORT" "$SPAMD_PORT" "$CLAMD_PORT"; do
		_peers_port_free "$p" || { echo "FAIL port $p still open"; rc=1; }
	done
	return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	case ${1:-selftest} in
	selftest) _peers_selftest; exit $? ;;
	redis-selftest) _peers_redis_selftest; exit $? ;;
	start)
		trap 'peers_stop; [ -n "${PEERS_OWN_DIR:-}" ] && rm -rf "$PEERS_DIR"' EXIT
		trap 'exit 0' INT TERM HUP PIPE
		peers_start || { echo "peers_start failed: $PEERS_WHY"; peers_stop; exit 1; }
		echo "DNS_PORT=$DNS_PORT RSPAMD_PORT=$RSPAMD_PORT RSPAMD_SOCK=$RSPAMD_SOCK SPAMD_PORT=$SPAMD_PORT CLAMD_PORT=$CLAMD_PORT CLAMD_SOCK=$CLAMD_SOCK"
		echo "up in ${PEERS_START_SECS}s; Ctrl-C stops"
		while :; do sleep 1; done
		;;
	*) echo "usage: $0 selftest|redis-selftest|start" >&2; exit 2 ;;
	esac
fi
