# cases_scanners.sh -- e2e cases of the scanner clients (sourced by run.sh):
# rspamd (HTTP /checkv2), SpamAssassin spamd (SPAMC/1.5) and clamd (INSTREAM), each
# against the REAL server started by peers.sh, through the private Postfix + swaks,
# plus fault injection with tools/fake_upstream.py (refused, closed, hanging,
# dripping, garbage, cut and huge replies), server pools (dead marking, probing,
# revival), retries, descriptor leaks and other sessions going on while one scan
# hangs.  Every case is named scan_*, so `bash test/e2e/run.sh scan` runs them all;
# the peers are started once, and only when at least one scan_* case is selected.
#
# Config: scan_conf writes the daemon config with extra sections (write_conf) and
# makes the daemon load it (SIGHUP, or a restart with --restart); scan_restore goes
# back to the base config.  A config the daemon refuses (`rmilter -t`) fails the case
# with the daemon's message instead of testing the old config.

SCAN_CASES=(
	scan_rspamd_gtube scan_rspamd_ham scan_rspamd_add_header scan_rspamd_rewrite_subject
	scan_rspamd_reject_message scan_rspamd_unix scan_rspamd_legacy scan_rspamd_whitelist
	scan_spamd_gtube scan_spamd_ham scan_spamd_levels scan_spamd_legacy
	scan_clamav_eicar_tcp scan_clamav_eicar_unix scan_clamav_hostname scan_clamav_marker scan_clamav_clean
	scan_clamav_header scan_clamav_discard scan_clamav_quarantine
	scan_fault_rspamd scan_fault_spamd scan_fault_clamav
	scan_retry_count scan_pool_dead_revive scan_pool_master_slave scan_hang_concurrency
)

GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
# modes of fake_upstream.py that must count as a failed scan
SCAN_FAULT_MODES=(refuse close reset hang drip garbage cut huge)

# ---- setup ------------------------------------------------------------------------

# scan_wanted -> true if any scan_* case is selected by the run's patterns
scan_wanted() {
	local c
	for c in "${SCAN_CASES[@]}"; do
		want "$c" && return 0
	done
	return 1
}

# scan_setup -> starts the peers once; false (after reporting) if they cannot run
scan_setup() {
	[ "${SCAN_READY:-0}" = 1 ] && return 0
	if ! peers_prereq; then
		if is_ci; then fail scan_peers "$PEERS_WHY"; else echo "skip scan_*: $PEERS_WHY"; fi
		return 1
	fi
	if ! peers_start; then
		if is_ci; then
			fail scan_peers "$PEERS_WHY"
		else
			fail scan_peers "$PEERS_WHY (tools are installed, so this is a failure)"
		fi
		peers_stop
		return 1
	fi
	note "peers up in ${PEERS_START_SECS}s: ${PEERS_READY_AT[*]}"
	note "dns :$DNS_PORT rspamd :$RSPAMD_PORT + $RSPAMD_SOCK, spamd :$SPAMD_PORT, clamd :$CLAMD_PORT + $CLAMD_SOCK"
	SCAN_DIR=$TG/scan
	mkdir -p "$SCAN_DIR"
	"$PY" - "$SCAN_DIR" <<'EOF'
import sys, base64
d = sys.argv[1]
eicar = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
def mime(subject, payload, name):
    return (b"From: sender@test.example\r\nTo: rcpt@dest.example\r\nSubject: " + subject.encode() +
            b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
            b"--XX\r\nContent-Type: application/octet-stream; name=" + name.encode() +
            b"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=" +
            name.encode() + b"\r\n\r\n" + base64.encodebytes(payload).replace(b"\n", b"\r\n") +
            b"--XX--\r\n")
open(f"{d}/eicar.eml", "wb").write(mime("eicar attached", eicar, "eicar.com"))
open(f"{d}/clean_att.eml", "wb").write(mime("clean attachment", b"just some harmless bytes\n" * 40, "notes.txt"))
open(f"{d}/marker.eml", "wb").write(
    b"From: sender@test.example\r\nTo: rcpt@dest.example\r\nSubject: marker\r\n\r\n"
    b"hello MILTER-TEST-VIRUS-MARKER-7f3a bye\r\n")
EOF
	SCAN_READY=1
}

# scan_run_all -> run.sh hook: the scan_* cases (peers started once, stopped at teardown)
scan_run_all() {
	scan_wanted || return 0
	scan_setup || return 0
	local c
	for c in "${SCAN_CASES[@]}"; do
		run_case "$c"
	done
	scan_restore
}

# ---- config ---------------------------------------------------------------------------

