# shellcheck shell=bash
# cases_beanstalk.sh -- e2e cases of the beanstalk module (sourced by run.sh): message
# headers, copies and spam copies put into a REAL beanstalkd started here (loopback, a
# free port of peers.sh's block, no binlog, -z 100000; stopped by its PID at the end),
# through the private Postfix + swaks, reserved with tools/bs_client.py and compared byte
# for byte with the message as Postfix delivered it to smtp-sink (or as swaks sent it);
# id_regexp, tube, the config checks of rmilter -t, JOB_TOO_BIG, beanstalkd down (mail
# unaffected, failures logged, recovery), a hanging server, the bounded queue (drops
# logged), and copy_probability = 10 over 2,000 messages sent with mload straight at
# the milter socket.  Every case is named beanstalk_*, so `bash test/e2e/run.sh
# beanstalk_` runs them all; beanstalkd is started once, only when one is selected.
#
# Every case puts its jobs into a tube of its own (bs-<case>-$TOKEN), so cases never
# see each other's jobs.  Knobs: BS_PROB_N (messages of the probability run, default
# 2000; 500 under a wrapper), BS_PROB_C (its concurrency, default 50).

BEANSTALK_CASES=(
	beanstalk_headers beanstalk_id_regexp beanstalk_copy beanstalk_refused
	beanstalk_spam beanstalk_tube beanstalk_config beanstalk_job_too_big
	beanstalk_down beanstalk_hang beanstalk_queue_drops beanstalk_probability
	beanstalk_shutdown
)

BS_JOB_MAX=100000	# beanstalkd -z: the JOB_TOO_BIG case sends more

# ---- setup ------------------------------------------------------------------------

beanstalk_wanted() {
	local c
	for c in "${BEANSTALK_CASES[@]}"; do
		want "$c" && return 0
	done
	return 1
}

# bs_start [PORT] -> beanstalkd on 127.0.0.1:PORT (default: a new free port), in memory
# only; sets BS_PORT and BS_PID; false with BS_WHY set if it does not come up
bs_start() {
	local port=${1:-}
	if [ -z "$port" ]; then
		peer_port port || { BS_WHY="no free port for beanstalkd"; return 1; }
	fi
	beanstalkd -l 127.0.0.1 -p "$port" -z "$BS_JOB_MAX" >>"$BS_DIR/beanstalkd.log" 2>&1 &
	BS_PID=$!
	BG_PIDS+=("$BS_PID")	# e2e_teardown's safety net; bs_stop is the normal way
	BS_PORT=$port
	if ! "$PY" "$TOOLS/waitport.py" 127.0.0.1 "$port" 10 >/dev/null; then
		BS_WHY="beanstalkd on port $port did not come up: $(tail -3 "$BS_DIR/beanstalkd.log" | tr '\n' '|')"
		bs_stop
		return 1
	fi
}

# bs_stop -> SIGTERM by PID (beanstalkd exits at once), wait until it is gone
bs_stop() {
	local n
	[ -n "${BS_PID:-}" ] || return 0
	kill -TERM "$BS_PID" 2>/dev/null
	for n in $(seq 100); do kill -0 "$BS_PID" 2>/dev/null || break; sleep 0.02; done
	kill -KILL "$BS_PID" 2>/dev/null
	wait "$BS_PID" 2>/dev/null
	BS_PID=
}

# beanstalk_setup -> beanstalkd up, mload built, the daemon restarted with a control
# socket (rmilter -s); false (after reporting) if not possible
beanstalk_setup() {
	if ! command -v beanstalkd >/dev/null 2>&1; then
		if is_ci; then fail beanstalk_peers "missing: beanstalkd"; else echo "skip beanstalk_*: missing beanstalkd"; fi
		return 1
	fi
	BS_DIR=$TG/beanstalk
	mkdir -p "$BS_DIR"
	_peers_dir || { fail beanstalk_peers "no directory for the peers"; return 1; }
	# a new port per try (see bs_fake)
	bs_start || bs_start || bs_start || { fail beanstalk_peers "$BS_WHY"; return 1; }
	note "beanstalkd 127.0.0.1:$BS_PORT (pid $BS_PID, -z $BS_JOB_MAX, no binlog)"
	if ! cc -O2 -Wall -Wextra -Werror -o "$BS_DIR/mload" "$ROOT/test/bench/mload.c" \
			>"$BS_DIR/mload.build" 2>&1; then
		fail beanstalk_mload_build "$(head -5 "$BS_DIR/mload.build" | tr '\n' '|')"
		BS_MLOAD=
	else
		BS_MLOAD=$BS_DIR/mload
	fi
	log_mark
	if ! conf_or_fail beanstalk_setup "$(bs_conf "")" --restart; then
		bs_stop
		return 1
	fi
	# the port opens before the daemon handles SIGHUP (a HUP in between kills it,
	# which a daemon under valgrind makes likely): wait for its "started" line
	wait_log_since 'started: listening' $((10 * SLOW)) ||
		note "no 'started: listening' line from the restarted daemon"
}

