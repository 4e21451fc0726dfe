# shellcheck shell=bash
# cases_spf.sh -- e2e cases of the spf module (sourced by run.sh); every case is named
# spf_*, so `bash test/e2e/run.sh spf_` runs them all.
#
# The peers, started here only when an spf_* case is selected, on loopback ports of the
# run's block (peer_port), stopped by PID in spf_stop:
#   - our own dnsmasq (--no-resolv, local=/#/: it never forwards, every other name is
#     NXDOMAIN) serving the zone *.spf.test written below;
#   - tools/dns_delay.py in front of it: rmilter's only nameserver.  Names with a label
#     "slow" are answered after SPF_SLOW seconds, names under drop.spf.test never (the
#     temperror case); the rest at once.  It logs every query ($SPF_DIR/proxy.log).
#   - a second smtpd of the private Postfix that trusts XCLIENT from 127.0.0.0/8: swaks --xclient-addr gives each message a TEST-NET client
#     address (libspf2 passes loopback clients without looking, RFC 7208 aside), and
#     those TEST-NET networks are its mynetworks (relaying allowed).
# The daemon's config: spf_domains lists the *.spf.test domains (not test.example, the
# default sender of the other cases), dns { nameserver = the proxy; }.
#
# Timings scale with $SLOW (a daemon under valgrind): SPF_SLOW (the slow answer) is
# 3 s x SLOW; the file takes ~25 s plain.

SPF_CASES=(
	spf_pass spf_fail spf_softfail spf_neutral spf_none spf_include
	spf_permerror spf_permerror_syntax spf_temperror spf_temperror_tempfail
	spf_header_both spf_null_sender spf_auth_skipped spf_whitelist_skipped
	spf_not_listed spf_shadow spf_slow_dns
)
SPF_SLOW=$((3 * SLOW))
SPF_READY=0

spf_wanted() {
	local c
	for c in "${SPF_CASES[@]}"; do
		want "$c" && return 0
	done
	return 1
}

# ---- peers ----------------------------------------------------------------------------

spf_write_zone() {
	cat >"$SPF_DIR/dnsmasq.conf" <<'EOF'
no-resolv
no-hosts
no-poll
bind-interfaces
listen-address=127.0.0.1
log-queries
local=/#/
local-ttl=60
txt-record=pass.spf.test,"v=spf1 ip4:192.0.2.0/24 -all"
txt-record=fail.spf.test,"v=spf1 ip4:192.0.2.0/24 -all exp=why.fail.spf.test"
txt-record=why.fail.spf.test,"Host %{i} is not a mail server of %{d}"
txt-record=soft.spf.test,"v=spf1 ip4:192.0.2.0/24 ~all"
txt-record=neutral.spf.test,"v=spf1 ?all"
host-record=none.spf.test,192.0.2.50
txt-record=none.spf.test,"just some text"
txt-record=inc.spf.test,"v=spf1 include:inc2.spf.test -all"
txt-record=inc2.spf.test,"v=spf1 include:inc3.spf.test -all"
txt-record=inc3.spf.test,"v=spf1 a:relay.spf.test mx:mx.spf.test -all"
host-record=relay.spf.test,198.51.100.7
mx-host=mx.spf.test,mail.spf.test,10
host-record=mail.spf.test,198.51.100.25
txt-record=perm.spf.test,"v=spf1 ip4:192.0.2.0/24 -all"
txt-record=perm.spf.test,"v=spf1 +all"
txt-record=syntax.spf.test,"v=spf1 ip4:192.0.2.0/99 -all"
txt-record=temp.spf.test,"v=spf1 include:x.drop.spf.test -all"
txt-record=slow.spf.test,"v=spf1 ip4:192.0.2.0/24 -all"
txt-record=helo.spf.test,"v=spf1 ip4:192.0.2.0/24 -all"
EOF
}

