# shellcheck shell=bash
# cases_dkim.sh -- e2e cases of the dkim module (sourced by run.sh); every case is named
# dkim_*, so `bash test/e2e/run.sh dkim_` runs them all.
#
# Keys are made here (openssl: RSA 2048 and Ed25519, mode 0600).  Mail is signed through
# the private Postfix (swaks, or smtp_auth.py for SASL) and the message delivered to
# smtp-sink is verified by an independent verifier, dkimpy (python3-dkim), whose key
# lookup is answered from a local table (tools/dkim_verify.py): no DNS at all.
# Senders: sign_networks = 127.0.0.1 unless the case is about authentication.

DKIM_CASES=(
	dkim_simple dkim_relaxed_folded dkim_sha1 dkim_ed25519 dkim_oversign_from
	dkim_wildcard_dir dkim_subdomains dkim_no_substring dkim_auth_only
	dkim_subject_rewrite dkim_accepted dkim_disabled dkim_shadow dkim_bad_key_refused
)

dkim_wanted() {
	local c
	for c in "${DKIM_CASES[@]}"; do
		want "$c" && return 0
	done
	return 1
}

# dkim_pubtxt KEYFILE -> the TXT record (v=DKIM1; k=...; p=...) of a private key
dkim_pubtxt() {
	if openssl pkey -in "$1" -noout -text 2>/dev/null | grep -q ED25519; then
		printf 'v=DKIM1; k=ed25519; p=%s' "$(openssl pkey -in "$1" -pubout -outform DER 2>/dev/null |
			tail -c 32 | base64 -w0)"
	else
		printf 'v=DKIM1; k=rsa; p=%s' "$(openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | base64 -w0)"
	fi
}

# dkim_key FILE SELECTOR DOMAIN [ed25519] -> a new key at FILE (0600) and its record in
# the verifier's table
dkim_key() {
	if [ "${4:-}" = ed25519 ]; then
		openssl genpkey -algorithm ed25519 -out "$1" 2>/dev/null || return 1
	else
		openssl genrsa -out "$1" 2048 2>/dev/null || return 1
	fi
	chmod 600 "$1"
	echo "$2._domainkey.$3 $(dkim_pubtxt "$1")" >>"$DKIM_DIR/keys.txt"
}

# dkim_setup -> keys and the key directory; false (after reporting) if not possible
dkim_setup() {
	[ "${DKIM_READY:-0}" = 1 ] && return 0
	if ! "$PY" -c 'import dkim' 2>/dev/null || ! command -v openssl >/dev/null; then
		if is_ci; then fail dkim_setup "python3-dkim or openssl missing"; else echo "skip dkim_*: python3-dkim or openssl missing"; fi
		return 1
	fi
	DKIM_DIR=$TG/dkim
	mkdir -p "$DKIM_DIR/keydir" "$DKIM_DIR/keydir2"
	: >"$DKIM_DIR/keys.txt"
	dkim_key "$DKIM_DIR/test.key" e2e test.example &&
		dkim_key "$DKIM_DIR/ed.key" ed e2e-ed.example ed25519 &&
		dkim_key "$DKIM_DIR/keydir/other.example.wild.key" wild other.example &&
		dkim_key "$DKIM_DIR/keydir/third.example.wild.key" wild third.example || {
		fail dkim_setup "openssl could not make the keys"
		return 1
	}
	# a key in the wrong format for the refused-config case
	printf 'not a key\n' >"$DKIM_DIR/garbage.key"
	chmod 600 "$DKIM_DIR/garbage.key"
	DKIM_READY=1
}

# dkim_run_all -> run.sh hook: the dkim_* cases, then the base config again
dkim_run_all() {
	dkim_wanted || return 0
	dkim_setup || return 0
	local c
	for c in "${DKIM_CASES[@]}"; do
		run_case "$c"
	done
	scan_restore
}

# dkim_conf NAME DKIM-SECTION-BODY [GLOBAL-LINES] -> the base config plus a dkim section
dkim_conf() {
	conf_or_fail "$1" "${3:-}
dkim {
$2
}"
}

# the usual section: test.example's key, signing for 127.0.0.1
dkim_basic() {
	printf '  sign_networks = 127.0.0.1;\n  domain { key = %s; domain = "test.example"; selector = "e2e"; }\n%s\n' \
		"$DKIM_DIR/test.key" "${1:-}"
}

