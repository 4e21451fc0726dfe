# test/e2e/lib.sh -- helpers for the end-to-end suite (sourced by run.sh).
#
# A private test ground in a fresh temp dir $TG: Postfix (own config and queue
# directory, smtpd on 127.0.0.1:$SMTP_PORT) relays everything to smtp-sink on
# 127.0.0.1:$SINK_PORT, which writes one file per message into $TG/sink/;
# Postfix calls rmilter at inet:127.0.0.1:$MILTER_PORT.  Everything started is
# stopped by its PID in e2e_teardown.
#
# Environment:
#   RMILTER_BIN      daemon binary (default: src/rmilter of this tree)
#   RMILTER_WRAPPER  command prefixed to the daemon, e.g. "valgrind --leak-check=full"
#   E2E_PORT_BASE    first port to try (default 24525; +1 sink, +14 milter; moved up
#                    by 100 while any of the three is busy)
#   E2E_KEEP=1       keep $TG after the run (it is always kept when a case failed)
#   CI=true          a missing tool is a failure, not a skip

# postfix, postsuper, smtp-sink live in /usr/sbin, which a non-login PATH may lack
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
PY=/usr/bin/python3
TOOLS="$E2E_DIR/tools"
RMILTER_BIN=${RMILTER_BIN:-$ROOT/src/rmilter}
RMILTER_WRAPPER=${RMILTER_WRAPPER:-}
# Timing factor: a daemon under valgrind is several times slower.
if [ -n "$RMILTER_WRAPPER" ]; then SLOW=4; else SLOW=1; fi
FRAME_TIMEOUT=5

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILED_NAMES=()
BG_PIDS=()
RMILTER_PID=
RMILTER_STARTS=0

ok() {
	E2E_PASSED=$((E2E_PASSED + 1))
	echo "ok $1"
}

fail() {
	local name=$1
	shift
	E2E_FAILED=$((E2E_FAILED + 1))
	E2E_FAILED_NAMES+=("$name")
	echo "FAIL $name: $*"
}

note() { echo "   # $*"; }

is_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }

now() { date +%s.%N; }
# elapsed START -> seconds with 2 decimals
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# fle A B -> true if A <= B (floating point)
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- prerequisites ------------------------------------------------------