spf_start() {
	[ "$SPF_READY" = 1 ] && return 0
	SPF_DIR=$TG/spf
	mkdir -p "$SPF_DIR"
	if ! e2e_prereq dnsmasq dig ss >/dev/null; then
		SPF_WHY="missing: $(e2e_prereq dnsmasq dig ss)"
		return 1
	fi
	peer_port SPF_DNS_PORT && peer_port SPF_PROXY_PORT && peer_port SPF_SMTP_PORT || {
		SPF_WHY="no free ports"; return 1; }
	spf_write_zone
	dnsmasq --keep-in-foreground --conf-file="$SPF_DIR/dnsmasq.conf" --port="$SPF_DNS_PORT" \
		--log-facility="$SPF_DIR/dnsmasq.log" >"$SPF_DIR/dnsmasq.out" 2>&1 &
	SPF_DNSMASQ_PID=$!
	"$PY" "$TOOLS/dns_delay.py" "$SPF_PROXY_PORT" "$SPF_DNS_PORT" "$SPF_SLOW" \
		"$SPF_DIR/proxy.log" >"$SPF_DIR/proxy.out" 2>&1 &
	SPF_PROXY_PID=$!
	local n=0
	until dig +time=1 +tries=1 -p "$SPF_PROXY_PORT" @127.0.0.1 +short TXT pass.spf.test \
			2>/dev/null | grep -q spf1; do
		n=$((n + 1))
		[ $n -ge 50 ] && { SPF_WHY="dnsmasq/proxy not answering: $(tail -2 "$SPF_DIR"/*.out | tr '\n' '|')"; return 1; }
		sleep 0.1
	done
	cat >>"$TG/pf/conf/master.cf" <<EOF
127.0.0.1:$SPF_SMTP_PORT inet n - n - - smtpd
  -o smtpd_authorized_xclient_hosts=127.0.0.0/8
  -o mynetworks=127.0.0.0/8,192.0.2.0/24,198.51.100.0/24,203.0.113.0/24
EOF
	postfix -c "$TG/pf/conf" reload >/dev/null 2>&1
	if ! "$PY" "$TOOLS/waitport.py" 127.0.0.1 "$SPF_SMTP_PORT" 10 >/dev/null; then
		SPF_WHY="the XCLIENT smtpd on port $SPF_SMTP_PORT did not come up"
		return 1
	fi
	note "spf peers: dnsmasq :$SPF_DNS_PORT (pid $SPF_DNSMASQ_PID), delay proxy :$SPF_PROXY_PORT (pid $SPF_PROXY_PID, slow = ${SPF_SLOW}s), XCLIENT smtpd :$SPF_SMTP_PORT"
	SPF_READY=1
}

spf_stop() {
	local p
	for p in ${SPF_PROXY_PID:-} ${SPF_DNSMASQ_PID:-}; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	SPF_PROXY_PID= SPF_DNSMASQ_PID=
	SPF_READY=0
}

spf_run_all() {
	spf_wanted || return 0
	if ! spf_start; then
		fail spf_peers "$SPF_WHY"
		spf_stop
		return 0
	fi
	local c
	for c in "${SPF_CASES[@]}"; do
		run_case "$c"
	done
	spf_stop
	scan_restore
}

# ---- config and sending -------------------------------------------------------------------

# spf_conf NAME [SPF-SECTION-LINES] [GLOBAL-LINES] -> the daemon on the spf config
# (SPF_DNS_TIMEOUT: the dns section's per-try timeout, default 500ms)
spf_conf() {
	local sec
	sec=$(printf 'spf_domains = pass.spf.test, fail.spf.test, soft.spf.test, neutral.spf.test, none.spf.test, inc.spf.test, perm.spf.test, syntax.spf.test, temp.spf.test, slow.spf.test, helo.spf.test;\n%s\ndns { nameserver = 127.0.0.1:%s; timeout = %s; attempts = 2; }\nspf {\n  timeout = %ss;\n%s\n}\n' \
		"${3:-}" "$SPF_PROXY_PORT" "${SPF_DNS_TIMEOUT:-500ms}" $((8 * SLOW)) "${2:-}")
	conf_or_fail "$1" "$sec"
}