# beanstalk_run_all -> run.sh hook: the beanstalk_* cases, then the base config again
beanstalk_run_all() {
	beanstalk_wanted || return 0
	beanstalk_setup || return 0
	local c t0
	t0=$(now)
	for c in "${BEANSTALK_CASES[@]}"; do
		run_case "$c"
	done
	scan_restore
	bs_stop
	note "beanstalk_* took $(elapsed "$t0")s"
}

# ---- config and helpers --------------------------------------------------------------

# bs_conf LINES -> the global lines every beanstalk config has (the control socket, so
# the daemon must be restarted to get it) and a beanstalk { } section with LINES
bs_conf() {
	printf 'control_socket = "%s";\n' "$BS_DIR/ctl"
	[ -n "$1" ] && printf 'beanstalk {\n  connect_timeout = 1s;\n  timeout = 2s;\n%s\n}\n' "$1"
}

bs_srv() { echo "127.0.0.1:$BS_PORT"; }

# bs_tube NAME -> BS_TUBE: the case's own tube
bs_tube() { BS_TUBE="bs-$1-$TOKEN"; }

bs() { "$PY" "$TOOLS/bs_client.py" "$@"; }

# bs_fake NAME MODE PROTO -> fake_start, up to 3 tries: the port block may lie in the
# ephemeral range, where a port that takes no connections can still be some client
# socket's local port (bind fails); each try takes a new port
bs_fake() {
	local i
	for i in 1 2 3; do
		fake_start "$@" >>"$BS_DIR/fake_start.log" 2>&1 && return 0
	done
	return 1
}