# e2e_prereq TOOL... -> 0 if all present; otherwise reports and returns 1
e2e_prereq() {
	local missing=() t
	for t in "$@"; do
		case $t in
		/*) [ -x "$t" ] || missing+=("$t") ;;
		*) command -v "$t" >/dev/null 2>&1 || missing+=("$t") ;;
		esac
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "missing: ${missing[*]}"
	return 1
}

# ---- setup --------------------------------------------------------------

e2e_init() {
	local base=${E2E_PORT_BASE:-24525} tries=0
	while :; do
		SMTP_PORT=$base SINK_PORT=$((base + 1)) MILTER_PORT=$((base + 14))
		if port_free "$SMTP_PORT" && port_free "$SINK_PORT" && port_free "$MILTER_PORT"; then
			break
		fi
		tries=$((tries + 1))
		[ $tries -ge 20 ] && { echo "no free port triple found"; return 1; }
		base=$((base + 100))
	done
	TG=$(mktemp -d /tmp/rmilter-e2e.XXXXXX) || return 1
	chmod 755 "$TG"
	mkdir -p "$TG/pf/conf" "$TG/pf/queue" "$TG/pf/data" "$TG/sink" "$TG/out"
	chown postfix "$TG/pf/data"
	chmod 777 "$TG/sink"
	MAILLOG="$TG/pf/maillog"
	RLOG="$TG/rmilter.log"
	: >"$RLOG"
	echo "# test ground $TG: smtpd 127.0.0.1:$SMTP_PORT, sink :$SINK_PORT, rmilter :$MILTER_PORT"
	echo "# daemon: ${RMILTER_WRAPPER:+$RMILTER_WRAPPER }$RMILTER_BIN"
}

start_sink() {
	smtp-sink -u nobody -d "$TG/sink/%M." -c "127.0.0.1:$SINK_PORT" 100 \
		>"$TG/sink.log" 2>&1 &
	SINK_PID=$!
	BG_PIDS+=("$SINK_PID")
	"$PY" "$TOOLS/waitport.py" 127.0.0.1 "$SINK_PORT" 10 >/dev/null
}

start_postfix() {
	cat >"$TG/pf/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $TG/pf/queue
data_directory = $TG/pf/data
myhostname = mx.test.example
mydomain = test.example
myorigin = \$mydomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = reject_non_fqdn_recipient, permit_mynetworks, reject
maillog_file = $MAILLOG
maillog_file_prefixes = $TG
smtpd_milters = inet:127.0.0.1:$MILTER_PORT
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 10s
milter_command_timeout = 30s
milter_content_timeout = 120s
smtpd_error_sleep_time = 0s
biff = no
readme_directory = no
EOF
	cat >"$TG/pf/conf/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
	if ! postfix -c "$TG/pf/conf" check >"$TG/pf/check.out" 2>&1; then
		echo "postfix check failed:"; cat "$TG/pf/check.out" "$MAILLOG" 2>/dev/null | tail -20
		return 1
	fi
	if ! postfix -c "$TG/pf/conf" start >"$TG/pf/start.out" 2>&1; then
		echo "postfix start failed:"; cat "$TG/pf/start.out" "$MAILLOG" 2>/dev/null | tail -20
		return 1
	fi
	POSTFIX_STARTED=1
	"$PY" "$TOOLS/waitport.py" 127.0.0.1 "$SMTP_PORT" 20 >/dev/null || {
		echo "postfix smtpd did not come up"; tail -20 "$MAILLOG" 2>/dev/null; return 1; }
	MASTER_PID=$(tr -d ' ' <"$TG/pf/queue/pid/master.pid")
}

# write_conf [EXTRA-LINES] -- the daemon's config; always the same file path
# (line 7 is the first extra line; TEST_POLICY=no turns the test policy off).
# max_size makes the test policy want the body only up to 4 KB, so larger
# bodies are answered with SMFIR_SKIP (exercised with real Postfix too).
# frame_timeout is short so that the slowloris case sees the daemon drop the
# connection (a started frame must complete within it).
write_conf() {
	RCONF="$TG/rmilter.conf"
	{
		echo "# rmilter e2e config (generated)"
		echo "bind_socket = \"inet:$MILTER_PORT@127.0.0.1\";"
		echo "test_policy = ${TEST_POLICY:-yes};"
		echo "log_level = debug;"
		echo "frame_timeout = ${FRAME_TIMEOUT}s;"
		echo "max_size = 4k;"
		[ -n "${1:-}" ] && printf '%s\n' "$1"
		rule_sections
	} >"$RCONF"
}

# rule_sections -> the rule { } sections of the rule_* cases (run.sh).  Each
# is keyed on a HELO name rule_*.client.test (swaks sends NAME.client.test)
# or a recipient local part rule-*, so no other case can fire them.
rule_sections() {
	cat <<'EOF'
rule { name = e2e-helo; reject "554 5.7.1 HELO ${helo} refused by rule"; helo /^rule_helo\.client\.test$/; }
rule { name = e2e-rcpt; reject "550 5.1.1 recipient refused by rule"; envrcpt /^<rule-bad-rcpt@/i; }
rule { name = e2e-tempfail; tempfail "451 4.7.1 deferred by rule"; helo /^rule_tempfail\./; header /^subject$/i /defer me/; }
rule { name = e2e-body; reject "550 5.7.1 body refused by rule"; helo /^rule_body\./; body /^forbidden line$/; }
rule { name = e2e-discard; discard; helo /^rule_discard\./; header /^X-Rule$/ /discard/; }
rule { name = e2e-quarantine; quarantine "held by rule"; helo /^rule_quarantine\./; header /^X-Rule$/ /hold/; }
rule { name = e2e-accept; accept; helo /^rule_accept\./; }
rule { name = e2e-shadow; mode = shadow; reject "shadow"; helo /^rule_shadow\./; }
rule { name = e2e-off; enable = no; reject "disabled"; helo /^rule_/; }
EOF
}

# start_rmilter -> starts the daemon in the foreground (background job), waits
# for its port and then for its "started: listening" line (the port opens
# before the loop installs its signal events and their socketpair: a case that
# counts fds or sends a signal right away must not race that); returns 1 if it
# does not come up.
start_rmilter() {
	RMILTER_STARTS=$((RMILTER_STARTS + 1))
	echo "=== rmilter start #$RMILTER_STARTS ($(date '+%T')) ===" >>"$RLOG"
	# shellcheck disable=SC2086  # the wrapper is a command line
	$RMILTER_WRAPPER "$RMILTER_BIN" -n -c "$RCONF" >>"$RLOG" 2>&1 &
	RMILTER_PID=$!
	if ! "$PY" "$TOOLS/waitport.py" 127.0.0.1 "$MILTER_PORT" $((10 * SLOW)) >/dev/null; then
		if ! kill -0 "$RMILTER_PID" 2>/dev/null; then
			wait "$RMILTER_PID"
			echo "rmilter exited at startup with code $?; log tail:"
		else
			echo "rmilter did not open port $MILTER_PORT; log tail:"
		fi
		tail -15 "$RLOG" | sed 's/^/   | /'
		return 1
	fi
	local t0
	t0=$(now)
	until sed -n "/^=== rmilter start #$RMILTER_STARTS /,\$p" "$RLOG" | grep -q 'started: listening'; do
		fle $((10 * SLOW)) "$(elapsed "$t0")" && break
		sleep 0.05
	done
	return 0
}

# stop_rmilter [TIMEOUT] -> SIGTERM by PID, waits; sets RMILTER_RC (exit code,
# or "timeout" when it had to be SIGKILLed) and RMILTER_STOP_SECS.
stop_rmilter() {
	local to=${1:-$((5 * SLOW))} t0 pid=$RMILTER_PID
	RMILTER_RC=none
	RMILTER_STOP_SECS=0
	[ -n "$pid" ] || return 0
	t0=$(now)
	if kill -TERM "$pid" 2>/dev/null; then
		while kill -0 "$pid" 2>/dev/null && ! fle "$to" "$(elapsed "$t0")"; do
			# a zombie still answers kill -0: check the state
			[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
			sleep 0.05
		done
	fi
	RMILTER_STOP_SECS=$(elapsed "$t0")
	if kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		RMILTER_RC=timeout
	else
		wait "$pid" 2>/dev/null
		RMILTER_RC=$?
	fi
	RMILTER_PID=
	echo "=== rmilter stopped: rc=$RMILTER_RC after ${RMILTER_STOP_SECS}s ===" >>"$RLOG"
}

rmilter_alive() { [ -n "$RMILTER_PID" ] && kill -0 "$RMILTER_PID" 2>/dev/null; }

# After every case: if the daemon died, record it and start a new one so the
# remaining cases still test something.
ensure_rmilter() {
	if ! rmilter_alive; then
		local rc=none
		if [ -n "$RMILTER_PID" ]; then wait "$RMILTER_PID" 2>/dev/null; rc=$?; fi
		fail "daemon-alive-after-$1" "rmilter (pid ${RMILTER_PID:-none}) is gone, exit code $rc; log tail:"
		tail -15 "$RLOG" | sed 's/^/   | /'
		RMILTER_PID=
		start_rmilter || note "restart failed"
	fi
}

# log_mark -> remembers the current size of the daemon log; log_since prints
# what was appended after the mark.
log_mark() { LOG_MARK=$(stat -c %s "$RLOG"); }
log_since() { tail -c +$((LOG_MARK + 1)) "$RLOG"; }

# wait_log_since REGEX TIMEOUT -> true once a line appended since log_mark matches
wait_log_since() {
	local re=$1 to=$2 t0
	t0=$(now)
	while ! log_since | grep -vE "${LOG_ROUTINE:-^\$}" | grep -qiE -- "$re"; do
		fle "$to" "$(elapsed "$t0")" && return 1
		sleep 0.1
	done
	return 0
}

# ---- mail helpers -------------------------------------------------------

# send NAME [swaks args] -> runs swaks with a per-case HELO name; the transcript is
# in $TG/out/NAME.txt; sets SW_RC, SW_OUT and SW_QID (queue id, if queued).
send() {
	local name=$1
	shift
	SW_OUT="$TG/out/$name.txt"
	timeout 60 swaks --server "127.0.0.1:$SMTP_PORT" --helo "$name.client.test" \
		--timeout 40 "$@" >"$SW_OUT" 2>&1
	SW_RC=$?
	SW_QID=$(sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' "$SW_OUT" | tail -1)
}

# msg NAME [swaks args] -> send with the default envelope
msg() {
	local name=$1
	shift
	send "$name" --from sender@test.example --to rcpt@dest.example \
		--h-Subject "case $name" "$@"
}

# wait_maillog REGEX [TIMEOUT] -> true once Postfix's log has a matching line
wait_maillog() {
	local re=$1 to=${2:-15} t0
	t0=$(now)
	while ! grep -qE -- "$re" "$MAILLOG" 2>/dev/null; do
		fle "$to" "$(elapsed "$t0")" && return 1
		sleep 0.1
	done
	return 0
}

# wait_delivered QID -> true when Postfix logged status=sent for QID (then the
# sink file is complete); SINK_FILES is set to the sink files of that message.
wait_delivered() {
	local qid=$1
	SINK_FILES=()
	[ -n "$qid" ] || return 1
	wait_maillog "$qid: to=<.*status=sent" 20 || return 1
	local f
	for f in "$TG"/sink/*; do
		[ -f "$f" ] && grep -q "id $qid\b" "$f" && SINK_FILES+=("$f")
	done
	[ ${#SINK_FILES[@]} -gt 0 ]
}

# sink_header NAME -> header lines "NAME: value" of the delivered message(s)
sink_grep() { cat "${SINK_FILES[@]}" | tr -d '\r' | grep -E -- "$1"; }

# sink_body -> the body of the (first) delivered file, CR removed
sink_body() { tr -d '\r' <"${SINK_FILES[0]}" | sed '1,/^$/d'; }

# expect_reply TEXT -> the swaks transcript has a server line containing TEXT
expect_reply() { grep -E '^ *<(\*\*|-|~)' "$SW_OUT" | grep -qF -- "$1"; }

# show the lines of a transcript (for failure messages)
sw_replies() { grep -E '^ *<(\*\*|-|~)' "$SW_OUT" | tail -4 | tr '\n' '|'; }

# ---- teardown -----------------------------------------------------------

e2e_teardown() {
	local p
	[ "${TEARDOWN_DONE:-0}" = 1 ] && return 0
	TEARDOWN_DONE=1
	if [ -n "$RMILTER_PID" ]; then stop_rmilter 20; fi
	# the scanners and fake servers of peers.sh, if any were started
	if declare -F peers_stop >/dev/null; then peers_stop; fi
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	BG_PIDS=()
	if [ "${POSTFIX_STARTED:-0}" = 1 ]; then
		postfix -c "$TG/pf/conf" stop >/dev/null 2>&1
		local n=0
		while [ -n "${MASTER_PID:-}" ] && kill -0 "$MASTER_PID" 2>/dev/null && [ $n -lt 200 ]; do
			sleep 0.05; n=$((n + 1))
		done
		if [ -n "${MASTER_PID:-}" ] && kill -0 "$MASTER_PID" 2>/dev/null; then
			echo "# postfix master $MASTER_PID did not stop; SIGKILL"
			kill -KILL "$MASTER_PID" 2>/dev/null
		fi
		POSTFIX_STARTED=0
	fi
	if [ -n "${TG:-}" ] && [ -d "$TG" ]; then
		if [ "$E2E_FAILED" -gt 0 ] || [ "${E2E_KEEP:-0}" = 1 ]; then
			echo "# test ground kept: $TG"
		else
			rm -rf "$TG"
		fi
	fi
}