# scan_conf [--restart] SECTIONS -> the base config plus SECTIONS; checked with -t
# first; loaded with SIGHUP (or a daemon restart).  False with SCAN_CONF_ERR set if
# the daemon refuses the config.
scan_conf() {
	local restart=0 out
	if [ "$1" = --restart ]; then restart=1; shift; fi
	write_conf "$1"
	SCAN_CONF_ERR=
	if ! out=$(timeout 30 "$RMILTER_BIN" -t -c "$RCONF" 2>&1); then
		SCAN_CONF_ERR="config refused by rmilter -t: $(echo "$out" | grep -v '^==[0-9]*==' | head -3 | tr '\n' '|')"
		write_conf ""
		return 1
	fi
	if [ $restart = 1 ] || ! rmilter_alive; then
		rmilter_alive && stop_rmilter
		start_rmilter >/dev/null || { SCAN_CONF_ERR="daemon did not start with the config"; return 1; }
	else
		hup_and_wait
	fi
	return 0
}

scan_restore() {
	write_conf ""
	if rmilter_alive; then hup_and_wait; fi
}

# conf_or_fail NAME SECTIONS [--restart] -> scan_conf, reporting a refused config
conf_or_fail() {
	local name=$1 sections=$2
	if [ "${3:-}" = --restart ]; then
		scan_conf --restart "$sections" && return 0
	else
		scan_conf "$sections" && return 0
	fi
	fail "$name" "$SCAN_CONF_ERR"
	return 1
}

# ---- sending and checking ----------------------------------------------------------------

# smsg NAME [swaks args] -> send with HELO NAME.client.test and the default envelope
# (no default Subject: give --h-Subject or --data); the time taken is in SW_SECS
smsg() {
	local name=$1 t0
	shift
	t0=$(now)
	send "$name" --from sender@test.example --to rcpt@dest.example "$@"
	SW_SECS=$(elapsed "$t0")
}

# the swaks transcript ends in a refusal after DATA with TEXT (rc 26)
expect_refused() {
	local name=$1 text=$2
	if [ "$SW_RC" != 26 ]; then
		fail "$name" "swaks rc=$SW_RC, want 26 (refused after DATA) with '$text': $(sw_replies)"
		return 1
	fi
	expect_reply "$text" || { fail "$name" "reply '$text' not seen: $(sw_replies)"; return 1; }
}

# the message was queued and reached the sink
expect_delivered() {
	local name=$1
	if [ "$SW_RC" != 0 ]; then
		fail "$name" "swaks rc=$SW_RC, want 0 (delivered): $(sw_replies)"
		return 1
	fi
	wait_delivered "$SW_QID" || { fail "$name" "queue id '$SW_QID' not delivered to the sink"; return 1; }
}

# scan_summary NAME REGEX [TIMEOUT] -> the daemon's summary line for HELO NAME.client.test
# matches REGEX; SCAN_SUMMARY is that line
scan_summary() {
	local t0 to=${3:-3}
	t0=$(now)
	while :; do
		SCAN_SUMMARY=$(grep -E "msg done: .*helo=$1\.client\.test( |$)" "$RLOG" | tail -1)
		printf '%s' "$SCAN_SUMMARY" | grep -qE -- "$2" && return 0
		fle "$to" "$(elapsed "$t0")" && return 1
		sleep 0.1
	done
}

summary_or_fail() {
	scan_summary "$1" "$2" && return 0
	fail "$1" "summary line does not match /$2/: '$(printf '%s' "$SCAN_SUMMARY" | cut -c1-300)'"
	return 1
}

# header_value NAME -> the value of header NAME in the delivered message (first one)
header_value() { sink_grep "^$1:" | head -1 | sed "s/^$1: *//"; }

# ---- rspamd (real server) ------------------------------------------------------------------

rspamd_section() {
	# rspamd_section SERVERS [extra lines]
	printf 'rspamd {\n  servers = %s;\n  connect_timeout = 1s; results_timeout = 5s; retry_count = 2;\n  tempfail_on_error = yes;\n  spam_header = "X-Spam"; spam_header_value = "yes";\n  extended_spam_headers = yes;\n  reject_message = "Spam message rejected";\n%s\n}\n' \
		"$1" "${2:-}"
}

case_scan_rspamd_gtube() {
	local n=scan_rspamd_gtube
	conf_or_fail $n "$(rspamd_section "127.0.0.1:$RSPAMD_PORT")" || return
	smsg $n --h-Subject "gtube via rspamd" --body "$GTUBE"
	expect_refused $n "554 5.7.1 Gtube pattern" || return
	wait_maillog "milter-reject: END-OF-MESSAGE .*Gtube pattern.*helo=<$n.client.test>" 10 ||
		{ fail $n "no milter-reject line in the Postfix log"; return; }
	summary_or_fail $n 'action=reject' || return
	ok $n
	note "${SW_SECS}s; $(printf '%s' "$SCAN_SUMMARY" | grep -oE 'action=.*' | cut -c1-200)"
}

