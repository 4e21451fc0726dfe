#!/bin/bash
# test/e2e/run.sh [PATTERN...] -- end-to-end tests: real Postfix + smtp-sink + rmilter
# (built-in test policy, see TEST_POLICY.md), miltertest scripts and raw-protocol /
# hostile-input clients against the daemon.  Prints "ok NAME" / "FAIL NAME: why" per
# case and a last line "N passed, N failed".  With PATTERNs only the cases whose name
# contains one of them run (plus the final daemon checks).
# Exit: 0 all passed, 1 something failed, 77 skipped (tool missing, not under CI).
# Environment: see lib.sh (RMILTER_BIN, RMILTER_WRAPPER, E2E_PORT_BASE, E2E_KEEP, CI).

set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cases_policy.sh"
. "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cases_scanners.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cases_store.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cases_dkim.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cases_spf.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cases_beanstalk.sh"

PATTERNS=("$@")
TOKEN=$$

# ---- prerequisites ------------------------------------------------------
if ! why=$(e2e_prereq postfix postsuper postqueue smtp-sink swaks miltertest "$PY" timeout ps \
		awk "$RMILTER_BIN"); then
	if is_ci; then
		fail e2e-prerequisites "$why"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "skip e2e: $why"
	exit 77
fi
if [ "$(id -u)" != 0 ]; then
	if is_ci; then
		fail e2e-prerequisites "must run as root (private Postfix instance)"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "skip e2e: not root (a private Postfix instance needs root)"
	exit 77
fi