# bs_drain NAME TUBE -> reserve and delete every job of TUBE into $BS_DIR/NAME/job.N;
# BS_NJOBS, BS_INFO (ID:SIZE:PRI:TTR ...)
bs_drain() {
	local out
	rm -rf "${BS_DIR:?}/$1"
	mkdir -p "$BS_DIR/$1"
	out=$(bs "$BS_PORT" drain "$2" "$BS_DIR/$1" 2>&1) || { BS_NJOBS=-1; BS_INFO=$out; return 1; }
	BS_NJOBS=${out%% *}
	BS_INFO=${out#* }
}

# bs_wait TUBE N [TIMEOUT] -> true once TUBE holds N ready jobs
bs_wait() { BS_COUNT=$(bs "$BS_PORT" wait "$1" "$2" "${3:-$((5 * SLOW))}"); }

# bs_check NAME JOB ARGS... -> tools/bs_client.py check; a failure of case NAME
bs_check() {
	local name=$1 job=$2 out
	shift 2
	if out=$("$PY" "$TOOLS/bs_client.py" check "$job" "$@" 2>&1); then
		BS_CHECK=$out
		return 0
	fi
	fail "$name" "job $(basename "$job") is not the message: $out"
	return 1
}

# bs_counters -> BSC_<kind>_<sent|failed|dropped> from rmilter -s
bs_counters() {
	local line k
	BS_STATS=$(timeout 10 "$RMILTER_BIN" -s -c "$RCONF" 2>&1)
	for k in headers copy spam; do
		line=$(printf '%s\n' "$BS_STATS" | grep "^beanstalk $k: ")
		printf -v "BSC_${k}_sent" %s "$(printf '%s' "$line" | sed -n 's/.* sent \([0-9]*\).*/\1/p')"
		printf -v "BSC_${k}_failed" %s "$(printf '%s' "$line" | sed -n 's/.* failed \([0-9]*\).*/\1/p')"
		printf -v "BSC_${k}_dropped" %s "$(printf '%s' "$line" | sed -n 's/.* dropped \([0-9]*\).*/\1/p')"
	done
	BSC_inflight=$(printf '%s\n' "$BS_STATS" | sed -n 's/^beanstalk queue: inflight \([0-9]*\).*/\1/p')
}

# bs_log_wait REGEX [TIMEOUT] -> a daemon log line since log_mark matches REGEX
bs_log_wait() { wait_log_since "$1" "${2:-$((5 * SLOW))}"; }

# a message file with CRLF line ends (for swaks --data): headers, a blank line, a body
bs_make_data() {
	local f=$1 subject=$2 body_lines=${3:-3}
	"$PY" - "$f" "$subject" "$body_lines" <<'EOF'
import sys
f, subject, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = ("Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
     "From: sender@test.example\r\nTo: rcpt@dest.example\r\nSubject: %s\r\n"
     "Message-ID: <%s@bs.test.example>\r\nX-Folded: first part\r\n\tsecond part\r\n"
     % (subject, subject.replace(" ", "-")))
b = "".join("body line %d of %s: \t trailing blanks stay   \r\n" % (i, subject) for i in range(n))
open(f, "wb").write((h + "\r\n" + b + "\r\n").encode())
EOF
}

# ---- headers, id_regexp, copies ---------------------------------------------------------

case_beanstalk_headers() {
	local n=beanstalk_headers
	bs_tube headers
	conf_or_fail $n "$(bs_conf "  servers = $(bs_srv);
  send_beanstalk_headers = yes;
  tube = \"$BS_TUBE\";
  lifetime = 60s;")" || return
	msg $n --body "headers case $TOKEN"
	expect_delivered $n || return
	bs_wait "$BS_TUBE" 1 || { fail $n "no job in tube $BS_TUBE within 5 s (count $BS_COUNT): $(log_since | grep beanstalk | tail -2 | tr '\n' '|')"; return; }
	sleep 0.2
	bs_drain $n "$BS_TUBE"
	[ "$BS_NJOBS" = 1 ] || { fail $n "$BS_NJOBS jobs in $BS_TUBE, want 1: $BS_INFO"; return; }
	# put 1025 0 <lifetime>: priority and TTR
	case $BS_INFO in
	*:1025:60) ;;
	*) fail $n "job pri/ttr '$BS_INFO', want pri 1025 ttr 60"; return ;;
	esac
	bs_check $n "$BS_DIR/$n/job.1" --sink "${SINK_FILES[0]}" --headers || return
	ok $n
	note "headers job: $BS_CHECK (the sink's message up to the blank line)"
}

case_beanstalk_id_regexp() {
	local n=beanstalk_id_regexp
	bs_tube idre
	conf_or_fail $n "$(bs_conf "  servers = $(bs_srv);
  send_beanstalk_headers = yes;
  tube = \"$BS_TUBE\";
  id_regexp = /@thread\\.bs\\.example>\$/i;")" || return
	# In-Reply-To matches: the whole message
	msg ${n}_match --header "In-Reply-To: <abc.$TOKEN@THREAD.bs.example>" --body "reply in the thread $TOKEN"
	expect_delivered ${n}_match || return
	bs_wait "$BS_TUBE" 1 || { fail ${n}_match "no job within 5 s"; return; }
	bs_drain ${n}_match "$BS_TUBE"
	[ "$BS_NJOBS" = 1 ] || { fail ${n}_match "$BS_NJOBS jobs, want 1: $BS_INFO"; return; }
	bs_check ${n}_match "$BS_DIR/${n}_match/job.1" --sink "${SINK_FILES[0]}" || return
	ok ${n}_match
	note "In-Reply-To matches id_regexp: $BS_CHECK (the whole message)"
	# no match: only the headers
	msg ${n}_other --header "In-Reply-To: <abc.$TOKEN@other.example>" --body "reply elsewhere $TOKEN"
	expect_delivered ${n}_other || return
	bs_wait "$BS_TUBE" 1 || { fail ${n}_other "no job within 5 s"; return; }
	bs_drain ${n}_other "$BS_TUBE"
	[ "$BS_NJOBS" = 1 ] || { fail ${n}_other "$BS_NJOBS jobs, want 1: $BS_INFO"; return; }
	bs_check ${n}_other "$BS_DIR/${n}_other/job.1" --sink "${SINK_FILES[0]}" --headers || return
	ok ${n}_other
}