case_scan_rspamd_ham() {
	local n=scan_rspamd_ham h missing=()
	conf_or_fail $n "$(rspamd_section "127.0.0.1:$RSPAMD_PORT")" || return
	smsg $n --h-Subject "meeting notes" --body "Hi, here are the meeting notes from today. Regards."
	expect_delivered $n || return
	for h in X-Spamd-Result X-Rspamd-Server X-Rspamd-Scan-Time X-Rspamd-Queue-ID; do
		sink_grep "^$h:" >/dev/null || missing+=("$h")
	done
	[ ${#missing[@]} -eq 0 ] || { fail $n "extended_spam_headers = yes, but ${missing[*]} missing: $(sink_grep '^X-' | tr '\n' '|' | cut -c1-300)"; return; }
	[ "$(header_value X-Rspamd-Queue-ID)" = "$SW_QID" ] ||
		{ fail $n "X-Rspamd-Queue-ID is '$(header_value X-Rspamd-Queue-ID)', want the queue id $SW_QID"; return; }
	if sink_grep '^X-Spam: yes' >/dev/null; then fail $n "ham got X-Spam: yes"; return; fi
	ok $n
	note "X-Spamd-Result: $(header_value X-Spamd-Result | cut -c1-100)"
}

case_scan_rspamd_add_header() {
	local n=scan_rspamd_add_header
	conf_or_fail $n "$(rspamd_section "127.0.0.1:$RSPAMD_PORT")" || return
	smsg $n --h-Subject "e2e-rspamd-add-header $n" --body "add header please"
	expect_delivered $n || return
	[ "$(header_value X-Spam)" = yes ] || { fail $n "X-Spam: yes missing: $(sink_grep '^X-' | tr '\n' '|' | cut -c1-300)"; return; }
	sink_grep "^Subject: e2e-rspamd-add-header $n\$" >/dev/null || { fail $n "Subject changed: $(sink_grep '^Subject:')"; return; }
	ok $n
}

case_scan_rspamd_rewrite_subject() {
	local n=scan_rspamd_rewrite_subject got
	conf_or_fail $n "$(rspamd_section "127.0.0.1:$RSPAMD_PORT")" || return
	smsg $n --h-Subject "e2e-rspamd-rewrite-subject $n" --body "rewrite my subject"
	expect_delivered $n || return
	got=$(sink_grep '^Subject:' | tr '\n' '|')
	[ "$got" = "Subject: [E2E-SPAM] e2e-rspamd-rewrite-subject $n|" ] ||
		{ fail $n "delivered Subject(s) '$got', want rspamd's '[E2E-SPAM] e2e-rspamd-rewrite-subject $n'"; return; }
	ok $n
}

# a score-based reject carries no smtp_message: reject_message is used
case_scan_rspamd_reject_message() {
	local n=scan_rspamd_reject_message
	conf_or_fail $n "$(rspamd_section "127.0.0.1:$RSPAMD_PORT")" || return
	smsg $n --h-Subject "e2e-rspamd-reject $n" --body "reject me by score"
	expect_refused $n "554 5.7.1 Spam message rejected" || return
	ok $n
}

case_scan_rspamd_unix() {
	local n=scan_rspamd_unix
	conf_or_fail $n "$(rspamd_section "$RSPAMD_SOCK")" || return
	smsg $n --h-Subject "gtube via rspamd's unix socket" --body "$GTUBE"
	expect_refused $n "554 5.7.1 Gtube pattern" || return
	smsg ${n}_ham --h-Subject "ham via unix socket" --body "ham via the unix socket"
	expect_delivered ${n}_ham || return
	sink_grep '^X-Rspamd-Server:' >/dev/null || { fail $n "ham via the socket lacks X-Rspamd-Server"; return; }
	ok $n
}

# the legacy form: spamd { servers = r:host:port; } is rspamd
case_scan_rspamd_legacy() {
	local n=scan_rspamd_legacy
	conf_or_fail $n "spamd {
  servers = r:127.0.0.1:$RSPAMD_PORT;
  results_timeout = 5s;
}" || return
	smsg $n --h-Subject "gtube via legacy spamd r:" --body "$GTUBE"
	expect_refused $n "554 5.7.1 Gtube pattern" || return
	ok $n
}

# whitelisted client networks are not scanned (GTUBE from 127.0.0.2 is delivered,
# the same from 127.0.0.1 is refused)
case_scan_rspamd_whitelist() {
	local n=scan_rspamd_whitelist
	conf_or_fail $n "$(rspamd_section "127.0.0.1:$RSPAMD_PORT" "  whitelist = 192.0.2.0/24, 127.0.0.2/32;")" || return
	smsg $n --local-interface 127.0.0.2 --h-Subject "gtube from a whitelisted client" --body "$GTUBE"
	expect_delivered $n || return
	wait_maillog "client=localhost\[127\.0\.0\.2\]|connect from .*\[127\.0\.0\.2\]" 5 ||
		{ fail $n "Postfix did not see the client as 127.0.0.2"; return; }
	smsg ${n}_not --h-Subject "gtube from a scanned client" --body "$GTUBE"
	expect_refused ${n}_not "554 5.7.1 Gtube pattern" || return
	ok $n
}

# ---- SpamAssassin spamd (real server) ----------------------------------------------------------

spamd_section() {
	printf 'spamassassin {\n  servers = %s;\n  connect_timeout = 1s; results_timeout = 10s; retry_count = 2;\n  tempfail_on_error = yes;\n%s\n}\n' \
		"$1" "${2:-}"
}

case_scan_spamd_gtube() {
	local n=scan_spamd_gtube
	conf_or_fail $n "$(spamd_section "127.0.0.1:$SPAMD_PORT")" || return
	smsg $n --h-Subject "gtube via spamd" --body "$GTUBE"
	expect_refused $n "554 5.7.1" || return
	summary_or_fail $n 'action=reject' || return
	ok $n
	note "${SW_SECS}s; reply: $(grep -E '^ *<\*\*' "$SW_OUT" | tail -1 | cut -c1-120)"
}

case_scan_spamd_ham() {
	local n=scan_spamd_ham st
	conf_or_fail $n "$(spamd_section "127.0.0.1:$SPAMD_PORT")" || return
	smsg $n --h-Subject "meeting notes" --body "Hi, here are the meeting notes from today. Regards."
	expect_delivered $n || return
	st=$(header_value X-Spam-Status)
	case $st in
	No,\ score=*) ;;
	*) fail $n "X-Spam-Status is '$st', want 'No, score=...': $(sink_grep '^X-Spam' | tr '\n' '|')"; return ;;
	esac
	ok $n
	note "X-Spam-Status: $st"
}