# spf_send NAME IP FROM [swaks args] -> one message through the XCLIENT smtpd, the
# client address IP (HELO NAME.client.test); SW_* as send() sets them, SW_SECS
spf_send() {
	local name=$1 ip=$2 from=$3 t0
	shift 3
	SW_OUT="$TG/out/$name.txt"
	t0=$(now)
	timeout 60 swaks --server "127.0.0.1:$SPF_SMTP_PORT" --helo "$name.client.test" \
		--xclient-addr "$ip" --xclient-name "mta.$name.example" --timeout 40 \
		--from "$from" --to "${SPF_RCPT:-rcpt@dest.example}" --h-Subject "case $name" \
		"$@" >"$SW_OUT" 2>&1
	SW_RC=$?
	SW_SECS=$(elapsed "$t0")
	SW_QID=$(sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' "$SW_OUT" | tail -1)
}

# refused at DATA (after RCPT): swaks rc 25
spf_expect_refused() {
	local name=$1 text=$2
	if [ "$SW_RC" != 25 ]; then
		fail "$name" "swaks rc=$SW_RC, want 25 (refused at DATA) with '$text': $(sw_replies)"
		return 1
	fi
	expect_reply "$text" || { fail "$name" "reply '$text' not seen: $(sw_replies)"; return 1; }
}

# a delivered message whose summary says RESULT, with a Received-SPF header RESULT
spf_pass_case() {
	local n=$1 ip=$2 from=$3 result=$4 h
	spf_conf $n || return
	spf_send $n "$ip" "$from"
	expect_delivered $n || return
	summary_or_fail $n "spf=continue \\($result for " || return
	h=$(header_value Received-SPF)
	case $h in
	"$result ("*) ;;
	*) fail $n "Received-SPF is '$h', want '$result (...)'"; return ;;
	esac
	ok $n
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE 'spf=[^)]*\)' | head -1); Received-SPF: $(echo "$h" | cut -c1-140)"
}

# ---- cases -------------------------------------------------------------------------------------

case_spf_pass() { spf_pass_case spf_pass 192.0.2.1 a@pass.spf.test pass; }
case_spf_softfail() { spf_pass_case spf_softfail 203.0.113.9 a@soft.spf.test softfail; }
case_spf_neutral() { spf_pass_case spf_neutral 203.0.113.9 a@neutral.spf.test neutral; }
case_spf_none() { spf_pass_case spf_none 203.0.113.9 a@none.spf.test none; }

case_spf_fail() {
	local n=spf_fail
	spf_conf $n || return
	spf_send $n 203.0.113.9 a@fail.spf.test
	spf_expect_refused $n "550 5.7.23" || return
	# the domain's explanation (exp=), macros expanded, and the client
	expect_reply "Host 203.0.113.9 is not a mail server of fail.spf.test" ||
		{ fail $n "explanation not in the reply: $(sw_replies)"; return; }
	expect_reply "mta.spf_fail.example[203.0.113.9]" ||
		{ fail $n "client not in the reply: $(sw_replies)"; return; }
	summary_or_fail $n 'spf=reject \(spf fail for fail.spf.test' || return
	ok $n
	note "$(grep -E '^ *<\*\* *5' "$SW_OUT" | head -1 | cut -c1-200)"
}

case_spf_include() {
	local n=spf_include h rounds
	spf_conf $n || return
	# include -> include -> mx: the MX host's address
	spf_send $n 198.51.100.25 a@inc.spf.test
	expect_delivered $n || return
	summary_or_fail $n 'spf=continue \(pass for inc.spf.test' || return
	rounds=$(printf '%s' "$SCAN_SUMMARY" | grep -oE '[0-9]+ rounds' | head -1)
	# and an address nothing lists: fail through the whole chain
	spf_send ${n}_fail 198.51.100.99 a@inc.spf.test
	spf_expect_refused ${n}_fail "550 5.7.23" || return
	ok $n
	note "include chain (include, include, a, mx): pass in $rounds; $(printf '%s' "$SCAN_SUMMARY" | grep -oE '[0-9]+ quer[a-z]+, [0-9.]+ ms' | head -1)"
}

case_spf_permerror() {
	local n=spf_permerror
	spf_conf $n || return
	# two SPF records: permerror, passed by default (recorded, header)
	spf_send $n 192.0.2.1 a@perm.spf.test
	expect_delivered $n || return
	summary_or_fail $n 'spf=continue \(permerror for perm.spf.test' || return
	header_value Received-SPF | grep -q '^permerror' || { fail $n "no Received-SPF: permerror"; return; }
	# permerror_action = reject: 550 5.7.24
	spf_conf $n "permerror_action = reject;" || return
	spf_send ${n}_reject 192.0.2.1 a@perm.spf.test
	spf_expect_refused ${n}_reject "550 5.7.24" || return
	ok $n
}