case_beanstalk_copy() {
	local n=beanstalk_copy data
	bs_tube copy
	conf_or_fail $n "$(bs_conf "  copy_server = $(bs_srv);
  send_beanstalk_copy = yes;
  tube = \"$BS_TUBE\";")" || return
	data=$BS_DIR/copy.eml
	bs_make_data "$data" "copy $TOKEN" 200	# ~12 KB: more than the test policy's 4 KB
	smsg $n --data "$data"
	expect_delivered $n || return
	bs_wait "$BS_TUBE" 1 || { fail $n "no job within 5 s"; return; }
	sleep 0.2
	bs_drain $n "$BS_TUBE"
	[ "$BS_NJOBS" = 1 ] || { fail $n "$BS_NJOBS jobs, want 1: $BS_INFO"; return; }
	bs_check $n "$BS_DIR/$n/job.1" --sink "${SINK_FILES[0]}" || return
	local vs_sink=$BS_CHECK
	bs_check $n "$BS_DIR/$n/job.1" --data "$data" || return
	ok $n
	note "copy job: $vs_sink, equal to the sink's message (without Postfix's Received:, which milters never see) and to the $(stat -c %s "$data") bytes swaks sent"
}

# refused mail gets no headers and no copy (only delivered mail does)
case_beanstalk_refused() {
	local n=beanstalk_refused
	bs_tube refused
	conf_or_fail $n "$(bs_conf "  servers = $(bs_srv);
  copy_server = $(bs_srv);
  send_beanstalk_headers = yes;
  send_beanstalk_copy = yes;
  tube = \"$BS_TUBE\";")" || return
	msg ${n}_reject --header "X-Rmilter-Test: reject" --body "refused $TOKEN"
	expect_refused ${n}_reject "550 5.7.1" || return
	msg ${n}_ok --body "delivered $TOKEN"
	expect_delivered ${n}_ok || return
	bs_wait "$BS_TUBE" 2 || { fail $n "not 2 jobs for the delivered message (count $BS_COUNT)"; return; }
	sleep $((SLOW))
	bs_drain $n "$BS_TUBE"
	[ "$BS_NJOBS" = 2 ] || { fail $n "$BS_NJOBS jobs, want 2 (headers and copy of the delivered message only): $BS_INFO"; return; }
	if grep -l "refused $TOKEN" "$BS_DIR/$n"/job.* >/dev/null 2>&1; then
		fail $n "a job holds the refused message"
		return
	fi
	ok $n
}

# ---- spam copies ----------------------------------------------------------------------------

case_beanstalk_spam() {
	local n=beanstalk_spam data fake=bs-rspamd
	bs_tube spam
	bs_fake $fake spam rspamd || { fail $n "fake rspamd did not start"; return; }
	conf_or_fail $n "$(bs_conf "  spam_server = $(bs_srv);
  send_beanstalk_spam = yes;
  tube = \"$BS_TUBE\";")
rspamd {
  servers = $(fake_addr $fake);
  connect_timeout = 1s; results_timeout = 2s; retry_count = 1;
}" || { fake_stop $fake; return; }
	# rspamd rejects: the message is refused, its copy goes to spam_server
	data=$BS_DIR/spam.eml
	bs_make_data "$data" "spam $TOKEN" 5
	smsg ${n}_reject --data "$data"
	expect_refused ${n}_reject "554 5.7.1" || { fake_stop $fake; return; }
	if ! bs_wait "$BS_TUBE" 1; then
		fail ${n}_reject "no spam job within 5 s: $(grep beanstalk "$RLOG" | tail -2 | tr '\n' '|')"
		fake_stop $fake
		return
	fi
	bs_drain ${n}_reject "$BS_TUBE"
	if [ "$BS_NJOBS" = 1 ] && bs_check ${n}_reject "$BS_DIR/${n}_reject/job.1" --data "$data"; then
		ok ${n}_reject
		note "spam job of a rejected message: $BS_CHECK, what swaks sent"
	elif [ "$BS_NJOBS" != 1 ]; then
		fail ${n}_reject "$BS_NJOBS jobs, want 1: $BS_INFO"
	fi
	# "no action": delivered, no spam job
	fake_mode $fake ok
	msg ${n}_ham --body "ham $TOKEN"
	expect_delivered ${n}_ham || { fake_stop $fake; return; }
	sleep 0.5
	BS_COUNT=$(bs "$BS_PORT" count "$BS_TUBE")
	if [ "$BS_COUNT" = 0 ]; then
		ok ${n}_ham
	else
		fail ${n}_ham "$BS_COUNT spam jobs for a message rspamd did not act on"
	fi
	fake_stop $fake
}