# spam_kill_level = 10, spam_tag_level = 2; the test rules in peers.sh score
# e2e-sa-spam-token 7.0 (spam, below kill), e2e-sa-kill-token 12.0, e2e-sa-tag-token 3.0
case_scan_spamd_levels() {
	local n=scan_spamd_levels st
	conf_or_fail $n "$(spamd_section "127.0.0.1:$SPAMD_PORT" "  spam_kill_level = 10;
  spam_tag_level = 2;")" || return
	smsg ${n}_spam --h-Subject "levels spam" --body "this is e2e-sa-spam-token text"
	expect_delivered ${n}_spam || return
	st=$(header_value X-Spam-Status)
	case $st in
	Yes,\ score=*) ;;
	*) fail $n "score ~7 (< spam_kill_level 10): delivered, but X-Spam-Status is '$st', want 'Yes, score=...'"; return ;;
	esac
	sink_grep '^X-Spam-Score:' >/dev/null || { fail $n "X-Spam-Score missing at score ~7"; return; }
	sink_grep '^X-Spam-Level: \*\*\*\*\*\*' >/dev/null || { fail $n "X-Spam-Level missing or too short: $(sink_grep '^X-Spam-Level')"; return; }
	smsg ${n}_kill --h-Subject "levels kill" --body "this is e2e-sa-kill-token text"
	expect_refused ${n}_kill "554 5.7.1" || return
	smsg ${n}_untagged --h-Subject "levels ham" --body "Hi, here are the meeting notes from today. Regards."
	expect_delivered ${n}_untagged || return
	if sink_grep '^X-Spam-(Status|Score|Level):' >/dev/null; then
		fail $n "score ~0 (< spam_tag_level 2), but tagged: $(sink_grep '^X-Spam' | tr '\n' '|')"; return
	fi
	smsg ${n}_tagged --h-Subject "levels tagged ham" --body "this is e2e-sa-tag-token text"
	expect_delivered ${n}_tagged || return
	st=$(header_value X-Spam-Status)
	case $st in
	No,\ score=*) ;;
	*) fail $n "score ~3 (>= spam_tag_level 2, not spam): X-Spam-Status is '$st', want 'No, score=...'"; return ;;
	esac
	ok $n
}

case_scan_spamd_legacy() {
	local n=scan_spamd_legacy
	conf_or_fail $n "spamd {
  servers = 127.0.0.1:$SPAMD_PORT;
  results_timeout = 10s;
}" || return
	smsg $n --h-Subject "gtube via legacy spamd" --body "$GTUBE"
	expect_refused $n "554 5.7.1" || return
	ok $n
}

# ---- clamd (real server) ----------------------------------------------------------------------------

clamav_section() {
	printf 'clamav {\n  servers = %s;\n  connect_timeout = 1s; results_timeout = 5s; retry_count = 2;\n  tempfail_on_error = yes;\n  stream_max_length = 25M;\n%s\n}\n' \
		"$1" "${2:-}"
}