# dkim_send NAME FROM [swaks args] -> sent from 127.0.0.1 and delivered; false after
# reporting otherwise
dkim_send() {
	local name=$1 from=$2
	shift 2
	send "$name" --from "$from" --to rcpt@dest.example --h-From "<$from>" \
		--h-Subject "dkim case $name" "$@"
	[ "$SW_RC" = 0 ] || { fail "$name" "swaks rc=$SW_RC: $(sw_replies)"; return 1; }
	wait_delivered "$SW_QID" || { fail "$name" "queue id '$SW_QID' not delivered"; return 1; }
}

# dkim_verify NAME [--tamper-from] -> DKIM_RESULT: the verifier's verdict on the delivered
# message; true if it passed
dkim_verify() {
	DKIM_RESULT=$(timeout 30 "$PY" "$TOOLS/dkim_verify.py" "${SINK_FILES[0]}" "$DKIM_DIR/keys.txt" "${@:2}" 2>&1)
}

# dkim_expect_pass NAME REGEX -> the delivered message verifies and the verdict matches
dkim_expect_pass() {
	if ! dkim_verify "$1"; then
		fail "$1" "dkimpy: $DKIM_RESULT; signature: $(sink_grep -A3 '^DKIM-Signature:' | head -4 | tr '\n' '|')"
		return 1
	fi
	printf '%s' "$DKIM_RESULT" | grep -qE -- "$2" || { fail "$1" "verified, but '$DKIM_RESULT' does not match /$2/"; return 1; }
}

# dkim_summary NAME REGEX -> the summary line of the message sent with HELO NAME.client.test
dkim_summary() { summary_or_fail "$1" "$2"; }

# dkim_msg_headers -> the header block of the delivered message as Postfix sent it: the
# lines smtp-sink puts on top (its X-* lines and its Received) removed, CRs removed
dkim_msg_headers() {
	tr -d '\r' <"${SINK_FILES[0]}" | awk '
		!body && /^$/ { exit }
		!past && /^[ \t]+by smtp-sink / { past = 1; next }
		!past { next }
		past == 1 && /^[ \t]/ { next }
		{ past = 2; print }'
}

# dkim_first_header NAME -> the DKIM-Signature is the first header of the message as
# Postfix delivered it (above Postfix's own Received)
dkim_first_header() {
	local first
	first=$(dkim_msg_headers | head -1 | cut -d: -f1)
	[ "$first" = DKIM-Signature ] || { fail "$1" "first header is '$first', not DKIM-Signature"; return 1; }
}

case_dkim_simple() {
	local n=dkim_simple
	dkim_conf $n "$(dkim_basic)" || return
	# a body over the base config's max_size (4k): the dkim module needs all of it;
	# a folded header: simple canonicalization keeps its line break; and a signed
	# header written without a space after the colon, signed as written
	dkim_send $n sender@test.example --add-header "References: <r1.$TOKEN@test.example>
 <r2.$TOKEN@test.example>" --header "Date:Sun, 22 Nov 2026 10:00:00 +0000" \
		--body "$(for i in $(seq 1 200); do echo "line $i of a long body"; done)" || return
	dkim_first_header $n || return
	dkim_msg_headers | grep -q '^Date:Sun, 22 Nov' ||
		{ fail $n "the Date header was not delivered as written ('Date:Sun'): $(dkim_msg_headers | grep -i '^date' | head -1)"; return; }
	dkim_expect_pass $n 'pass d=test\.example s=e2e a=rsa-sha256 c=simple/simple h=[^ ]*References' || return
	[ "$(dkim_msg_headers | sed -n 2p | cut -d: -f1)" = Received ] ||
		{ fail $n "fold_header = no, but the signature spans lines: $(dkim_msg_headers | head -2 | tr '\n' '|' | cut -c1-200)"; return; }
	dkim_summary $n 'dkim=continue \(signed d=test\.example s=e2e a=rsa-sha256' || return
	ok $n
	note "$DKIM_RESULT"
}

case_dkim_relaxed_folded() {
	local n=dkim_relaxed_folded
	dkim_conf $n "$(dkim_basic '  header_canon = relaxed; body_canon = relaxed; fold_header = yes;')" || return
	dkim_send $n sender@test.example --add-header "To: Someone   <rcpt@dest.example>,
	  Other <other@dest.example>" --body "trailing spaces   
and tabs	

" || return
	[ "$(dkim_msg_headers | sed -n 2p | cut -c1)" = "$(printf '\t')" ] ||
		{ fail $n "fold_header = yes, but the signature is not folded: $(dkim_msg_headers | head -2 | tr '\n' '|' | cut -c1-200)"; return; }
	dkim_expect_pass $n 'c=relaxed/relaxed' || return
	ok $n
	note "$DKIM_RESULT"
}