want() {
	[ ${#PATTERNS[@]} -eq 0 ] && return 0
	local p
	for p in "${PATTERNS[@]}"; do
		case $1 in *"$p"*) return 0 ;; esac
	done
	return 1
}

run_case() {
	want "$1" || return 0
	"case_$1"
	ensure_rmilter "$1"
}

# expect_summary NAME ACTION -> the daemon's per-message summary line for the message
# sent with HELO NAME.client.test says test_policy=ACTION (TEST_POLICY.md)
expect_summary() {
	local t0
	t0=$(now)
	until grep -E "helo=$1\.client\.test( |$)" "$RLOG" | grep -qE "test_policy=$2( |$)"; do
		fle 3 "$(elapsed "$t0")" && return 1
		sleep 0.1
	done
}

# ---- delivery and rejection ----------------------------------------------

case_plain() {
	msg plain --body "plain body $TOKEN"
	[ "$SW_RC" = 0 ] || { fail plain "swaks rc=$SW_RC: $(sw_replies)"; return; }
	wait_delivered "$SW_QID" || { fail plain "queue id '$SW_QID' not delivered to the sink"; return; }
	sink_body | grep -qF "plain body $TOKEN" || { fail plain "body missing in the sink file"; return; }
	expect_summary plain continue || { fail plain "no summary log line with helo=plain.client.test test_policy=continue"; return; }
	ok plain
}

# reject_case NAME HEADER-VALUE SUMMARY-ACTION EXPECTED-REPLY-LINE...
reject_case() {
	local name=$1 value=$2 action=$3 line
	shift 3
	msg "$name" --add-header "X-Rmilter-Test: $value"
	[ "$SW_RC" = 26 ] || { fail "$name" "swaks rc=$SW_RC, want 26: $(sw_replies)"; return; }
	for line in "$@"; do
		expect_reply "$line" || { fail "$name" "reply '$line' not seen: $(sw_replies)"; return; }
	done
	wait_maillog "milter-reject: END-OF-MESSAGE .*helo=<$name.client.test>" 10 ||
		{ fail "$name" "no milter-reject line in the Postfix log"; return; }
	expect_summary "$name" "$action" || { fail "$name" "no summary log line with test_policy=$action"; return; }
	ok "$name"
}

case_reject() { reject_case reject reject reject "550 5.7.1 Rejected by test policy"; }
case_reject_custom() { reject_case reject_custom "reject 554 5.7.0 custom text" reject "554 5.7.0 custom text"; }
case_tempfail() { reject_case tempfail tempfail tempfail "451 4.7.1 Deferred by test policy"; }
case_reject_multi() { reject_case reject_multi reject-multi reject "550-5.7.1 first line" "550 5.7.1 second line"; }

case_discard() {
	msg discard --add-header "X-Rmilter-Test: discard" --body "discard $TOKEN"
	[ "$SW_RC" = 0 ] || { fail discard "swaks rc=$SW_RC, want 0: $(sw_replies)"; return; }
	[ -n "$SW_QID" ] || { fail discard "no queue id"; return; }
	wait_maillog "$SW_QID: milter-discard" 10 || { fail discard "no milter-discard for $SW_QID in the Postfix log"; return; }
	sleep 0.5
	if grep -qs "id $SW_QID\b" "$TG"/sink/*; then fail discard "the message reached the sink"; return; fi
	if grep -q "$SW_QID: to=<" "$MAILLOG"; then fail discard "Postfix tried to deliver it"; return; fi
	expect_summary discard discard || { fail discard "no summary log line with test_policy=discard"; return; }
	ok discard
}

# ---- end-of-message edits --------------------------------------------------

# edit_case NAME HEADER-VALUE [swaks args...] -> sends and waits for delivery;
# returns 1 (after reporting the failure) if the message was not delivered
edit_send() {
	local name=$1 value=$2
	shift 2
	send "$name" --from sender@test.example --add-header "X-Rmilter-Test: $value" "$@"
	[ "$SW_RC" = 0 ] || { fail "$name" "swaks rc=$SW_RC: $(sw_replies)"; return 1; }
	wait_delivered "$SW_QID" || { fail "$name" "queue id '$SW_QID' not delivered"; return 1; }
}

case_addheader() {
	edit_send addheader "addheader X-Added hello" --to rcpt@dest.example || return
	sink_grep '^X-Added: hello$' >/dev/null || { fail addheader "X-Added: hello not in the delivered message"; return; }
	ok addheader
}

case_insheader() {
	edit_send insheader "insheader 0 X-Top top" --to rcpt@dest.example || return
	local f=${SINK_FILES[0]} top rcv
	top=$(tr -d '\r' <"$f" | grep -n '^X-Top: top$' | head -1 | cut -d: -f1)
	rcv=$(tr -d '\r' <"$f" | grep -n 'by mx\.test\.example (Postfix)' | head -1 | cut -d: -f1)
	[ -n "$top" ] || { fail insheader "X-Top: top not in the delivered message"; return; }
	[ -n "$rcv" ] || { fail insheader "Postfix's Received header not found"; return; }
	# the Received line found is the "by" continuation line; its header starts above it
	[ "$top" -lt "$rcv" ] || { fail insheader "X-Top (line $top) is not above Postfix's Received (line $rcv)"; return; }
	ok insheader
}

case_chgheader() {
	edit_send chgheader "chgheader Subject 1 changed" --to rcpt@dest.example \
		--h-Subject "original subject" || return
	sink_grep '^Subject: changed$' >/dev/null || { fail chgheader "Subject: changed not found: $(sink_grep '^Subject:')"; return; }
	if sink_grep '^Subject: original subject' >/dev/null; then fail chgheader "the original Subject is still there"; return; fi
	ok chgheader
}

case_delheader() {
	edit_send delheader "delheader X-Del 1" --to rcpt@dest.example --add-header "X-Del: gone" \
		--add-header "X-Keep: kept" || return
	if sink_grep '^X-Del:' >/dev/null; then fail delheader "X-Del still present"; return; fi
	sink_grep '^X-Keep: kept$' >/dev/null || { fail delheader "X-Keep lost as well"; return; }
	ok delheader
}

case_chgfrom() {
	edit_send chgfrom "chgfrom <new@test.example>" --to rcpt@dest.example || return
	sink_grep '^X-Mail-Args: <new@test.example>' >/dev/null ||
		{ fail chgfrom "envelope sender not changed: $(sink_grep '^X-Mail-Args')"; return; }
	ok chgfrom
}

case_addrcpt() {
	edit_send addrcpt "addrcpt <added@dest.example>" --to rcpt@dest.example || return
	sink_grep '^X-Rcpt-Args: <added@dest.example>' >/dev/null ||
		{ fail addrcpt "added recipient missing: $(sink_grep '^X-Rcpt-Args' | tr '\n' '|')"; return; }
	sink_grep '^X-Rcpt-Args: <rcpt@dest.example>' >/dev/null ||
		{ fail addrcpt "original recipient missing"; return; }
	ok addrcpt
}

case_delrcpt() {
	edit_send delrcpt "delrcpt <rcpt@dest.example>" --to rcpt@dest.example,keep@dest.example || return
	if sink_grep '^X-Rcpt-Args: <rcpt@dest.example>' >/dev/null; then
		fail delrcpt "deleted recipient still delivered"; return
	fi
	sink_grep '^X-Rcpt-Args: <keep@dest.example>' >/dev/null || { fail delrcpt "other recipient lost"; return; }
	ok delrcpt
}

case_replbody() {
	edit_send replbody "replbody new body" --to rcpt@dest.example --body "old body $TOKEN" || return
	local b
	b=$(sink_body)
	[ "$b" = "new body" ] || { fail replbody "body is '$(printf %s "$b" | head -c 200)'"; return; }
	ok replbody
}

case_replbody_lines() {
	# swaks would turn the literal backslash-n into a line break: send with smtplib
	local f="$TG/out/replbody_lines.eml" r qid b
	printf '%s\n' 'From: sender@test.example' 'To: rcpt@dest.example' 'Subject: replbody_lines' \
		'X-Rmilter-Test: replbody line one\nline two' '' 'old body' >"$f"
	r=$(timeout 60 "$PY" "$TOOLS/send_raw.py" "$SMTP_PORT" replbody_lines.client.test \
		sender@test.example rcpt@dest.example "$f" 2>&1)
	qid=${r#250 }
	[ "$qid" != "$r" ] || { fail replbody_lines "not queued: $r"; return; }
	wait_delivered "$qid" || { fail replbody_lines "queue id '$qid' not delivered"; return; }
	b=$(sink_body)
	[ "$b" = "line one
line two" ] || { fail replbody_lines "body is '$(printf %s "$b" | head -c 200)'"; return; }
	ok replbody_lines
}

case_addrcpt_par() {
	edit_send addrcpt_par "addrcpt <par@dest.example> NOTIFY=NEVER" --to rcpt@dest.example || return
	sink_grep '^X-Rcpt-Args: <par@dest.example>.*NOTIFY=NEVER' >/dev/null ||
		{ fail addrcpt_par "added recipient with NOTIFY=NEVER missing: $(sink_grep '^X-Rcpt-Args' | tr '\n' '|')"; return; }
	ok addrcpt_par
}

case_two_test_headers() {
	# every X-Rmilter-Test header is executed, in order; ";" separates commands
	edit_send two_test_headers "addheader X-One 1; addheader X-Two 2" --to rcpt@dest.example \
		--add-header "X-Rmilter-Test: addheader X-Three 3" || return
	local n
	n=$(sink_grep '^X-(One: 1|Two: 2|Three: 3)$' | tr '\n' ' ')
	[ "$n" = "X-One: 1 X-Two: 2 X-Three: 3 " ] || { fail two_test_headers "added headers (in order) are '$n'"; return; }
	ok two_test_headers
}

case_accept() {
	edit_send accept "accept" --to rcpt@dest.example --body "accept $TOKEN" || return
	expect_summary accept accept || { fail accept "no summary log line with test_policy=accept"; return; }
	ok accept
}

case_progress() {
	# SMFIR_PROGRESS before the final reply (Postfix keeps reading)
	edit_send progress "delay 500; progress; addheader X-Progress yes" --to rcpt@dest.example || return
	sink_grep '^X-Progress: yes$' >/dev/null || { fail progress "X-Progress missing"; return; }
	ok progress
}

case_quarantine() {
	msg quarantine --add-header "X-Rmilter-Test: quarantine held"
	[ "$SW_RC" = 0 ] || { fail quarantine "swaks rc=$SW_RC: $(sw_replies)"; return; }
	[ -n "$SW_QID" ] || { fail quarantine "no queue id"; return; }
	wait_maillog "$SW_QID: milter-hold" 10 || { fail quarantine "no milter-hold line for $SW_QID"; return; }
	postqueue -c "$TG/pf/conf" -p 2>&1 | grep -q "^$SW_QID!" ||
		{ fail quarantine "$SW_QID not in the hold queue: $(postqueue -c "$TG/pf/conf" -p 2>&1 | head -5 | tr '\n' '|')"; return; }
	postsuper -c "$TG/pf/conf" -d ALL hold >/dev/null 2>&1
	if postqueue -c "$TG/pf/conf" -p 2>&1 | grep -q "^$SW_QID"; then fail quarantine "postsuper -d did not remove it"; return; fi
	ok quarantine
}

# ---- envelope decisions -----------------------------------------------------

case_env_reject_mail() {
	send env_reject_mail --from test-reject-mail@test.example --to rcpt@dest.example
	[ "$SW_RC" = 23 ] || { fail env_reject_mail "swaks rc=$SW_RC, want 23: $(sw_replies)"; return; }
	expect_reply "550 5.7.1" || { fail env_reject_mail "no 550 5.7.1: $(sw_replies)"; return; }
	ok env_reject_mail
}

# rcpt_case NAME BADRCPT EXPECTED
rcpt_case() {
	local name=$1 bad=$2 want=$3
	send "$name" --from sender@test.example --to "$bad@dest.example,good@dest.example" --body "$name $TOKEN"
	[ "$SW_RC" = 0 ] || { fail "$name" "swaks rc=$SW_RC, want 0 (one good rcpt): $(sw_replies)"; return; }
	expect_reply "$want" || { fail "$name" "reply '$want' not seen: $(sw_replies)"; return; }
	wait_delivered "$SW_QID" || { fail "$name" "not delivered to the good recipient"; return; }
	sink_grep '^X-Rcpt-Args: <good@dest.example>' >/dev/null || { fail "$name" "good recipient missing"; return; }
	if sink_grep "^X-Rcpt-Args: <$bad@" >/dev/null; then fail "$name" "refused recipient delivered"; return; fi
	ok "$name"
}

case_env_reject_rcpt() { rcpt_case env_reject_rcpt test-reject-rcpt "550 5.1.1"; }
case_env_tempfail_rcpt() { rcpt_case env_tempfail_rcpt test-tempfail-rcpt "451 4.7.1"; }

# ---- rule { } sections (rule_sections in lib.sh) -------------------------------

# expect_rules NAME REGEX -> the summary line of the message sent with HELO
# NAME.client.test has a rules module result matching REGEX
expect_rules() {
	local t0
	t0=$(now)
	until grep -E "helo=$1\.client\.test( |$)" "$RLOG" | grep -qE -- "$2"; do
		fle 3 "$(elapsed "$t0")" && return 1
		sleep 0.1
	done
}

# HELO rule: refused before DATA (Postfix reports a milter HELO reject at
# the next command it answers), with the rule's code and template text
case_rule_helo() {
	msg rule_helo --body "rule helo $TOKEN"
	case $SW_RC in 21|23|24) ;; *) fail rule_helo "swaks rc=$SW_RC, want a refusal before DATA: $(sw_replies)"; return ;; esac
	expect_reply "554 5.7.1 HELO rule_helo.client.test refused by rule" ||
		{ fail rule_helo "rule text not seen: $(sw_replies)"; return; }
	if grep -qE '^ *-> DATA' "$SW_OUT"; then fail rule_helo "swaks got as far as DATA"; return; fi
	wait_maillog "milter-reject: (CONNECT|HELO|EHLO|MAIL|RCPT) .*helo=<rule_helo.client.test>" 10 ||
		{ fail rule_helo "no early milter-reject line in the Postfix log"; return; }
	expect_rules rule_helo 'rules=reject \(rule e2e-helo' ||
		{ fail rule_helo "no summary line with rules=reject (rule e2e-helo"; return; }
	ok rule_helo
}

# envrcpt rule: only that recipient is refused, the other gets the mail
case_rule_rcpt() { rcpt_case rule_rcpt rule-bad-rcpt "550 5.1.1 recipient refused by rule"; }

# helo + header rule: decided at end of headers, reported after DATA
case_rule_tempfail() {
	msg rule_tempfail --h-Subject "please defer me" --body "rule tempfail $TOKEN"
	[ "$SW_RC" = 26 ] || { fail rule_tempfail "swaks rc=$SW_RC, want 26 (after DATA): $(sw_replies)"; return; }
	expect_reply "451 4.7.1 deferred by rule" || { fail rule_tempfail "rule text not seen: $(sw_replies)"; return; }
	expect_rules rule_tempfail 'rules=tempfail \(rule e2e-tempfail' ||
		{ fail rule_tempfail "no summary line with rules=tempfail"; return; }
	ok rule_tempfail
}

# helo + body rule: a body line, decided at end of DATA
case_rule_body() {
	local body="$TG/out/rule_body.body"
	printf 'first line\nforbidden line\nlast line %s\n' "$TOKEN" >"$body"
	msg rule_body --body "@$body"
	[ "$SW_RC" = 26 ] || { fail rule_body "swaks rc=$SW_RC, want 26 (end of DATA): $(sw_replies)"; return; }
	expect_reply "550 5.7.1 body refused by rule" || { fail rule_body "rule text not seen: $(sw_replies)"; return; }
	grep -qE '^ *-> DATA' "$SW_OUT" || { fail rule_body "refused before DATA"; return; }
	wait_maillog "milter-reject: END-OF-MESSAGE .*helo=<rule_body.client.test>" 10 ||
		{ fail rule_body "no END-OF-MESSAGE milter-reject in the Postfix log"; return; }
	# the same HELO without the line is delivered (a line split differently
	# does not match: "forbidden" and "line" on two lines)
	printf 'first line\nforbidden\nline\n%s\n' "$TOKEN" >"$body"
	msg rule_body --body "@$body"
	[ "$SW_RC" = 0 ] || { fail rule_body "clean body: swaks rc=$SW_RC: $(sw_replies)"; return; }
	wait_delivered "$SW_QID" || { fail rule_body "clean body not delivered"; return; }
	ok rule_body
}

case_rule_discard() {
	msg rule_discard --add-header "X-Rule: discard" --body "rule discard $TOKEN"
	[ "$SW_RC" = 0 ] || { fail rule_discard "swaks rc=$SW_RC, want 0: $(sw_replies)"; return; }
	[ -n "$SW_QID" ] || { fail rule_discard "no queue id"; return; }
	wait_maillog "$SW_QID: milter-discard" 10 || { fail rule_discard "no milter-discard for $SW_QID"; return; }
	sleep 0.5
	if grep -qs "id $SW_QID\b" "$TG"/sink/*; then fail rule_discard "the message reached the sink"; return; fi
	expect_rules rule_discard 'rules=discard \(rule e2e-discard' ||
		{ fail rule_discard "no summary line with rules=discard"; return; }
	ok rule_discard
}

case_rule_quarantine() {
	msg rule_quarantine --add-header "X-Rule: please hold" --body "rule quarantine $TOKEN"
	[ "$SW_RC" = 0 ] || { fail rule_quarantine "swaks rc=$SW_RC: $(sw_replies)"; return; }
	[ -n "$SW_QID" ] || { fail rule_quarantine "no queue id"; return; }
	wait_maillog "$SW_QID: milter-hold" 10 ||
		{ fail rule_quarantine "no milter-hold line for $SW_QID"; return; }
	postqueue -c "$TG/pf/conf" -p 2>&1 | grep -q "^$SW_QID!" ||
		{ fail rule_quarantine "$SW_QID not in the hold queue"; return; }
	postsuper -c "$TG/pf/conf" -d "$SW_QID" hold >/dev/null 2>&1
	expect_rules rule_quarantine 'action=quarantine .*rules=quarantine \(rule e2e-quarantine' ||
		{ fail rule_quarantine "no summary line with action=quarantine by the rule"; return; }
	ok rule_quarantine
}

# accept at HELO: the other checks are skipped (the test policy would reject)
case_rule_accept() {
	msg rule_accept --add-header "X-Rmilter-Test: reject" --body "rule accept $TOKEN"
	[ "$SW_RC" = 0 ] || { fail rule_accept "swaks rc=$SW_RC, want 0: $(sw_replies)"; return; }
	wait_delivered "$SW_QID" || { fail rule_accept "not delivered"; return; }
	expect_rules rule_accept 'action=accept .*rules=accept \(rule e2e-accept' ||
		{ fail rule_accept "no summary line with action=accept by the rule"; return; }
	ok rule_accept
}

# shadow rule: delivered; the record says what it would have done
case_rule_shadow() {
	msg rule_shadow --body "rule shadow $TOKEN"
	[ "$SW_RC" = 0 ] || { fail rule_shadow "swaks rc=$SW_RC, want 0: $(sw_replies)"; return; }
	wait_delivered "$SW_QID" || { fail rule_shadow "not delivered"; return; }
	expect_rules rule_shadow 'shadow: would reject: rule e2e-shadow' ||
		{ fail rule_shadow "no summary line with the shadow decision"; return; }
	ok rule_shadow
}

# ---- sessions, sizes, concurrency -----------------------------------------------

case_multi_session() {
	local out="$TG/out/multi_session.txt" q1 q3
	timeout 60 "$PY" "$TOOLS/multi_msgs.py" "$SMTP_PORT" "m$TOKEN" >"$out" 2>&1
	local rc=$?
	[ $rc = 0 ] || { fail multi_session "client rc=$rc: $(tail -3 "$out" | tr '\n' '|')"; return; }
	grep -q '^msg1 250 ' "$out" || { fail multi_session "message 1 not accepted: $(tr '\n' '|' <"$out")"; return; }
	grep -q '^rset 250' "$out" || { fail multi_session "RSET not accepted"; return; }
	grep -q '^msg2 550 5.7.1 Rejected by test policy' "$out" || { fail multi_session "message 2 not rejected: $(grep ^msg2 "$out")"; return; }
	grep -q '^msg3 250 ' "$out" || { fail multi_session "message 3 not accepted: $(grep ^msg3 "$out")"; return; }
	q1=$(awk '/^msg1/ { print $3 }' "$out")
	q3=$(awk '/^msg3/ { print $3 }' "$out")
	wait_delivered "$q1" || { fail multi_session "message 1 ($q1) not delivered"; return; }
	sink_grep "^X-Leak: m$TOKEN\$" >/dev/null || { fail multi_session "message 1 lacks its added header"; return; }
	wait_delivered "$q3" || { fail multi_session "message 3 ($q3) not delivered"; return; }
	if sink_grep '^X-Leak:' >/dev/null; then fail multi_session "header of message 1 leaked into message 3"; return; fi
	sink_grep "^Subject: third m$TOKEN" >/dev/null || { fail multi_session "message 3 is not the third message"; return; }
	ok multi_session
}

case_large() {
	local body="$TG/out/large.body" want got
	"$PY" -c '
import sys
with open(sys.argv[1], "w") as f:
    for i in range(2600):
        f.write("line %05d " % i + "abcdefghijklmnopqrstuvwxyz0123456789" * 2 + "\n")
' "$body"
	want=$(tr -d '\r' <"$body" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' | sha256sum | cut -d' ' -f1)
	msg large --body "@$body"
	[ "$SW_RC" = 0 ] || { fail large "swaks rc=$SW_RC: $(sw_replies)"; return; }
	wait_delivered "$SW_QID" || { fail large "not delivered"; return; }
	got=$(sink_body | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' | sha256sum | cut -d' ' -f1)
	[ "$want" = "$got" ] || { fail large "body checksum differs ($(stat -c %s "$body") bytes sent, $(sink_body | wc -c) received)"; return; }
	ok large
}

case_delay_concurrency() {
	local d=$((2000 * SLOW)) limit pids=() i line rc qid t bad=
	limit=$(awk -v s="$SLOW" 'BEGIN { print 1.5 * s }')
	(
		t0=$(now)
		msg delay_slow --add-header "X-Rmilter-Test: delay $d"
		echo "$SW_RC $SW_QID $(elapsed "$t0")" >"$TG/out/delay_slow.res"
	) &
	pids+=($!)
	sleep 0.3
	for i in 1 2 3; do
		(
			t0=$(now)
			msg "delay_fast$i"
			echo "$SW_RC $SW_QID $(elapsed "$t0")" >"$TG/out/delay_fast$i.res"
		) &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	for i in 1 2 3; do
		read -r rc qid t <"$TG/out/delay_fast$i.res" || { bad="fast $i: no result"; break; }
		[ "$rc" = 0 ] || { bad="fast $i: swaks rc=$rc"; break; }
		fle "$t" "$limit" || { bad="fast $i took ${t}s (> ${limit}s) while another message was delayed ${d} ms"; break; }
		note "fast message $i: ${t}s"
	done
	[ -z "$bad" ] || { fail delay_concurrency "$bad"; return; }
	read -r rc qid t <"$TG/out/delay_slow.res" || { fail delay_concurrency "slow: no result"; return; }
	[ "$rc" = 0 ] || { fail delay_concurrency "delayed message: swaks rc=$rc"; return; }
	fle "$(awk -v d="$d" 'BEGIN { print d / 1000 - 0.1 }')" "$t" || { fail delay_concurrency "delayed message took only ${t}s (< ${d} ms)"; return; }
	note "delayed message: ${t}s"
	wait_delivered "$qid" || { fail delay_concurrency "delayed message not delivered"; return; }
	ok delay_concurrency
}

# ---- daemon life cycle -------------------------------------------------------

case_restart() {
	stop_rmilter
	local rc=$RMILTER_RC secs=$RMILTER_STOP_SECS
	[ "$rc" = 0 ] || fail restart_sigterm "SIGTERM exit code $rc after ${secs}s, want 0 (log: $(tail -3 "$RLOG" | tr '\n' '|'))"
	[ "$rc" = 0 ] && { fle "$secs" $((3 * SLOW)) && ok restart_sigterm || fail restart_sigterm "took ${secs}s to exit"; }
	msg restart_down
	if [ "$SW_RC" = 23 ] && expect_reply "451 4.7.1"; then
		ok restart_milter_down_tempfail
	else
		fail restart_milter_down_tempfail "swaks rc=$SW_RC, want 23 with 451 4.7.1: $(sw_replies)"
	fi
	start_rmilter || { fail restart_up "daemon did not start again"; return; }
	msg restart_up --body "after restart $TOKEN"
	[ "$SW_RC" = 0 ] || { fail restart_up "swaks rc=$SW_RC: $(sw_replies)"; return; }
	wait_delivered "$SW_QID" || { fail restart_up "not delivered"; return; }
	ok restart_up
}

# hup_and_wait -> SIGHUP and wait for the daemon to log something about it
hup_and_wait() {
	log_mark
	kill -HUP "$RMILTER_PID"
	wait_log_since 'reload|config|sighup|hup' $((3 * SLOW)) || sleep 1
	sleep 0.2
}

case_reload() {
	cp "$RCONF" "$TG/rmilter.conf.good"
	write_conf "this_directive_does_not_exist = 42;"   # line 7
	log_mark
	kill -HUP "$RMILTER_PID"
	if wait_log_since 'rmilter\.conf:7' $((5 * SLOW)); then
		note "log: $(log_since | grep -E 'rmilter\.conf:7' | head -1 | cut -c1-200)"
	else
		fail reload_bad_config_logged "no log line with rmilter.conf:7 after SIGHUP: $(log_since | tail -3 | tr '\n' '|')"
	fi
	sleep 0.3
	rmilter_alive || { fail reload_bad_config "daemon died on SIGHUP with a bad config"; return; }
	edit_send reload_bad_config "addheader X-Added hello" --to rcpt@dest.example || return
	sink_grep '^X-Added: hello$' >/dev/null || { fail reload_bad_config "old config no longer in effect"; return; }
	ok reload_bad_config

	TEST_POLICY=no write_conf
	hup_and_wait
	edit_send reload_good_config "addheader X-Added hello" --to rcpt@dest.example || return
	if sink_grep '^X-Added:' >/dev/null; then
		fail reload_good_config "test_policy = no after SIGHUP, but the header was still added"
	else
		ok reload_good_config
	fi
	write_conf
	hup_and_wait
	edit_send reload_restore "addheader X-Added hello" --to rcpt@dest.example || return
	sink_grep '^X-Added: hello$' >/dev/null || { fail reload_restore "test policy not back after SIGHUP"; return; }
	ok reload_restore
}

case_cli() {
	local out="$TG/out/cli.txt" rc
	printf '# bad config\nbind_socket = "inet:24999@127.0.0.1";\nno_such_directive = yes;\n' >"$TG/bad.conf"
	# shellcheck disable=SC2086
	timeout 60 $RMILTER_WRAPPER "$RMILTER_BIN" -t -c "$TG/bad.conf" >"$out" 2>&1
	rc=$?
	if [ $rc = 1 ] && grep -q 'bad\.conf:3' "$out"; then
		ok cli_test_bad_config
	else
		fail cli_test_bad_config "rc=$rc (want 1), output: $(grep -v '^==[0-9]*==' "$out" | head -5 | tr '\n' '|')"
	fi
	# shellcheck disable=SC2086
	timeout 60 $RMILTER_WRAPPER "$RMILTER_BIN" -t -c "$ROOT/conf/rmilter.conf" >"$out" 2>&1
	rc=$?
	[ $rc = 0 ] && ok cli_test_sample_config ||
		fail cli_test_sample_config "rc=$rc (want 0), output: $(grep -v '^==[0-9]*==' "$out" | head -5 | tr '\n' '|')"
	# shellcheck disable=SC2086
	timeout 60 $RMILTER_WRAPPER "$RMILTER_BIN" -t -c "$RCONF" >"$out" 2>&1
	rc=$?
	[ $rc = 0 ] && ok cli_test_e2e_config ||
		fail cli_test_e2e_config "rc=$rc (want 0), output: $(grep -v '^==[0-9]*==' "$out" | head -5 | tr '\n' '|')"
	timeout 60 "$RMILTER_BIN" -v >"$out" 2>&1
	rc=$?
	if [ $rc = 0 ] && grep -qE '[0-9]+\.[0-9]+' "$out"; then
		ok cli_version
		note "$(head -1 "$out")"
	else
		fail cli_version "rc=$rc, output: $(head -3 "$out" | tr '\n' '|')"
	fi
}

# ---- listening sockets: unix (stale file, mode), inet6, systemd activation ----------

# side_rmilter NAME BIND [EXTRA] -> starts a second daemon with its own config and log;
# SIDE_PID, SIDE_LOG
side_rmilter() {
	SIDE_LOG="$TG/side-$1.log"
	printf 'bind_socket = "%s";\nlog_level = debug;\n%s\n' "$2" "${3:-}" >"$TG/side-$1.conf"
	$RMILTER_WRAPPER "$RMILTER_BIN" -n -c "$TG/side-$1.conf" 2>"$SIDE_LOG" &
	SIDE_PID=$!
}

# side_stop -> SIGTERM, wait (bounded), SIDE_RC = exit code
side_stop() {
	local i
	kill -TERM "$SIDE_PID" 2>/dev/null
	for i in $(seq 1 $((100 * SLOW))); do
		kill -0 "$SIDE_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$SIDE_PID" 2>/dev/null
	wait "$SIDE_PID" 2>/dev/null
	SIDE_RC=$?
}

case_sockets() {
	local sock="$TG/side.sock" out mode p6=$((MILTER_PORT + 31)) pa=$((MILTER_PORT + 32))
	# a stale socket file left by a crashed instance must be replaced
	"$PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$sock"
	side_rmilter unix "unix:$sock" "bind_socket_mode = 0660;"
	if out=$(timeout 30 "$PY" "$TOOLS/sockets.py" probe "unix:$sock" 2>&1); then
		mode=$(stat -c %a "$sock" 2>/dev/null)
		side_stop
		if [ "$mode" = 660 ] && [ "$SIDE_RC" = 0 ] && [ ! -e "$sock" ]; then
			ok socket_unix
			note "stale file replaced, mode $mode, removed at exit"
		else
			fail socket_unix "mode=$mode rc=$SIDE_RC exists-after-exit=$([ -e "$sock" ] && echo yes || echo no)"
		fi
	else
		side_stop
		fail socket_unix "$out | $(tail -3 "$SIDE_LOG" | tr '\n' '|')"
	fi

	side_rmilter inet6 "inet6:$p6@[::1]"
	if out=$(timeout 30 "$PY" "$TOOLS/sockets.py" probe "inet6:$p6@[::1]" 2>&1); then
		side_stop
		[ "$SIDE_RC" = 0 ] && ok socket_inet6 || fail socket_inet6 "exit $SIDE_RC"
	else
		side_stop
		fail socket_inet6 "$out | $(tail -3 "$SIDE_LOG" | tr '\n' '|')"
	fi

	# systemd socket activation: fd 3 is used whatever bind_socket says
	printf 'bind_socket = "unix:%s/never.sock";\nlog_level = debug;\n' "$TG" >"$TG/side-act.conf"
	if out=$(timeout 60 "$PY" "$TOOLS/sockets.py" activate "$pa" "$RMILTER_BIN" \
			"$TG/side-act.conf" "$TG/side-act.log" 2>&1) &&
		grep -q 'socket activation' "$TG/side-act.log" && [ ! -e "$TG/never.sock" ]; then
		ok socket_systemd_activation
	else
		fail socket_systemd_activation "$out | $(tail -3 "$TG/side-act.log" | tr '\n' '|')"
	fi
}

# ---- raw protocol and hostile input ---------------------------------------------

# raw NAME SCENARIO [ARG] -> runs milter_raw.py; RAW_OUT holds its output
raw() {
	RAW_OUT=$(timeout 60 "$PY" "$TOOLS/milter_raw.py" "$MILTER_PORT" "$2" ${3:+"$3"} 2>&1)
}

probe_ok() {
	local out
	out=$(timeout 30 "$PY" "$TOOLS/milter_raw.py" "$MILTER_PORT" probe 2>&1) && return 0
	PROBE_ERR=$out
	return 1
}

case_raw_probe() {
	probe_ok && ok raw_probe || fail raw_probe "$PROBE_ERR"
}

case_quit_nc() {
	raw quit_nc quit-nc && ok quit_nc || fail quit_nc "$RAW_OUT"
}

case_raw_progress() {
	raw raw_progress progress && ok raw_progress || fail raw_progress "$RAW_OUT"
}

case_pipelined() {
	raw pipelined pipelined && ok pipelined || fail pipelined "$RAW_OUT"
}

# routine debug lines (negotiation, phase changes) do not count as "a line about it"
LOG_ROUTINE='optneg: MTA|phase [a-z]+ -> '

# hostile NAME SCENARIO LOG-REGEX
hostile() {
	local name=$1 scen=$2 re=$3
	log_mark
	if ! raw "$name" "$scen"; then fail "$name" "$RAW_OUT"; return; fi
	note "$RAW_OUT"
	sleep 0.3
	rmilter_alive || { fail "$name" "daemon died"; return; }
	probe_ok || { fail "$name" "daemon alive but not serving: $PROBE_ERR"; return; }
	wait_log_since "$re" 2 || { fail "$name" "no log line about it (/$re/i): $(log_since | tail -3 | tr '\n' '|')"; return; }
	note "log: $(log_since | grep -vE "$LOG_ROUTINE" | grep -iE -- "$re" | head -1 | cut -c1-200)"
	ok "$name"
}

case_hostile_zero_len() { hostile hostile_zero_len zero-len 'length|zero|too short|malformed'; }
case_hostile_huge_len() { hostile hostile_huge_len huge-len 'length|too (big|large|long)|limit|oversize'; }
case_hostile_unknown_cmd() { hostile hostile_unknown_cmd unknown-cmd 'unknown|unexpected|invalid|unsupported'; }
case_hostile_before_optneg() { hostile hostile_before_optneg before-optneg 'negotiat|optneg|unexpected|out of order'; }
case_hostile_truncated() { hostile hostile_truncated truncated 'eof|closed|trunc|incomplete|partial|disconnect|reset|mid'; }

case_hostile_slowloris() {
	# one byte per second of a frame; frame_timeout (FRAME_TIMEOUT s) must drop it, and
	# a normal mail sent meanwhile must not wait for it
	local secs=$((FRAME_TIMEOUT + 8)) pid out="$TG/out/slowloris.txt" t0 t after
	log_mark
	timeout 60 "$PY" "$TOOLS/milter_raw.py" "$MILTER_PORT" slowloris "$secs" >"$out" 2>&1 &
	pid=$!
	sleep 1.5
	t0=$(now)
	msg drip_mail --body "during the drip $TOKEN"
	t=$(elapsed "$t0")
	wait "$pid"
	note "$(cat "$out")"
	note "normal mail during the drip: ${t}s"
	if [ "$SW_RC" != 0 ]; then
		fail hostile_slowloris "a normal mail during the slow connection failed: rc=$SW_RC $(sw_replies)"; return
	elif ! fle "$t" $((3 * SLOW)); then
		fail hostile_slowloris "a normal mail took ${t}s during the slow connection"; return
	elif ! wait_delivered "$SW_QID"; then
		fail hostile_slowloris "the normal mail was not delivered"; return
	fi
	rmilter_alive || { fail hostile_slowloris "daemon died"; return; }
	probe_ok || { fail hostile_slowloris "not serving afterwards: $PROBE_ERR"; return; }
	after=$(sed -n 's/.*dropped the slow connection after \([0-9.]*\) s.*/\1/p' "$out")
	[ -n "$after" ] || { fail hostile_slowloris "frame_timeout = ${FRAME_TIMEOUT}s, but the daemon kept a frame dripping for ${secs}s open"; return; }
	fle "$after" $((FRAME_TIMEOUT + 3 * SLOW)) ||
		{ fail hostile_slowloris "dropped only after ${after}s (frame_timeout = ${FRAME_TIMEOUT}s)"; return; }
	wait_log_since 'timeout|timed out|slow|too long' 2 ||
		{ fail hostile_slowloris "dropped, but no log line says why: $(log_since | grep -vE "$LOG_ROUTINE" | tail -3 | tr '\n' '|')"; return; }
	note "log: $(log_since | grep -vE "$LOG_ROUTINE" | grep -iE 'timeout|timed out|slow|too long' | head -1 | cut -c1-200)"
	ok hostile_slowloris
}

# ---- miltertest scripts ----------------------------------------------------------

case_miltertest() {
	local f name out rc
	for f in "$E2E_DIR"/miltertest/*.lua; do
		[ -f "$f" ] || continue
		case $(basename "$f") in _*) continue ;; esac
		name="miltertest_$(basename "$f" .lua)"
		want "$name" || [ ${#PATTERNS[@]} -eq 0 ] || continue
		out="$TG/out/$name.txt"
		timeout 120 miltertest -D port="$MILTER_PORT" -D mtdir="$E2E_DIR/miltertest" -s "$f" >"$out" 2>&1
		rc=$?
		if [ $rc = 0 ] && grep -q '^PASS' "$out"; then
			ok "$name"
		else
			fail "$name" "miltertest rc=$rc: $(grep -v '^ *$' "$out" | tail -4 | tr '\n' '|')"
		fi
		grep -v '^PASS' "$out" | sed 's/^/   # /' | head -20
		ensure_rmilter "$name"
	done
}

# ---- final checks ----------------------------------------------------------------

# sanitizer/valgrind findings in the daemon's stderr (all starts)
check_daemon_log() {
	local bad
	bad=$(grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer|MemorySanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer|definitely lost: [1-9]|indirectly lost: [1-9]|ERROR SUMMARY: [1-9]|Invalid (read|write|free)|uninitialised' "$RLOG" | head -5)
	if [ -n "$bad" ]; then
		fail daemon_log_clean "sanitizer/valgrind report in the daemon log: $(echo "$bad" | tr '\n' '|')"
		grep -nE -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:|Invalid (read|write)|definitely lost: [1-9]' "$RLOG" | head -60 | sed 's/^/   | /'
	else
		ok daemon_log_clean
	fi
}

final_checks() {
	if rmilter_alive; then
		stop_rmilter $((10 * SLOW))
		if [ "$RMILTER_RC" = 0 ]; then
			ok daemon_exit_clean
			note "final SIGTERM: exit 0 after ${RMILTER_STOP_SECS}s"
		else
			fail daemon_exit_clean "final SIGTERM: exit code $RMILTER_RC after ${RMILTER_STOP_SECS}s (valgrind/ASan errors make it non-zero); log tail: $(tail -5 "$RLOG" | tr '\n' '|')"
		fi
	fi
	check_daemon_log
	if [[ "$RMILTER_WRAPPER" == *valgrind* ]]; then
		# one clean leak summary per daemon run proves valgrind really checked each exit
		local n
		n=$(grep -cE 'definitely lost: 0 bytes|no leaks are possible' "$RLOG")
		if [ "$n" -ge "$RMILTER_STARTS" ]; then
			ok valgrind_leak_summaries
			note "$n clean valgrind leak summaries for $RMILTER_STARTS daemon runs"
		else
			fail valgrind_leak_summaries "$n clean leak summaries for $RMILTER_STARTS daemon runs: $(grep -E 'definitely lost|indirectly lost|ERROR SUMMARY' "$RLOG" | tr '\n' '|')"
		fi
	fi
}

# ---- main --------------------------------------------------------------------------

trap 'e2e_teardown' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

e2e_init || { fail e2e-setup "no test ground"; echo "0 passed, 1 failed"; exit 1; }
if ! start_sink || ! start_postfix; then
	fail e2e-setup "Postfix/smtp-sink did not start"
	echo "$E2E_PASSED passed, $E2E_FAILED failed"
	exit 1
fi
write_conf
if ! start_rmilter; then
	fail e2e-setup "rmilter did not start"
	echo "$E2E_PASSED passed, $E2E_FAILED failed"
	exit 1
fi
T_START=$(now)

for c in plain reject reject_custom tempfail reject_multi discard \
	addheader insheader chgheader delheader chgfrom addrcpt addrcpt_par delrcpt replbody \
	replbody_lines two_test_headers accept progress \
	quarantine env_reject_mail env_reject_rcpt env_tempfail_rcpt \
	rule_helo rule_rcpt rule_tempfail rule_body rule_discard rule_quarantine \
	rule_accept rule_shadow \
	multi_session large delay_concurrency \
	raw_probe raw_progress quit_nc pipelined \
	hostile_zero_len hostile_huge_len hostile_unknown_cmd hostile_before_optneg \
	hostile_truncated hostile_slowloris \
	restart reload cli sockets audit_record noop spool_1000; do
	run_case "$c"
done
# scan_* cases (cases_scanners.sh): real rspamd/spamd/clamd (peers.sh) and fake servers;
# the peers are started here, once, only if a scan_* case is selected
scan_run_all
# store_* cases (cases_store.sh): greylisting, limits, replies on a real redis-server
# (peers.sh redis_start) and the in-memory store; redis started only if one is selected
store_run_all
# dkim_*, spf_*, beanstalk_* cases (cases_dkim.sh, cases_spf.sh, cases_beanstalk.sh)
dkim_run_all
spf_run_all
beanstalk_run_all
case_miltertest
final_checks

note "e2e took $(elapsed "$T_START")s"
if [ "$E2E_FAILED" -gt 0 ]; then
	echo "--- daemon log tail ($RLOG) ---"
	tail -40 "$RLOG" | cut -c1-300
	echo "--- Postfix log tail ($MAILLOG) ---"
	tail -25 "$MAILLOG" | cut -c1-300
fi
e2e_teardown
trap - EXIT
echo "$E2E_PASSED passed, $E2E_FAILED failed"
[ "$E2E_FAILED" -eq 0 ]