EICAR_NAME=Eicar-Test-Signature.UNOFFICIAL

case_scan_clamav_eicar_tcp() {
	local n=scan_clamav_eicar_tcp
	conf_or_fail $n "$(clamav_section "127.0.0.1:$CLAMD_PORT" "  virus_action = reject;")" || return
	smsg $n --data "$SCAN_DIR/eicar.eml"
	expect_refused $n "554 5.7.1 Infected: $EICAR_NAME" || return
	summary_or_fail $n 'action=reject' || return
	ok $n
	note "${SW_SECS}s"
}

case_scan_clamav_eicar_unix() {
	local n=scan_clamav_eicar_unix
	conf_or_fail $n "$(clamav_section "$CLAMD_SOCK" "  virus_action = reject;")" || return
	smsg $n --data "$SCAN_DIR/eicar.eml"
	expect_refused $n "554 5.7.1 Infected: $EICAR_NAME" || return
	grep -q "instream(local): $EICAR_NAME FOUND" "$PEERS_DIR/clam/clamd.log" ||
		{ fail $n "clamd's log has no unix-socket (local) INSTREAM finding: $(grep instream "$PEERS_DIR/clam/clamd.log" | tail -2 | tr '\n' '|')"; return; }
	ok $n
}

# a server given by host name is resolved (evdns) through the dns section's
# nameserver -- our dnsmasq, where mx.test.example is 127.0.0.1
case_scan_clamav_hostname() {
	local n=scan_clamav_hostname
	conf_or_fail $n "$(clamav_section "mx.test.example:$CLAMD_PORT" "  virus_action = reject;")
dns { nameserver = 127.0.0.1:$DNS_PORT; timeout = 1s; }" || return
	smsg $n --data "$SCAN_DIR/eicar.eml"
	expect_refused $n "554 5.7.1 Infected: $EICAR_NAME" || return
	ok $n
}

case_scan_clamav_marker() {
	local n=scan_clamav_marker
	conf_or_fail $n "$(clamav_section "127.0.0.1:$CLAMD_PORT, $CLAMD_SOCK" "  virus_action = reject;")" || return
	smsg $n --data "$SCAN_DIR/marker.eml"
	expect_refused $n "554 5.7.1 Infected: Test.Milter.Marker.UNOFFICIAL" || return
	ok $n
}

case_scan_clamav_clean() {
	local n=scan_clamav_clean
	conf_or_fail $n "$(clamav_section "127.0.0.1:$CLAMD_PORT" "  virus_action = reject;")" || return
	smsg $n --data "$SCAN_DIR/clean_att.eml"
	expect_delivered $n || return
	if sink_grep '^X-Virus:' >/dev/null; then fail $n "clean mail got an X-Virus header"; return; fi
	ok $n
}

case_scan_clamav_header() {
	local n=scan_clamav_header v
	conf_or_fail $n "$(clamav_section "127.0.0.1:$CLAMD_PORT" "  virus_action = header;")" || return
	smsg $n --data "$SCAN_DIR/eicar.eml"
	expect_delivered $n || return
	v=$(header_value X-Virus)
	case $v in
	*"$EICAR_NAME"*) ;;
	*) fail $n "X-Virus is '$v', want it to name $EICAR_NAME"; return ;;
	esac
	ok $n
	note "X-Virus: $v"
}

case_scan_clamav_discard() {
	local n=scan_clamav_discard
	conf_or_fail $n "$(clamav_section "127.0.0.1:$CLAMD_PORT" "  virus_action = discard;")" || return
	smsg $n --data "$SCAN_DIR/eicar.eml"
	[ "$SW_RC" = 0 ] || { fail $n "swaks rc=$SW_RC, want 0 (accepted, then discarded): $(sw_replies)"; return; }
	wait_maillog "$SW_QID: milter-discard" 10 || { fail $n "no milter-discard for $SW_QID"; return; }
	ok $n
}

case_scan_clamav_quarantine() {
	local n=scan_clamav_quarantine
	conf_or_fail $n "$(clamav_section "127.0.0.1:$CLAMD_PORT" "  virus_action = quarantine;")" || return
	smsg $n --data "$SCAN_DIR/eicar.eml"
	[ "$SW_RC" = 0 ] || { fail $n "swaks rc=$SW_RC, want 0 (accepted into hold): $(sw_replies)"; return; }
	wait_maillog "$SW_QID: milter-hold" 10 || { fail $n "no milter-hold for $SW_QID"; return; }
	postsuper -c "$TG/pf/conf" -d "$SW_QID" hold >/dev/null 2>&1
	ok $n
}

# ---- fault injection: only a fake server --------------------------------------------------------------