case_dkim_sha1() {
	local n=dkim_sha1
	dkim_conf $n "$(dkim_basic '  sign_alg = sha1;')" || return
	dkim_send $n sender@test.example || return
	dkim_expect_pass $n 'a=rsa-sha1' || return
	ok $n
}

case_dkim_ed25519() {
	local n=dkim_ed25519 sec out
	sec="  sign_networks = 127.0.0.1; sign_alg = ed25519; header_canon = relaxed;
  domain { key = $DKIM_DIR/ed.key; domain = \"e2e-ed.example\"; selector = \"ed\"; }"
	# libopendkim <= 2.11.0 leaks the key of every Ed25519 signature: rmilter refuses
	# sign_alg = ed25519 with such a library, and says why
	write_conf "dkim {
$sec
}"
	out=$(timeout 30 "$RMILTER_BIN" -t -c "$RCONF" 2>&1)
	if printf '%s' "$out" | grep -q 'frees no Ed25519 key'; then
		ok $n
		note "refused with this libopendkim: $(printf '%s' "$out" | grep -o 'libopendkim [0-9.]* frees no Ed25519 key[^;]*')"
		return
	fi
	dkim_conf $n "$sec" || return
	dkim_send $n sender@e2e-ed.example || return
	dkim_expect_pass $n 'd=e2e-ed\.example s=ed a=ed25519-sha256' || return
	ok $n
}

case_dkim_oversign_from() {
	local n=dkim_oversign_from
	dkim_conf $n "$(dkim_basic)" || return
	dkim_send $n sender@test.example || return
	dkim_expect_pass $n 'h=[^ ]*[Ff]rom:[^ ]*[Ff]rom' || return
	if dkim_verify $n --tamper-from; then
		fail $n "a second From added after signing still verifies: $DKIM_RESULT"; return
	fi
	ok $n
	note "with a From added after signing: $DKIM_RESULT"
}

case_dkim_wildcard_dir() {
	local n=dkim_wildcard_dir
	dkim_conf $n "$(dkim_basic "  domain { key = $DKIM_DIR/keydir; domain = \"*\"; selector = \"wild\"; }")" || return
	dkim_send $n a@other.example || return
	dkim_expect_pass $n 'd=other\.example s=wild' || return
	dkim_send ${n}_third b@Third.Example || return
	dkim_expect_pass ${n}_third 'd=third\.example s=wild' || return
	# the exact entry wins over the wildcard
	dkim_send ${n}_exact c@test.example || return
	dkim_expect_pass ${n}_exact 'd=test\.example s=e2e' || return
	dkim_send ${n}_nokey d@nokey.example || return
	if sink_grep '^DKIM-Signature:' >/dev/null; then fail $n "nokey.example was signed"; return; fi
	dkim_summary ${n}_nokey 'dkim=continue \(not signed: no key for domain nokey\.example' || return
	ok $n
}