case_spf_permerror_syntax() {
	local n=spf_permerror_syntax
	spf_conf $n || return
	spf_send $n 192.0.2.1 a@syntax.spf.test
	expect_delivered $n || return
	summary_or_fail $n 'spf=continue \(permerror for syntax.spf.test' || return
	ok $n
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE 'spf=[^)]*\)' | head -1)"
}

case_spf_temperror() {
	local n=spf_temperror
	spf_conf $n || return
	# the include's nameserver never answers: temperror, passed by default
	spf_send $n 192.0.2.1 a@temp.spf.test
	expect_delivered $n || return
	summary_or_fail $n 'spf=continue \(temperror for temp.spf.test' || return
	grep -q 'x.drop.spf.test 16 drop' "$SPF_DIR/proxy.log" ||
		{ fail $n "the proxy saw no TXT query for x.drop.spf.test"; return; }
	ok $n
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE 'spf=[^)]*\)' | head -1); swaks took ${SW_SECS}s"
}

case_spf_temperror_tempfail() {
	local n=spf_temperror_tempfail
	spf_conf $n "temperror_action = tempfail;" || return
	spf_send $n 192.0.2.1 a@temp.spf.test
	if [ "$SW_RC" != 25 ] || ! expect_reply "451 4.7.24"; then
		fail $n "want 451 4.7.24 at DATA, swaks rc=$SW_RC: $(sw_replies)"
		return
	fi
	summary_or_fail $n 'spf=tempfail \(spf temperror for temp.spf.test' || return
	ok $n
}

# both headers; the sender's forged Authentication-Results with our authserv-id is
# deleted, another host's is kept
case_spf_header_both() {
	local n=spf_header_both ar rs ours
	spf_conf $n 'header = both; authserv_id = "mx.spf-e2e.example";' || return
	spf_send $n 203.0.113.9 a@soft.spf.test \
		--add-header "Authentication-Results: mx.spf-e2e.example; spf=pass smtp.mailfrom=forged" \
		--add-header "Authentication-Results: other.example; dkim=pass"
	expect_delivered $n || return
	ar=$(header_value Authentication-Results)
	rs=$(header_value Received-SPF)
	case $ar in
	"mx.spf-e2e.example; spf=softfail ("*") smtp.mailfrom=a@soft.spf.test") ;;
	*) fail $n "Authentication-Results is '$ar'"; return ;;
	esac
	case $rs in
	"softfail (mx.spf-e2e.example: "*"client-ip=203.0.113.9; envelope-from=\"a@soft.spf.test\"; helo=spf_header_both.client.test;"*) ;;
	*) fail $n "Received-SPF is '$rs'"; return ;;
	esac
	ours=$(sink_grep '^Authentication-Results: mx.spf-e2e.example' | wc -l)
	[ "$ours" = 1 ] || { fail $n "$ours Authentication-Results with our authserv-id: $(sink_grep '^Authentication-Results' | tr '\n' '|')"; return; }
	sink_grep '^Authentication-Results: other.example; dkim=pass' >/dev/null ||
		{ fail $n "another host's Authentication-Results was deleted"; return; }
	ok $n
	note "Authentication-Results: $ar"
}

case_spf_null_sender() {
	local n=spf_null_sender
	spf_conf $n || return
	# MAIL FROM:<>: the HELO name is checked (here: helo.spf.test, listed)
	SW_OUT="$TG/out/$n.txt"
	timeout 60 swaks --server "127.0.0.1:$SPF_SMTP_PORT" --helo helo.spf.test \
		--xclient-addr 203.0.113.9 --xclient-name mta.null.example --timeout 40 \
		--from '<>' --to rcpt@dest.example --h-Subject "case $n" >"$SW_OUT" 2>&1
	SW_RC=$?
	spf_expect_refused $n "550 5.7.23" || return
	grep -E 'msg done: .*helo=helo\.spf\.test' "$RLOG" | tail -1 |
		grep -qE 'spf=reject \(spf fail for helo.spf.test' ||
		{ fail $n "summary: $(grep -E 'msg done: .*helo=helo\.spf\.test' "$RLOG" | tail -1 | cut -c1-300)"; return; }
	ok $n
}