# fault_section SECTION SERVER TEMPFAIL TRIES -> a scanner section with only SERVER
# (1 s timeouts; maxerrors high, so the server is never marked dead here)
fault_section() {
	printf '%s {\n  servers = %s;\n  connect_timeout = 1s; results_timeout = 1s; retry_count = %s;\n  maxerrors = 1000; error_time = 10s; dead_time = 5s;\n  tempfail_on_error = %s;\n}\n' \
		"$1" "$2" "$4" "$3"
}

# scan_fault_run NAME PROTO SECTION SPAM-REPLY: first the fake's valid replies (ok ->
# delivered, spam -> SPAM-REPLY), so the fake and the client agree on the protocol;
# then every fault mode: with tempfail_on_error = yes (2 attempts) the message gets
# 451 4.7.1 within 2 x (1 s + 1 s) + slack, with = no (1 attempt) it is delivered;
# the fake must have been asked (except "refuse": nothing listens); and the
# daemon's open descriptors do not grow over the batch.
scan_fault_run() {
	local base=scan_fault_$1 proto=$2 sec=$3 spam_reply=$4 fake=fault-$1 tf mode name limit c0 c1
	local fds0='' fds1 tries addr raddr a
	fake_start "$fake" ok "$proto" || { fail "$base" "fake server did not start"; return; }
	addr=$FAKE_ADDR
	fake_start "$fake-refuse" refuse "$proto" || { fail "$base" "fake (refuse) did not start"; fake_stop "$fake"; return; }
	raddr=$FAKE_ADDR

	# the fake's valid answers; a refused config is one failure, not one per mode
	if ! conf_or_fail "$base" "$(fault_section "$sec" "$addr" yes 1)"; then
		fake_stop "$fake"; fake_stop "$fake-refuse"
		return
	fi
	fake_mode "$fake" ok
	smsg "${base}_fake_ok" --h-Subject "fake ok $proto" --body "fake ok"
	expect_delivered "${base}_fake_ok" && ok "${base}_fake_ok"
	fake_mode "$fake" spam
	smsg "${base}_fake_spam" --h-Subject "fake spam $proto" --body "fake spam"
	expect_refused "${base}_fake_spam" "$spam_reply" && ok "${base}_fake_spam"

	for tf in yes no; do
		if [ "$tf" = yes ]; then tries=2; else tries=1; fi
		limit=$(awk -v s="$SLOW" -v t=$tries 'BEGIN { print (t * 2 + 2) * s + 1 }')
		for mode in "${SCAN_FAULT_MODES[@]}"; do
			if [ "$tf" = yes ]; then name=${base}_${mode}_tempfail; else name=${base}_${mode}_pass; fi
			a=$addr
			[ "$mode" = refuse ] && a=$raddr
			conf_or_fail "$name" "$(fault_section "$sec" "$a" "$tf" "$tries")" || continue
			[ -n "$fds0" ] || fds0=$(find /proc/"$RMILTER_PID"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
			[ "$mode" != refuse ] && fake_mode "$fake" "$mode"
			c0=$(fake_conns "$fake")
			smsg "$name" --h-Subject "fault $proto $mode" --body "fault injection: $proto $mode tempfail_on_error=$tf"
			c1=$(fake_conns "$fake")
			if [ "$tf" = yes ]; then
				expect_refused "$name" "451 4.7.1" || continue
			else
				expect_delivered "$name" || continue
			fi
			if ! fle "$SW_SECS" "$limit"; then
				fail "$name" "took ${SW_SECS}s, more than $tries x (1 s connect + 1 s results) + slack = ${limit}s"
				continue
			fi
			if [ "$mode" != refuse ] && [ "$c1" -le "$c0" ]; then
				fail "$name" "the fake server was never connected to ($c0 -> $c1 connections)"
				continue
			fi
			ok "$name"
			note "${SW_SECS}s, $((c1 - c0)) connection(s) to the fake"
		done
	done
	fake_mode "$fake" close
	sleep 1
	if rmilter_alive && [ -n "$fds0" ]; then
		fds1=$(find /proc/"$RMILTER_PID"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		if [ "$fds1" -gt $((fds0 + 2)) ]; then
			fail "${base}_fds" "open descriptors grew from $fds0 to $fds1 over the fault batch"
		else
			ok "${base}_fds"
			note "daemon descriptors $fds0 -> $fds1 over $((2 * ${#SCAN_FAULT_MODES[@]})) faulty scans"
		fi
	fi
	fake_stop "$fake"
	fake_stop "$fake-refuse"
	scan_restore
}

case_scan_fault_rspamd() { scan_fault_run rspamd rspamd rspamd "554 5.7.1 Fake upstream: spam rejected"; }
case_scan_fault_spamd() { scan_fault_run spamd spamd spamassassin "554 5.7.1"; }
case_scan_fault_clamav() { scan_fault_run clamav clamd clamav "554 5.7.1 Infected: Fake.Test.Virus.UNOFFICIAL"; }

# retry_count is the number of attempts in total
case_scan_retry_count() {
	local n=scan_retry_count c0 c1
	fake_start retry close rspamd || { fail $n "fake server did not start"; return; }
	conf_or_fail $n "rspamd {
  servers = $FAKE_ADDR;
  connect_timeout = 1s; results_timeout = 2s; retry_count = 3;
  maxerrors = 1000; tempfail_on_error = yes;
}" || { fake_stop retry; return; }
	c0=$(fake_conns retry)
	smsg $n --h-Subject "retry count" --body "retry count"
	c1=$(fake_conns retry)
	fake_stop retry
	expect_refused $n "451 4.7.1" || return
	[ $((c1 - c0)) = 3 ] || { fail $n "retry_count = 3, but the server was tried $((c1 - c0)) time(s)"; return; }
	ok $n
}

# ---- pools ---------------------------------------------------------------------------------------------

# wait_rlog_since REGEX TIMEOUT -> a daemon log line written since log_mark matches
wait_rlog_since() {
	local t0
	t0=$(now)
	until log_since | grep -qE -- "$1"; do
		fle "$2" "$(elapsed "$t0")" && return 1
		sleep 0.1
	done
}

# [fake bad, real good], round robin, maxerrors = 2: the fake is marked dead after two
# errors, gets nothing while dead, is probed after dead_time (still dead), and is
# revived once it answers again.  Every message is delivered meanwhile.
case_scan_pool_dead_revive() {
	local n=scan_pool_dead_revive fake=pool-bad faddr fport c_dead c i dead_re
	fake_start "$fake" close rspamd || { fail $n "fake server did not start"; return; }
	faddr=$FAKE_ADDR
	fport=$FAKE_PORT
	conf_or_fail $n "rspamd {
  servers = $faddr, 127.0.0.1:$RSPAMD_PORT;
  strategy = round_robin;
  connect_timeout = 1s; results_timeout = 5s; retry_count = 3;
  maxerrors = 2; error_time = 10s; dead_time = 3s;
  tempfail_on_error = yes;
}" --restart || { fake_stop "$fake"; return; }
	log_mark
	dead_re="marked dead.*127\.0\.0\.1:$fport|127\.0\.0\.1:$fport.*marked dead"
	# phase 1: until the fake is marked dead (at most 8 messages)
	for i in 1 2 3 4 5 6 7 8; do
		smsg "${n}_p1_$i" --h-Subject "pool phase 1 #$i" --body "pool $i"
		expect_delivered "${n}_p1_$i" || { fake_stop "$fake"; return; }
		log_since | grep -qE -- "$dead_re" && break
	done
	if ! log_since | grep -qE -- "$dead_re"; then
		fail $n "after $i messages no log line says 127.0.0.1:$fport was marked dead (fake: $(fake_conns "$fake") connections): $(log_since | grep -iE 'dead|error|fail' | tail -3 | tr '\n' '|')"
		fake_stop "$fake"; return
	fi
	c_dead=$(fake_conns "$fake")
	note "marked dead after $i message(s), $c_dead connection(s) to the fake: $(log_since | grep -E -- "$dead_re" | head -1 | cut -c1-200)"
	[ "$c_dead" -ge 2 ] || { fail $n "marked dead after only $c_dead error(s), maxerrors = 2"; fake_stop "$fake"; return; }
	# phase 2: while dead it gets nothing
	for i in 1 2 3 4; do
		smsg "${n}_p2_$i" --h-Subject "pool phase 2 #$i" --body "pool dead $i"
		expect_delivered "${n}_p2_$i" || { fake_stop "$fake"; return; }
	done
	c=$(fake_conns "$fake")
	[ "$c" = "$c_dead" ] || { fail $n "the dead server got $((c - c_dead)) connection(s) within dead_time"; fake_stop "$fake"; return; }
	ok ${n}_dead
	# phase 3: after dead_time it is probed again (still failing)
	log_mark
	sleep 3.5
	for i in 1 2 3 4; do
		smsg "${n}_p3_$i" --h-Subject "pool phase 3 #$i" --body "pool probe $i"
		expect_delivered "${n}_p3_$i" || { fake_stop "$fake"; return; }
		[ "$(fake_conns "$fake")" -gt "$c_dead" ] && break
	done
	c=$(fake_conns "$fake")
	[ "$c" -gt "$c_dead" ] || { fail $n "not probed again after dead_time (3 s): still $c connection(s)"; fake_stop "$fake"; return; }
	wait_rlog_since 'prob(e|ing)|still dead|marked dead' 3 ||
		{ fail $n "the failed probe left no log line (probe / still dead): $(log_since | tail -3 | tr '\n' '|')"; fake_stop "$fake"; return; }
	ok ${n}_probe
	note "$(log_since | grep -E 'prob(e|ing)|still dead|marked dead' | head -1 | cut -c1-200)"
	# phase 4: the fake answers again -> revived, and used again
	fake_mode "$fake" ok
	log_mark
	sleep 3.5
	c_dead=$(fake_conns "$fake")
	for i in 1 2 3 4 5 6; do
		smsg "${n}_p4_$i" --h-Subject "pool phase 4 #$i" --body "pool revived $i"
		expect_delivered "${n}_p4_$i" || { fake_stop "$fake"; return; }
	done
	c=$(fake_conns "$fake")
	fake_stop "$fake"
	[ "$c" -gt "$c_dead" ] || { fail $n "the server answers again but got no connection in 6 messages"; return; }
	wait_rlog_since "revived|alive" 3 ||
		{ fail $n "no log line says the server was revived: $(log_since | tail -3 | tr '\n' '|')"; return; }
	ok ${n}_revived
	note "$(log_since | grep -E 'revived|alive' | head -1 | cut -c1-200); $((c - c_dead)) of 6 scans went to it"
	scan_restore
}