case_dkim_subdomains() {
	local n=dkim_subdomains
	dkim_conf $n "  sign_networks = 127.0.0.1;
  domain { key = $DKIM_DIR/test.key; domain = \"test.example\"; selector = \"e2e\"; sign_subdomains = yes; }" || return
	dkim_send $n x@mail.dept.test.example || return
	dkim_expect_pass $n 'd=test\.example s=e2e' || return
	dkim_summary $n 'signed d=test\.example' || return
	ok $n
}

case_dkim_no_substring() {
	local n=dkim_no_substring
	dkim_conf $n "$(dkim_basic)" || return
	# rmilter 1.6 matched with strstr(): "nottest.example" contains "test.example"
	dkim_send $n x@nottest.example || return
	if sink_grep '^DKIM-Signature:' >/dev/null; then fail $n "nottest.example signed with test.example's key"; return; fi
	dkim_summary $n 'not signed: no key for domain nottest\.example' || return
	# and a subdomain without sign_subdomains
	dkim_send ${n}_sub x@sub.test.example || return
	if sink_grep '^DKIM-Signature:' >/dev/null; then fail $n "sub.test.example signed without sign_subdomains"; return; fi
	ok $n
}

case_dkim_auth_only() {
	local n=dkim_auth_only out rc qid
	dkim_conf $n "  domain { key = $DKIM_DIR/test.key; domain = \"test.example\"; selector = \"e2e\"; }" || return
	dkim_send $n sender@test.example || return
	if sink_grep '^DKIM-Signature:' >/dev/null; then fail $n "unauthenticated mail was signed"; return; fi
	dkim_summary $n 'auth=- .*dkim=continue \(not signed: sender not authenticated' || return
	store_sasl_setup || { fail $n "$STORE_SASL_WHY"; return; }
	out=$(timeout 60 "$PY" "$TOOLS/smtp_auth.py" "$STORE_AUTH_PORT" ${n}_sasl.client.test 127.0.0.1 \
		"auth-$TOKEN@test.example" "rcpt@dest.example" "dkim $n" 2>&1)
	rc=$?
	[ $rc = 0 ] || { fail $n "SASL submission rc=$rc: $(echo "$out" | tr '\n' '|')"; return; }
	qid=$(echo "$out" | sed -n 's/^250 \([0-9A-Za-z]*\)$/\1/p')
	wait_delivered "$qid" || { fail $n "queue id '$qid' not delivered"; return; }
	dkim_expect_pass $n 'd=test\.example' || return
	dkim_summary ${n}_sasl 'auth=anonymous .*dkim=continue \(signed d=test\.example' || return
	ok $n
}

case_dkim_subject_rewrite() {
	local n=dkim_subject_rewrite
	# test_policy (TEST_POLICY.md) runs before dkim here and rewrites the Subject and adds
	# and deletes headers at the end of the message: the signature covers the result
	dkim_conf $n "$(dkim_basic '  sign_headers = from, to, subject, date, message-id, x-added, x-gone;')" \
		'module_order = test_policy, dkim;' || return
	dkim_send $n sender@test.example --add-header "X-Gone: soon" \
		--add-header "X-Rmilter-Test: chgheader Subject 1 ***SPAM*** rewritten; addheader X-Added yes; delheader X-Gone 1" || return
	sink_grep '^Subject: \*\*\*SPAM\*\*\* rewritten$' >/dev/null || { fail $n "Subject not rewritten: $(sink_grep '^Subject:')"; return; }
	if sink_grep '^X-Gone:' >/dev/null; then fail $n "X-Gone not deleted"; return; fi
	dkim_expect_pass $n 'h=[^ ]*[Ss]ubject' || return
	printf '%s' "$DKIM_RESULT" | grep -qiE 'h=[^ ]*x-added' || { fail $n "X-Added not signed: $DKIM_RESULT"; return; }
	ok $n
}

case_dkim_accepted() {
	local n=dkim_accepted
	# a rule accepts the message at HELO: the other modules are skipped, dkim still signs
	dkim_conf $n "$(dkim_basic)" 'rule { name = e2e-dkim-accept; accept; helo /^dkim_accepted\./; }' || return
	dkim_send $n sender@test.example || return
	dkim_expect_pass $n 'd=test\.example' || return
	dkim_summary $n 'by=rules@helo .*dkim=continue \(signed d=test\.example' || return
	ok $n
}

case_dkim_disabled() {
	local n=dkim_disabled
	dkim_conf $n "$(dkim_basic '  enable = no;')" || return
	dkim_send $n sender@test.example || return
	if sink_grep '^DKIM-Signature:' >/dev/null; then fail $n "signed with enable = no"; return; fi
	dkim_summary $n 'dkim=continue \(not signed: disabled' || return
	ok $n
}

case_dkim_shadow() {
	local n=dkim_shadow
	dkim_conf $n "$(dkim_basic '  mode = shadow;')" || return
	dkim_send $n sender@test.example || return
	if sink_grep '^DKIM-Signature:' >/dev/null; then fail $n "signature added in shadow mode"; return; fi
	dkim_summary $n 'dkim=continue \(shadow: signed, not added: d=test\.example' || return
	ok $n
}

case_dkim_bad_key_refused() {
	local n=dkim_bad_key_refused out rc
	write_conf "dkim {
  domain { key = $DKIM_DIR/garbage.key; domain = \"test.example\"; selector = \"e2e\"; }
}"
	out=$(timeout 30 "$RMILTER_BIN" -t -c "$RCONF" 2>&1)
	rc=$?
	[ $rc = 1 ] || { fail $n "rmilter -t rc=$rc (want 1): $(echo "$out" | head -3 | tr '\n' '|')"; return; }
	echo "$out" | grep -qE 'rmilter\.conf:8: error: .*garbage\.key.*not a private key' ||
		{ fail $n "no file:line error about the key: $(echo "$out" | head -3 | tr '\n' '|')"; return; }
	# the running daemon refuses it on SIGHUP and keeps signing with the old config
	log_mark
	kill -HUP "$RMILTER_PID"
	wait_log_since 'reload failed' $((5 * SLOW)) || { fail $n "SIGHUP did not refuse the config: $(log_since | tail -3 | tr '\n' '|')"; return; }
	rmilter_alive || { fail $n "daemon died"; return; }
	ok $n
	note "$(echo "$out" | grep error | head -1)"
}