# ---- tube and config checks ---------------------------------------------------------------------

case_beanstalk_tube() {
	local n=beanstalk_tube d0 d1
	# no tube: beanstalkd's "default"
	conf_or_fail $n "$(bs_conf "  servers = $(bs_srv);
  send_beanstalk_headers = yes;")" || return
	bs_drain ${n}_pre default	# whatever was there
	msg ${n}_default --body "default tube $TOKEN"
	expect_delivered ${n}_default || return
	bs_wait default 1 || { fail ${n}_default "no job in tube default"; return; }
	bs_drain ${n}_default default
	[ "$BS_NJOBS" = 1 ] && bs_check ${n}_default "$BS_DIR/${n}_default/job.1" --sink "${SINK_FILES[0]}" --headers &&
		ok ${n}_default
	# a tube: the job goes there, nothing to "default"
	bs_tube named
	conf_or_fail $n "$(bs_conf "  servers = $(bs_srv);
  send_beanstalk_headers = yes;
  tube = \"$BS_TUBE\";")" || return
	d0=$(bs "$BS_PORT" count default)
	msg ${n}_named --body "named tube $TOKEN"
	expect_delivered ${n}_named || return
	bs_wait "$BS_TUBE" 1 || { fail ${n}_named "no job in tube $BS_TUBE"; return; }
	d1=$(bs "$BS_PORT" count default)
	bs_drain ${n}_named "$BS_TUBE"
	if [ "$BS_NJOBS" = 1 ] && [ "$d0" = "$d1" ]; then
		ok ${n}_named
	else
		fail ${n}_named "$BS_NJOBS jobs in $BS_TUBE (want 1), tube default $d0 -> $d1 (want no change)"
	fi
}

# rmilter -t: a bad tube is an error with file:line; flags without servers (and the other
# way round) and spam copies without a scanner are warnings with file:line
case_beanstalk_config() {
	local n=beanstalk_config f=$BS_DIR/check.conf out rc
	printf 'bind_socket = "inet:1@127.0.0.1";\n# line 2\nbeanstalk {\n  servers = 127.0.0.1:1;\n  send_beanstalk_headers = yes;\n  tube = "bad tube!";\n}\n' >"$f"
	out=$("$RMILTER_BIN" -t -c "$f" 2>&1); rc=$?
	if [ $rc = 1 ] && printf '%s' "$out" | grep -qE "check\.conf:3: error: .*tube.*bad tube!"; then
		ok ${n}_bad_tube
	else
		fail ${n}_bad_tube "rmilter -t rc=$rc, want 1 with 'check.conf:3: error: ... tube': $(printf '%s' "$out" | head -3 | tr '\n' '|')"
	fi
	printf 'bind_socket = "inet:1@127.0.0.1";\nbeanstalk {\n  send_beanstalk_copy = yes;\n  spam_server = 127.0.0.1:1;\n  send_beanstalk_spam = yes;\n  servers = 127.0.0.1:1;\n}\n' >"$f"
	out=$("$RMILTER_BIN" -t -c "$f" 2>&1); rc=$?
	if [ $rc = 0 ] &&
		printf '%s' "$out" | grep -qE "check\.conf:2: warning: beanstalk: send_beanstalk_copy = yes but copy_server is empty" &&
		printf '%s' "$out" | grep -qE "check\.conf:2: warning: beanstalk: servers is set but send_beanstalk_headers = no" &&
		printf '%s' "$out" | grep -qE "check\.conf:2: warning: beanstalk: send_beanstalk_spam = yes but no spam scanner"; then
		ok ${n}_warnings
	else
		fail ${n}_warnings "rmilter -t rc=$rc, want 0 with three check.conf:2 warnings: $(printf '%s' "$out" | grep -i beanstalk | head -4 | tr '\n' '|')"
	fi
}

# ---- failures: the mail is never affected ------------------------------------------------------