# master_slave: the server with the highest priority gets everything while it is alive
case_scan_pool_master_slave() {
	local n=scan_pool_master_slave i c
	fake_start slave ok rspamd || { fail $n "fake server did not start"; return; }
	# listed first, but the lower priority
	conf_or_fail $n "rspamd {
  servers = $FAKE_ADDR:1, 127.0.0.1:$RSPAMD_PORT:10;
  strategy = master_slave;
  connect_timeout = 1s; results_timeout = 5s; retry_count = 2;
  tempfail_on_error = yes;
}" --restart || { fake_stop slave; return; }
	for i in 1 2 3 4; do
		smsg "${n}_$i" --h-Subject "master slave #$i" --body "master $i"
		expect_delivered "${n}_$i" || { fake_stop slave; return; }
	done
	c=$(fake_conns slave)
	fake_stop slave
	[ "$c" = 0 ] || { fail $n "the slave got $c connection(s) while the master was alive"; return; }
	ok $n
	scan_restore
}

# ---- a hanging scan does not hold up other sessions ---------------------------------------------------

# one SMTP session waits for a hanging rspamd (results_timeout 5 s, then 451);
# meanwhile sessions from a whitelisted client (127.0.0.2) finish quickly
case_scan_hang_concurrency() {
	local n=scan_hang_concurrency t0 pid rc qid t i lim_fast lim_lo lim_hi bad=
	fake_start hang hang rspamd || { fail $n "fake server did not start"; return; }
	conf_or_fail $n "rspamd {
  servers = $FAKE_ADDR;
  connect_timeout = 1s; results_timeout = 5s; retry_count = 1;
  maxerrors = 1000; tempfail_on_error = yes;
  whitelist = 127.0.0.2/32;
}" || { fake_stop hang; return; }
	lim_fast=$(awk -v s="$SLOW" 'BEGIN { print 1.5 * s }')
	(
		smsg ${n}_hung --h-Subject "hung scan" --body "this scan hangs"
		echo "$SW_RC ${SW_QID:--} $SW_SECS" >"$TG/out/${n}_hung.res"
	) &
	pid=$!
	sleep 0.5
	for i in 1 2 3; do
		smsg ${n}_fast$i --local-interface 127.0.0.2 --h-Subject "fast #$i" --body "not scanned $i"
		if [ "$SW_RC" != 0 ]; then bad="whitelisted session $i: swaks rc=$SW_RC: $(sw_replies)"; break; fi
		if ! fle "$SW_SECS" "$lim_fast"; then bad="whitelisted session $i took ${SW_SECS}s (> ${lim_fast}s) while a scan hung"; break; fi
		note "whitelisted session $i during the hang: ${SW_SECS}s"
	done
	wait "$pid"
	fake_stop hang
	[ -z "$bad" ] || { fail $n "$bad"; return; }
	read -r rc qid t <"$TG/out/${n}_hung.res" || { fail $n "hung session: no result"; return; }
	SW_OUT=$TG/out/${n}_hung.txt
	if [ "$rc" != 26 ] || ! expect_reply "451 4.7.1"; then
		fail $n "hung session: swaks rc=$rc, want 26 with 451 4.7.1: $(sw_replies)"; return
	fi
	lim_lo=4.5
	lim_hi=$(awk -v s="$SLOW" 'BEGIN { print 5 + 3 * s }')
	if ! fle "$lim_lo" "$t" || ! fle "$t" "$lim_hi"; then
		fail $n "hung session answered after ${t}s, want results_timeout 5 s (${lim_lo}..${lim_hi}s)"; return
	fi
	ok $n
	note "hung session: 451 after ${t}s"
}