case_spf_auth_skipped() {
	local n=spf_auth_skipped
	spf_conf $n || return
	# XCLIENT LOGIN: Postfix hands the milter {auth_authen}
	spf_send $n 203.0.113.9 a@fail.spf.test --xclient-login spfuser
	expect_delivered $n || return
	summary_or_fail $n 'spf=skipped \(authenticated sender\)' || return
	ok $n
}

case_spf_whitelist_skipped() {
	local n=spf_whitelist_skipped
	spf_conf $n "" "whitelist = postmaster@dest.example;" || return
	SPF_RCPT=postmaster@dest.example spf_send $n 203.0.113.9 a@fail.spf.test
	expect_delivered $n || return
	summary_or_fail $n 'spf=skipped \(all recipients whitelisted\)' || return
	ok $n
}

case_spf_not_listed() {
	local n=spf_not_listed
	spf_conf $n || return
	spf_send $n 203.0.113.9 a@other.example
	expect_delivered $n || return
	summary_or_fail $n 'spf=skipped \(domain not in spf_domains\)' || return
	[ -z "$(header_value Received-SPF)" ] || { fail $n "a Received-SPF header was added"; return; }
	ok $n
}

case_spf_shadow() {
	local n=spf_shadow
	spf_conf $n "mode = shadow;" || return
	spf_send $n 203.0.113.9 a@fail.spf.test
	expect_delivered $n || return
	summary_or_fail $n 'spf=continue \(.*shadow: would reject: spf fail for fail.spf.test' || return
	ok $n
}

# While one check waits SPF_SLOW seconds for its nameserver, other sessions finish:
# messages from a domain not in spf_domains, and checks answered at once; then the
# slow domain again, answered from the resolver's cache (dnsmasq's local-ttl 60).
case_spf_slow_dns() {
	local n=spf_slow_dns i pids=() slow_t0 slow_secs fast_max=0 t
	# a nameserver try lasts longer than the slow answer takes
	SPF_DNS_TIMEOUT=$((SPF_SLOW + 2))s spf_conf $n || return
	slow_t0=$(now)
	spf_send ${n}_slow 192.0.2.1 a@slow.spf.test >/dev/null &
	local slow_pid=$!
	sleep 0.3
	for i in 1 2 3 4; do
		(
			spf_send ${n}_fast$i 192.0.2.1 a@pass.spf.test
			echo "$SW_RC $SW_SECS" >"$TG/out/${n}_fast$i.res"
		) &
		pids+=($!)
		(
			spf_send ${n}_other$i 203.0.113.9 a@other.example
			echo "$SW_RC $SW_SECS" >"$TG/out/${n}_other$i.res"
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in 1 2 3 4; do
		for k in fast other; do
			read -r rc t <"$TG/out/${n}_$k$i.res"
			[ "$rc" = 0 ] || { fail $n "${k}$i: swaks rc=$rc"; wait $slow_pid; return; }
			fle "$t" "$fast_max" || fast_max=$t
		done
	done
	wait $slow_pid
	slow_secs=$(elapsed "$slow_t0")
	scan_summary ${n}_slow 'spf=continue \(pass for slow.spf.test' ||
		{ fail $n "slow message: $(printf '%s' "$SCAN_SUMMARY" | cut -c1-300)"; return; }
	fle "$SPF_SLOW" "$slow_secs" || { fail $n "the slow message took only ${slow_secs}s"; return; }
	fle "$fast_max" $((SPF_SLOW - 1)).5 ||
		{ fail $n "other sessions waited: slowest ${fast_max}s, the slow DNS answer takes ${SPF_SLOW}s"; return; }
	# the same domain again: its answer is now in the resolver's cache
	spf_send ${n}_cached 192.0.2.1 a@slow.spf.test
	expect_delivered ${n}_cached || return
	scan_summary ${n}_cached 'spf=continue \(pass for slow.spf.test' ||
		{ fail $n "cached message: $(printf '%s' "$SCAN_SUMMARY" | cut -c1-300)"; return; }
	fle "$SW_SECS" $((SPF_SLOW - 1)).5 || { fail $n "the cached answer took ${SW_SECS}s"; return; }
	ok $n
	note "slow check ${slow_secs}s (DNS answer after ${SPF_SLOW}s); 8 other messages meanwhile, slowest ${fast_max}s; the same domain again (cache): ${SW_SECS}s"
}