# beanstalkd answers JOB_TOO_BIG (-z): the job fails, logged; the mail is delivered
case_beanstalk_job_too_big() {
	local n=beanstalk_job_too_big data
	bs_tube big
	conf_or_fail $n "$(bs_conf "  copy_server = $(bs_srv);
  send_beanstalk_copy = yes;
  tube = \"$BS_TUBE\";")" || return
	data=$BS_DIR/big.eml
	bs_make_data "$data" "big $TOKEN" 3000	# ~170 KB > -z 100000
	log_mark
	smsg $n --data "$data"
	expect_delivered $n || return
	if ! bs_log_wait "beanstalk: copy job of [0-9]+ bytes .* failed .*JOB_TOO_BIG"; then
		fail $n "no 'copy job ... failed ... JOB_TOO_BIG' log line: $(log_since | grep beanstalk | tail -2 | tr '\n' '|')"
		return
	fi
	[ "$(bs "$BS_PORT" count "$BS_TUBE")" = 0 ] || { fail $n "a job was stored"; return; }
	ok $n
	note "log: $(log_since | grep -oE 'beanstalk: copy job .*JOB_TOO_BIG[^)]*' | head -1 | cut -c1-200)"
}

# beanstalkd stopped: mail passes at once, every failed job is logged; started again on
# the same port: jobs arrive again
case_beanstalk_down() {
	local n=beanstalk_down i ok_all=1 secs port=$BS_PORT
	bs_tube down
	conf_or_fail $n "$(bs_conf "  servers = $(bs_srv);
  send_beanstalk_headers = yes;
  tube = \"$BS_TUBE\";
  maxerrors = 2; error_time = 10s; dead_time = 1s;")" || return
	bs_stop
	log_mark
	for i in 1 2 3; do
		smsg ${n}_$i --h-Subject "down $i" --body "beanstalkd is down $TOKEN"
		expect_delivered ${n}_$i || { ok_all=0; break; }
		secs=$SW_SECS
		fle "$secs" $((2 * SLOW)) || { fail ${n}_$i "took ${secs}s with beanstalkd down"; ok_all=0; }
	done
	if [ $ok_all = 1 ] && bs_log_wait "headers job .*failed.*(refused|dead)" &&
		[ "$(log_since | grep -cE 'beanstalk: headers job .*failed')" -ge 3 ]; then
		ok ${n}_mail_passes
		note "3 messages delivered (last in ${secs}s); $(log_since | grep -cE 'beanstalk: headers job .*failed') failed jobs logged, e.g. $(log_since | grep -oE 'beanstalk: headers job .*failed.*' | tail -1 | cut -c1-160)"
	elif [ $ok_all = 1 ]; then
		fail ${n}_mail_passes "not 3 'headers job ... failed' log lines: $(log_since | grep beanstalk | tail -3 | tr '\n' '|')"
	fi
	bs_start "$port" || { fail $n "beanstalkd did not start again on $port: $BS_WHY"; return; }
	sleep 1.2	# dead_time: the next job probes the server
	smsg ${n}_back --h-Subject "back" --body "beanstalkd is back $TOKEN"
	expect_delivered ${n}_back || return
	if bs_wait "$BS_TUBE" 1; then
		ok ${n}_recovers
	else
		fail ${n}_recovers "no job after beanstalkd came back: $(log_since | grep beanstalk | tail -2 | tr '\n' '|')"
	fi
	bs_drain ${n}_back "$BS_TUBE"
}

# a server that accepts and never answers: the mail does not wait; the job times out
case_beanstalk_hang() {
	local n=beanstalk_hang fake=bs-hang
	bs_fake $fake hang clamd || { fail $n "fake server did not start"; return; }
	conf_or_fail $n "$(bs_conf "  servers = $(fake_addr $fake);
  send_beanstalk_headers = yes;
  maxerrors = 1000;")" || { fake_stop $fake; return; }
	log_mark
	smsg $n --h-Subject "hang" --body "beanstalkd hangs $TOKEN"
	expect_delivered $n || { fake_stop $fake; return; }
	if ! fle "$SW_SECS" $((1 * SLOW)); then
		fail $n "the message took ${SW_SECS}s with a hanging beanstalk server"
	elif bs_log_wait "beanstalk: headers job .*failed .*timed out" $((6 * SLOW)); then
		ok $n
		note "delivered in ${SW_SECS}s; $(log_since | grep -oE 'beanstalk: headers job .*failed.*' | head -1 | cut -c1-200)"
	else
		fail $n "no 'headers job ... failed ... timed out' log line: $(log_since | grep beanstalk | tail -2 | tr '\n' '|')"
	fi
	fake_stop $fake
}

# the bounded queue: max_queue jobs in flight (a hanging server holds them), the next are
# dropped and logged; a job over max_queue_bytes is dropped too; the mail always passes
case_beanstalk_queue_drops() {
	local n=beanstalk_queue_drops fake=bs-hang2 i drops
	bs_fake $fake hang clamd || { fail $n "fake server did not start"; return; }
	conf_or_fail $n "$(bs_conf "  servers = $(fake_addr $fake);
  send_beanstalk_headers = yes;
  maxerrors = 1000;
  max_queue = 2;")
beanstalk { timeout = $((8 * SLOW))s; }" || { fake_stop $fake; return; }
	log_mark
	for i in 1 2 3 4; do
		smsg ${n}_$i --h-Subject "queue $i" --body "queue $i $TOKEN"
		expect_delivered ${n}_$i || { fake_stop $fake; return; }
	done
	drops=$(log_since | grep -cE 'beanstalk: headers job .*dropped: 2 jobs in flight \(max_queue\)')
	if [ "$drops" = 2 ]; then
		ok ${n}_max_queue
		note "4 messages delivered, 2 jobs in flight, $drops dropped: $(log_since | grep -oE 'beanstalk: headers job .*dropped.*' | head -1 | cut -c1-200)"
	else
		fail ${n}_max_queue "$drops 'dropped: 2 jobs in flight (max_queue)' lines, want 2: $(log_since | grep beanstalk | tail -3 | tr '\n' '|')"
	fi
	fake_stop $fake	# the two jobs fail now (connection closed)
	bs_tube bytes
	conf_or_fail $n "$(bs_conf "  copy_server = $(bs_srv);
  send_beanstalk_copy = yes;
  tube = \"$BS_TUBE\";
  max_queue_bytes = 2k;")" || return
	log_mark
	bs_make_data "$BS_DIR/bytes.eml" "bytes $TOKEN" 100
	smsg ${n}_bytes --data "$BS_DIR/bytes.eml"
	expect_delivered ${n}_bytes || return
	if bs_log_wait 'beanstalk: copy job of [0-9]+ bytes .*dropped: .*max_queue_bytes is 2048'; then
		ok ${n}_max_queue_bytes
	else
		fail ${n}_max_queue_bytes "no 'copy job ... dropped ... max_queue_bytes' line: $(log_since | grep beanstalk | tail -2 | tr '\n' '|')"
	fi
}

# ---- copy_probability -------------------------------------------------------------------------------

# copy_probability = 10 over N messages (mload straight at the milter socket): the number
# of copies is binomial(N, 0.1); it must be within 4 standard deviations of N/10
# (false failure rate ~6e-5).  Every job is accounted for: sent = jobs in the tube, no
# failures, no drops.
case_beanstalk_probability() {
	local n=beanstalk_probability N C t0 secs sent0 sent1 got lo hi sd
	[ -n "$BS_MLOAD" ] || { fail $n "no mload"; return; }
	if [ -n "$RMILTER_WRAPPER" ]; then N=${BS_PROB_N:-500}; else N=${BS_PROB_N:-2000}; fi
	C=${BS_PROB_C:-50}
	bs_tube prob
	conf_or_fail $n "$(bs_conf "  copy_server = $(bs_srv);
  send_beanstalk_copy = yes;
  copy_probability = 10;
  tube = \"$BS_TUBE\";")" || return
	bs_counters
	sent0=${BSC_copy_sent:-0}
	local d0=${BSC_copy_dropped:-0} f0=${BSC_copy_failed:-0}
	t0=$(now)
	(ulimit -n 65536 2>/dev/null || true
	 exec "$BS_MLOAD" -s "inet:$MILTER_PORT@127.0.0.1" -j -f -t $((120 * SLOW)) -c "$C" -n "$N" \
		-F "prob%m-$TOKEN@src.example" -R "prob%m@dest.example") >"$BS_DIR/prob.json" 2>"$BS_DIR/prob.err"
	secs=$(elapsed "$t0")
	msum "$BS_DIR/prob.json"
	# shellcheck disable=SC2154  # MS_* are set by msum
	if [ "$MS_errors" != 0 ] || [ "$MS_accepted" != "$N" ]; then
		fail $n "mload: $MS_accepted of $N accepted, $MS_errors errors: $(head -3 "$BS_DIR/prob.err" | tr '\n' '|')"
		return
	fi
	# every job has ended
	t0=$(now)
	while :; do
		bs_counters
		[ "${BSC_inflight:-1}" = 0 ] && break
		fle $((10 * SLOW)) "$(elapsed "$t0")" && break
		sleep 0.2
	done
	sent1=${BSC_copy_sent:-0}
	got=$(bs "$BS_PORT" count "$BS_TUBE")
	sd=$(awk -v n="$N" 'BEGIN { printf "%.1f", sqrt(n * 0.1 * 0.9) }')
	lo=$(awk -v n="$N" -v s="$sd" 'BEGIN { printf "%d", n * 0.1 - 4 * s + 0.999 }')
	hi=$(awk -v n="$N" -v s="$sd" 'BEGIN { printf "%d", n * 0.1 + 4 * s }')
	note "$N messages at c=$C in ${secs}s: $got copies ($(awk -v g="$got" -v n="$N" 'BEGIN { printf "%.2f", 100 * g / n }') %), expected $((N / 10)) +- 4 sd ($sd): $lo..$hi; rmilter -s: copy sent $sent0 -> $sent1, failed ${BSC_copy_failed}, dropped ${BSC_copy_dropped}"
	if [ "$got" -lt "$lo" ] || [ "$got" -gt "$hi" ]; then
		fail $n "$got copies of $N messages with copy_probability = 10: outside $lo..$hi (N/10 +- 4 sd)"
	elif [ $((sent1 - sent0)) != "$got" ] || [ "$BSC_copy_failed" != "$f0" ] || [ "$BSC_copy_dropped" != "$d0" ]; then
		fail $n "rmilter -s says $((sent1 - sent0)) copies sent (tube has $got), failed $f0 -> $BSC_copy_failed, dropped $d0 -> $BSC_copy_dropped"
	else
		ok $n
	fi
	if printf '%s\n' "$BS_STATS" | grep -qE "^upstream beanstalk_copy 127\.0\.0\.1:$BS_PORT: alive requests [0-9]+"; then
		ok ${n}_stats
		note "rmilter -s: $(printf '%s\n' "$BS_STATS" | grep -E '^beanstalk copy|^beanstalk queue|^upstream beanstalk_copy' | tr '\n' '|' | cut -c1-300)"
	else
		fail ${n}_stats "no 'upstream beanstalk_copy ...' line in rmilter -s: $(printf '%s\n' "$BS_STATS" | grep -i beanstalk | tr '\n' '|')"
	fi
	bs_drain ${n}_jobs "$BS_TUBE" >/dev/null
}

# ---- shutdown -----------------------------------------------------------------------------------------

# SIGTERM with a job in flight (a hanging server): the daemon waits up to 2 s for it,
# then drops it (logged), frees everything and exits 0; then a new daemon for the rest
case_beanstalk_shutdown() {
	local n=beanstalk_shutdown fake=bs-hang3
	bs_fake $fake hang clamd || { fail $n "fake server did not start"; return; }
	conf_or_fail $n "$(bs_conf "  servers = $(fake_addr $fake);
  send_beanstalk_headers = yes;
  maxerrors = 1000;")
beanstalk { timeout = 30s; }" || { fake_stop $fake; return; }
	smsg $n --h-Subject "shutdown" --body "shutdown with a job in flight $TOKEN"
	expect_delivered $n || { fake_stop $fake; return; }
	log_mark
	stop_rmilter $((10 * SLOW))
	if [ "$RMILTER_RC" != 0 ]; then
		fail $n "SIGTERM: exit code $RMILTER_RC after ${RMILTER_STOP_SECS}s"
	elif ! log_since | grep -qE 'beanstalk: waiting up to 2\.0 s for 1 job in flight' ||
		! log_since | grep -qE 'beanstalk: 1 job \([0-9]+ bytes\) still in flight at exit dropped'; then
		fail $n "no 'waiting ... 1 job in flight' and '1 job ... dropped' lines: $(log_since | grep beanstalk | tail -3 | tr '\n' '|')"
	elif ! fle "$RMILTER_STOP_SECS" $((4 * SLOW)); then
		fail $n "the daemon took ${RMILTER_STOP_SECS}s to stop (2 s grace)"
	else
		ok $n
		note "stopped in ${RMILTER_STOP_SECS}s with the job dropped after the 2 s grace"
	fi
	fake_stop $fake
	write_conf "$(bs_conf "")"
	log_mark
	start_rmilter >/dev/null || { fail $n "the daemon did not start again"; return; }
	wait_log_since 'started: listening' $((10 * SLOW)) || true
}
