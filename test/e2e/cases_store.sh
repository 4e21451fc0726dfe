# shellcheck shell=bash disable=SC2154  # MS_* are set by msum (printf -v)
# cases_store.sh -- e2e cases of the policy store (sourced by run.sh): greylisting, rate
# limits and reply whitelisting, each against a REAL redis-server started here on loopback
# (peers.sh redis_start, no persistence) and, where the semantics are the same, against the
# in-memory store (no redis section).  Through the private Postfix + swaks, except where
# the test needs a controlled MTA (mload, test/bench/mload.c, built into $TG/store):
# redis killed and restarted under load, two daemons sharing one limit, and the load
# correctness run.  Every case is named store_*, so `bash test/e2e/run.sh store` runs
# them all; redis is started once, and only when a store_* case is selected.
#
# Isolation without flushing: every case run sends from its own /24 of the loopback
# (127.0.N.x: Linux routes all of 127/8 to lo, swaks --local-interface binds to it), so
# the client network of the greylisting triplets and the AWL counters never mix between
# cases, and every case uses its own senders and recipients ($TOKEN, backend).
# 127.0.250.0/24 is the greylisting whitelist, 127.0.251.0/24 our_networks and
# 127.0.252.1 limit_whitelist.
#
# Knobs (environment): STORE_LOAD_N (messages of the load run, default 20000; 2000 under
# a wrapper), STORE_LOAD_C (concurrency, default 1000; 200 under a wrapper),
# STORE_LOAD_C2 (a second measured run at this concurrency, default 5000; 0 = none;
# none under a wrapper), STORE_GREY_T (greylisting timeout in s, default 2 x SLOW).

STORE_CASES=(
	store_grey_basic_mem store_grey_basic_redis
	store_grey_awl_mem store_grey_awl_redis
	store_grey_whitelist_mem store_grey_whitelist_redis
	store_grey_our_networks_mem store_grey_our_networks_redis
	store_grey_auth_mem store_grey_auth_redis
	store_grey_reply_mem store_grey_reply_redis
	store_grey_rspamd_eom
	store_limits_burst_mem store_limits_burst_redis
	store_limits_leak_mem store_limits_leak_redis
	store_limits_bounce_mem store_limits_bounce_redis
	store_limits_whitelist_mem store_limits_whitelist_redis
	store_limits_per_ip_mem store_limits_per_ip_redis
	store_limits_not_counted_mem store_limits_not_counted_redis
	store_down_pass store_down_tempfail
	store_redis_kill_restart store_redis_hang
	store_limits_two_daemons
	store_load
)

STORE_GREY_T=${STORE_GREY_T:-$((2 * SLOW))}
STORE_NET_NEXT=10
STORE_SIDE_NAMES=()

# ---- setup ------------------------------------------------------------------------

store_wanted() {
	local c
	for c in "${STORE_CASES[@]}"; do
		want "$c" && return 0
	done
	return 1
}

# store_setup -> redis started, mload built; false (after reporting) if not possible
store_setup() {
	[ "${STORE_READY:-0}" = 1 ] && return 0
	if ! redis_prereq; then
		if is_ci; then fail store_redis "$PEERS_WHY"; else echo "skip store_*: $PEERS_WHY"; fi
		return 1
	fi
	STORE_DIR=$TG/store
	mkdir -p "$STORE_DIR"
	local t0
	t0=$(now)
	if ! redis_start main; then
		fail store_redis "$PEERS_WHY"
		return 1
	fi
	STORE_REDIS_PORT=$REDIS_PORT
	note "redis-server 127.0.0.1:$STORE_REDIS_PORT (pid $REDIS_PID) up in $(elapsed "$t0")s; dir $REDIS_DIR"
	# a port where nothing listens: the "store down" cases
	peer_port STORE_CLOSED_PORT || { fail store_redis "no free port for the closed-port cases"; return 1; }
	if ! cc -O2 -Wall -Wextra -Werror -o "$STORE_DIR/mload" "$ROOT/test/bench/mload.c" \
			>"$STORE_DIR/mload.build" 2>&1; then
		fail store_mload_build "$(head -5 "$STORE_DIR/mload.build" | tr '\n' '|')"
		STORE_MLOAD=
	else
		STORE_MLOAD=$STORE_DIR/mload
	fi
	STORE_READY=1
}

# store_run_all -> run.sh hook: the store_* cases, then the base config again
store_run_all() {
	store_wanted || return 0
	store_setup || return 0
	local c
	for c in "${STORE_CASES[@]}"; do
		run_case "$c"
		store_side_stop_all
	done
	scan_restore
}

# store_net -> STORE_NET: a /24 of the loopback (127.0.N) no other case run uses
store_net() {
	STORE_NET=127.0.$STORE_NET_NEXT
	STORE_NET_NEXT=$((STORE_NET_NEXT + 1))
	[ $STORE_NET_NEXT -ge 250 ] && STORE_NET_NEXT=10
}

# ---- config -----------------------------------------------------------------------

# store_redis_section ROLES -> a redis { } section with the servers of ROLES (grey limits
# id) on our redis, or on PORT when STORE_REDIS_AT=PORT; the test's own prefixes
store_redis_section() {
	local port=${STORE_REDIS_AT:-$STORE_REDIS_PORT} r
	echo "redis {"
	for r in $1; do
		echo "  servers_$r = 127.0.0.1:$port;"
	done
	echo '  grey_prefix = "e2egrey"; white_prefix = "e2ewhite"; limits_prefix = "e2erl";'
	echo '  awl_prefix = "e2eawl"; id_prefix = "e2eid";'
	echo '  connect_timeout = 1s; command_timeout = 1s; error_time = 10s; dead_time = 5s; maxerrors = 2;'
	echo "}"
}

# store_grey_section [EXTRA] -> greylisting { } as in the brief, plus EXTRA lines
store_grey_section() {
	cat <<EOF
greylisting {
  timeout = ${STORE_GREY_T}s;
  expire = 1d; expire_white = 3d;
  whitelist = 192.0.2.0/24, 127.0.250.0/24;
  ipv4_mask = 24; ipv6_mask = 64;
  awl_enable = yes; awl_hits = 2; awl_ttl = 1h;
  tempfail_on_error = no;
${1:-}
}
EOF
}

# store_limits_section LINES -> limits { } with LINES and the brief's whitelists
store_limits_section() {
	cat <<EOF
limits {
$1
  limit_whitelist = 127.0.252.1;
  limit_whitelist_rcpt = "vip@dest.example";
  limit_bounce_addrs = postmaster, mailer-daemon;
  tempfail_on_error = no;
}
EOF
}

# store_conf NAME BACKEND ROLES SECTIONS -> the daemon runs with SECTIONS, our_networks,
# and for BACKEND redis a redis section with ROLES (mem: no redis section at all)
store_conf() {
	local name=$1 backend=$2 roles=$3 sections=$4 redis=
	[ "$backend" = redis ] && redis=$(store_redis_section "$roles")
	conf_or_fail "$name" "our_networks = 127.0.251.0/24;
$redis
$sections"
}

# ---- sending and checking ------------------------------------------------------------

# ssend NAME IP FROM TO [swaks args] -> one message through Postfix from client IP;
# SW_RC, SW_OUT, SW_QID, SW_SECS
ssend() {
	local name=$1 ip=$2 from=$3 to=$4 t0
	shift 4
	t0=$(now)
	send "$name" --local-interface "$ip" --from "$from" --to "$to" --h-Subject "store $name" "$@"
	SW_SECS=$(elapsed "$t0")
}

# expect_greylisted NAME [RC] -> refused with the greylisting reply (RC 25: at DATA, the
# default; 26: after the message, when the decision waits for the headers); GREY_WAIT =
# the seconds the reply asks for
expect_greylisted() {
	local name=$1 rc=${2:-25} line
	if [ "$SW_RC" != "$rc" ]; then
		fail "$name" "swaks rc=$SW_RC, want $rc (greylisted $([ "$rc" = 25 ] && echo at DATA || echo after the message)): $(sw_replies)"
		return 1
	fi
	line=$(grep -E '^ *<\*\* +451 4\.7\.1 Try again later, retry in [0-9]+ seconds' "$SW_OUT" | tail -1)
	if [ -z "$line" ]; then
		fail "$name" "no '451 4.7.1 Try again later, retry in N seconds': $(sw_replies)"
		return 1
	fi
	GREY_WAIT=$(echo "$line" | sed -n 's/.*retry in \([0-9]*\) seconds.*/\1/p')
	if [ "$GREY_WAIT" -lt 1 ] || [ "$GREY_WAIT" -gt "$STORE_GREY_T" ]; then
		fail "$name" "asks to retry in $GREY_WAIT s, timeout is ${STORE_GREY_T}s"
		return 1
	fi
}

# expect_rcpt_refused NAME TEXT -> the only recipient got TEXT (swaks rc 24)
expect_rcpt_refused() {
	if [ "$SW_RC" != 24 ]; then
		fail "$1" "swaks rc=$SW_RC, want 24 (recipient refused): $(sw_replies)"
		return 1
	fi
	expect_reply "$2" || { fail "$1" "reply '$2' not seen: $(sw_replies)"; return 1; }
}

# expect_no_greylist_header NAME -> the delivered message has no X-Greylist
expect_no_xgrey() {
	if sink_grep '^X-Greylist:' >/dev/null; then
		fail "$1" "unexpected X-Greylist: $(sink_grep '^X-Greylist:' | head -1)"
		return 1
	fi
}

# rkeys PATTERN -> the redis keys matching PATTERN, one per line
rkeys() { redis_cli main --scan --pattern "$1" 2>/dev/null; }

# rttl_days KEY -> the key's TTL in days (1 decimal), or "none"
rttl_days() {
	local ms
	ms=$(redis_cli main PTTL "$1" 2>/dev/null)
	case $ms in
	-*|'') echo none ;;
	*) awk -v m="$ms" 'BEGIN { printf "%.1f", m / 86400000 }' ;;
	esac
}

# wait_until T0 SECS -> sleeps until SECS seconds after T0 (a `now` value)
wait_until() {
	local left
	left=$(awk -v a="$1" -v s="$2" -v b="$(now)" 'BEGIN { d = a + s - b; printf "%.2f", (d > 0 ? d : 0) }')
	sleep "$left"
}

# ---- greylisting -----------------------------------------------------------------------

# first attempt 451, an early retry 451 again, after the timeout delivered with
# X-Greylist, then whitelisted (immediate, no header); the same triplet from another
# address of the /24 passes, from another /24 it is new; a message with one passed and
# one new recipient is greylisted as a whole.  redis: the records are where the prefixes
# say, with the configured TTLs.
store_grey_basic() {
	local b=$1 n=store_grey_basic_$1 from to t0 xg net1 k
	store_conf $n "$b" "grey" "$(store_grey_section)" || return
	store_net
	net1=$STORE_NET
	from="gb-$TOKEN-$b@src.example"
	to="gb-$TOKEN-$b@dest.example"
	t0=$(now)
	ssend ${n}_1 "$STORE_NET.1" "$from" "$to"
	expect_greylisted $n || return
	summary_or_fail ${n}_1 "greylisting=tempfail \(greylisted, [0-9]+ s to wait" || return
	wait_maillog "milter-reject: DATA from .*451 4\.7\.1 Try again later.*helo=<${n}_1\.client\.test>" 5 ||
		{ fail $n "no milter-reject DATA line in the Postfix log"; return; }
	note "first attempt: $(grep -E '^ *<\*\* +451' "$SW_OUT" | tail -1 | sed 's/^ *<\*\* *//'); $(printf '%s' "$SCAN_SUMMARY" | grep -oE 'greylisting=[^)]*\)')"
	if [ "$b" = redis ]; then
		k=$(rkeys 'e2egrey*' | head -5 | tr '\n' ' ')
		[ -n "$k" ] || { fail $n "no e2egrey* key in redis after the first attempt: $(rkeys '*' | head -5 | tr '\n' ' ')"; return; }
	fi
	# an early retry
	ssend ${n}_2 "$STORE_NET.1" "$from" "$to"
	if fle "$(elapsed "$t0")" "$(awk -v t="$STORE_GREY_T" 'BEGIN { print t - 0.2 }')"; then
		expect_greylisted ${n}_early || return
		ok ${n}_early
	else
		note "the early retry came $(elapsed "$t0")s after the first attempt (timeout ${STORE_GREY_T}s): not checked"
	fi
	# after the timeout
	wait_until "$t0" "$STORE_GREY_T.3"
	ssend ${n}_3 "$STORE_NET.1" "$from" "$to" --body "greylisting passed $TOKEN"
	expect_delivered $n || return
	xg=$(header_value X-Greylist)
	case $xg in
	"delayed "[0-9]*" seconds by rmilter at mx.test.example; "*) ;;
	*) fail $n "X-Greylist is '$xg', want 'delayed N seconds by rmilter at mx.test.example; DATE'"; return ;;
	esac
	k=$(echo "$xg" | sed -n 's/^delayed \([0-9]*\) seconds.*/\1/p')
	[ "$k" -ge "$STORE_GREY_T" ] || { fail $n "X-Greylist says $k s, the timeout is ${STORE_GREY_T}s"; return; }
	summary_or_fail ${n}_3 'greylisting=continue \(passed after [0-9]+ s' || return
	note "X-Greylist: $xg"
	if [ "$b" = redis ]; then
		k=$(rkeys 'e2ewhite*' | head -1)
		[ -n "$k" ] || { fail $n "no e2ewhite* key in redis after the pass: $(rkeys '*' | head -5 | tr '\n' ' ')"; return; }
		[ "$(rttl_days "$k")" = 3.0 ] || { fail $n "white record $k: TTL $(rttl_days "$k") days, want expire_white = 3d"; return; }
		[ -z "$(rkeys 'e2egrey*')" ] || { fail $n "grey record(s) left after the pass: $(rkeys 'e2egrey*' | tr '\n' ' ')"; return; }
		note "redis: $k (TTL 3.0 d), the grey record removed"
	fi
	ok $n
	# whitelisted: immediate, no header
	ssend ${n}_4 "$STORE_NET.1" "$from" "$to" --body "whitelisted $TOKEN"
	expect_delivered ${n}_white || return
	expect_no_xgrey ${n}_white || return
	summary_or_fail ${n}_4 'greylisting=continue \(whitelisted' || return
	ok ${n}_white
	# the same triplet from another address of the /24 (ipv4_mask = 24)
	ssend ${n}_5 "$STORE_NET.77" "$from" "$to" --body "same /24 $TOKEN"
	expect_delivered ${n}_mask || return
	expect_no_xgrey ${n}_mask || return
	# ... and from another /24 it is a new triplet
	store_net
	ssend ${n}_6 "$STORE_NET.1" "$from" "$to"
	expect_greylisted ${n}_mask || return
	ok ${n}_mask
	# one passed and one new recipient: the message waits as a whole
	ssend ${n}_7 "$net1.1" "$from" "$to,gb2-$TOKEN-$b@dest.example"
	expect_greylisted ${n}_multi_rcpt || return
	ok ${n}_multi_rcpt
}
case_store_grey_basic_mem() { store_grey_basic mem; }
case_store_grey_basic_redis() { store_grey_basic redis; }

# awl_hits = 2: a network that passed two triplets is auto-whitelisted
store_grey_awl() {
	local b=$1 n=store_grey_awl_$1 t0 i k v
	store_conf $n "$b" "grey" "$(store_grey_section)" || return
	store_net
	t0=$(now)
	for i in 1 2; do
		ssend ${n}_first$i "$STORE_NET.$i" "awl$i-$TOKEN-$b@src.example" "awl$i-$TOKEN-$b@dest.example"
		expect_greylisted $n || return
	done
	wait_until "$t0" "$STORE_GREY_T.3"
	for i in 1 2; do
		ssend ${n}_pass$i "$STORE_NET.$i" "awl$i-$TOKEN-$b@src.example" "awl$i-$TOKEN-$b@dest.example"
		expect_delivered $n || return
	done
	# a new sender and recipient from the network: no delay
	ssend ${n}_new "$STORE_NET.9" "awl3-$TOKEN-$b@src.example" "awl3-$TOKEN-$b@dest.example" --body "awl $TOKEN"
	expect_delivered $n || return
	expect_no_xgrey $n || return
	summary_or_fail ${n}_new 'greylisting=continue \(client auto-whitelisted' || return
	if [ "$b" = redis ]; then
		k=$(rkeys "e2eawl*$STORE_NET.0*" | head -1)
		v=$(redis_cli main GET "$k" 2>/dev/null)
		[ -n "$k" ] && [ "${v:-0}" -ge 2 ] || { fail $n "no AWL counter >= 2 for $STORE_NET.0/24 in redis: key '$k' = '$v' ($(rkeys 'e2eawl*' | tr '\n' ' '))"; return; }
		note "redis: $k = $v, TTL $(redis_cli main TTL "$k") s (awl_ttl 1h)"
	fi
	# another network is not
	store_net
	ssend ${n}_other "$STORE_NET.1" "awl3-$TOKEN-$b@src.example" "awl3-$TOKEN-$b@dest.example"
	expect_greylisted $n || return
	ok $n
}
case_store_grey_awl_mem() { store_grey_awl mem; }
case_store_grey_awl_redis() { store_grey_awl redis; }

# exempt_case NAME BACKEND IP WHY-REGEX: a never-seen triplet from IP is delivered at
# once, without X-Greylist, and the summary says why
exempt_case() {
	local n=$1 b=$2 ip=$3 re=$4
	store_conf $n "$b" "grey" "$(store_grey_section)" || return
	ssend $n "$ip" "ex-$n-$TOKEN@src.example" "ex-$n-$TOKEN@dest.example" --body "exempt $TOKEN"
	expect_delivered $n || return
	expect_no_xgrey $n || return
	summary_or_fail $n "$re" || return
	ok $n
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE '(auth=[^ ]*|greylisting=[^)]*\))' | tr '\n' ' ')"
}
case_store_grey_whitelist_mem() { exempt_case store_grey_whitelist_mem mem 127.0.250.11 'greylisting=skipped \(client whitelisted\)'; }
case_store_grey_whitelist_redis() { exempt_case store_grey_whitelist_redis redis 127.0.250.12 'greylisting=skipped \(client whitelisted\)'; }
case_store_grey_our_networks_mem() { exempt_case store_grey_our_networks_mem mem 127.0.251.11 'auth=-\(our_networks\).*greylisting=skipped \(authenticated sender\)'; }
case_store_grey_our_networks_redis() { exempt_case store_grey_our_networks_redis redis 127.0.251.12 'auth=-\(our_networks\).*greylisting=skipped \(authenticated sender\)'; }

# SMTP AUTH: a second smtpd of the private Postfix with Cyrus SASL, mechanism ANONYMOUS
# (no password database needed; Postfix passes {auth_authen} = "anonymous" to the milter)
store_sasl_setup() {
	[ -n "${STORE_AUTH_PORT:-}" ] && return 0
	local d=$TG/pf/sasl
	peer_port STORE_AUTH_PORT || { STORE_SASL_WHY="no free port"; STORE_AUTH_PORT=; return 1; }
	mkdir -p "$d"
	printf 'mech_list: ANONYMOUS\npwcheck_method: auxprop\n' >"$d/smtpd.conf"
	chmod -R a+rX "$d"
	cat >>"$TG/pf/conf/master.cf" <<EOF
127.0.0.1:$STORE_AUTH_PORT inet n - n - - smtpd
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=cyrus
  -o smtpd_sasl_path=smtpd
  -o cyrus_sasl_config_path=$d
  -o smtpd_sasl_security_options=
  -o smtpd_relay_restrictions=permit_sasl_authenticated,permit_mynetworks,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,permit_mynetworks,reject
EOF
	postfix -c "$TG/pf/conf" reload >/dev/null 2>&1
	if ! "$PY" "$TOOLS/waitport.py" 127.0.0.1 "$STORE_AUTH_PORT" 10 >/dev/null; then
		STORE_SASL_WHY="the SASL smtpd on port $STORE_AUTH_PORT did not come up: $(tail -3 "$MAILLOG" | tr '\n' '|')"
		STORE_AUTH_PORT=
		return 1
	fi
}

store_grey_auth() {
	local b=$1 n=store_grey_auth_$1 out rc qid
	store_sasl_setup || { fail $n "$STORE_SASL_WHY"; return; }
	store_conf $n "$b" "grey" "$(store_grey_section)" || return
	store_net
	out=$(timeout 60 "$PY" "$TOOLS/smtp_auth.py" "$STORE_AUTH_PORT" $n.client.test "$STORE_NET.1" \
		"au-$TOKEN-$b@src.example" "au-$TOKEN-$b@dest.example" "store $n" 2>&1)
	rc=$?
	if [ $rc = 2 ] && ! grep -q "anonymous" "$MAILLOG" 2>/dev/null; then
		fail $n "AUTH ANONYMOUS refused by Postfix (Cyrus SASL / libsasl2-modules?): $(echo "$out" | tr '\n' '|') $(grep -i sasl "$MAILLOG" | tail -2 | tr '\n' '|')"
		return
	fi
	[ $rc = 0 ] || { fail $n "rc=$rc: $(echo "$out" | tr '\n' '|')"; return; }
	qid=$(echo "$out" | sed -n 's/^250 \([0-9A-Za-z]*\)$/\1/p')
	wait_delivered "$qid" || { fail $n "queue id '$qid' not delivered"; return; }
	expect_no_xgrey $n || return
	summary_or_fail $n 'auth=anonymous .*greylisting=skipped \(authenticated sender\)' || return
	local sum=$SCAN_SUMMARY
	# the same triplet without AUTH, through the ordinary smtpd: greylisted
	ssend ${n}_noauth "$STORE_NET.1" "au-$TOKEN-$b@src.example" "au-$TOKEN-$b@dest.example"
	expect_greylisted ${n}_noauth || return
	ok $n
	note "$(printf '%s' "$sum" | grep -oE '(auth=[^ ]*|greylisting=[^)]*\))' | tr '\n' ' '); without AUTH: 451"
}
case_store_grey_auth_mem() { store_grey_auth mem; }
case_store_grey_auth_redis() { store_grey_auth redis; }

# reply whitelisting: the Message-ID of mail from our_networks is remembered; a reply
# (In-Reply-To, or among References) skips greylisting, a non-reply does not.  The
# decision waits for the headers: refusals come after the message (rc 26).  redis:
# reply_whitelist is on because servers_id is set (not written); mem: written.
store_grey_reply() {
	local b=$1 n=store_grey_reply_$1 mid sections k
	mid="local-$TOKEN-$b@test.example"
	sections=$(store_grey_section)
	[ "$b" = mem ] && sections="reply_whitelist = yes;
$sections"
	store_conf $n "$b" "grey id" "$sections" || return
	ssend ${n}_local 127.0.251.$((20 + ${#b})) "me-$TOKEN@test.example" "friend-$TOKEN-$b@remote.example" \
		--header "Message-Id: <$mid>" --body "a local sender $TOKEN"
	expect_delivered $n || return
	summary_or_fail ${n}_local 'replies=continue \(Message-ID of a local sender remembered' || return
	if [ "$b" = redis ]; then
		k=$(rkeys "e2eid*$mid*" | head -1)
		[ -n "$k" ] || { fail $n "no e2eid* record of <$mid> in redis: $(rkeys 'e2eid*' | head -3 | tr '\n' ' ')"; return; }
		note "redis: $k, TTL $(rttl_days "$k") d"
	fi
	store_net
	# the reply: no greylisting
	ssend ${n}_reply "$STORE_NET.1" "friend-$TOKEN-$b@remote.example" "me-$TOKEN@test.example" \
		--header "In-Reply-To: <$mid>" --body "a reply $TOKEN"
	expect_delivered $n || return
	expect_no_xgrey $n || return
	summary_or_fail ${n}_reply 'replies=continue \(reply to local mail.*greylisting=skipped \(reply to local mail\)' || return
	# References naming it among others
	ssend ${n}_refs "$STORE_NET.1" "friend2-$TOKEN-$b@remote.example" "me-$TOKEN@test.example" \
		--header "References: <other-$TOKEN@remote.example> <$mid>" --body "a later reply $TOKEN"
	expect_delivered $n || return
	# not a reply: greylisted, decided at the end of the headers
	ssend ${n}_other "$STORE_NET.1" "friend3-$TOKEN-$b@remote.example" "me-$TOKEN@test.example" \
		--header "In-Reply-To: <unknown-$TOKEN@remote.example>"
	expect_greylisted $n 26 || return
	summary_or_fail ${n}_other 'replies=continue \(not a reply to local mail.*greylisting=tempfail' || return
	ok $n
}
case_store_grey_reply_mem() { store_grey_reply mem; }
case_store_grey_reply_redis() { store_grey_reply redis; }

# with rspamd configured (spamd_greylist = yes, the default), greylisting happens at the
# end of the message and only for what rspamd marks (add header here: score 7 >= 6)
case_store_grey_rspamd_eom() {
	local n=store_grey_rspamd_eom t0 xg
	if [ "${SCAN_READY:-0}" != 1 ]; then
		scan_setup || { is_ci || echo "skip $n: no scanner peers"; return; }
	fi
	store_conf $n redis "grey" "$(store_grey_section)
$(rspamd_section "127.0.0.1:$RSPAMD_PORT")" || return
	store_net
	ssend ${n}_ham "$STORE_NET.1" "rs-$TOKEN@src.example" "rs-$TOKEN@dest.example" \
		--h-Subject "meeting notes" --body "Hi, here are the meeting notes from today. Regards."
	expect_delivered $n || return
	expect_no_xgrey $n || return
	summary_or_fail ${n}_ham 'greylisting=continue \(not asked for by the spam scanner' || return
	t0=$(now)
	ssend ${n}_spam "$STORE_NET.1" "rs2-$TOKEN@src.example" "rs2-$TOKEN@dest.example" \
		--h-Subject "e2e-rspamd-add-header $n" --body "add header please $TOKEN"
	expect_greylisted $n 26 || return
	summary_or_fail ${n}_spam 'rspamd=continue \(add header.*greylisting=tempfail \(greylisted' || return
	wait_until "$t0" "$STORE_GREY_T.3"
	ssend ${n}_retry "$STORE_NET.1" "rs2-$TOKEN@src.example" "rs2-$TOKEN@dest.example" \
		--h-Subject "e2e-rspamd-add-header $n" --body "add header please $TOKEN"
	expect_delivered $n || return
	xg=$(header_value X-Greylist)
	[ -n "$xg" ] || { fail $n "the retry lacks X-Greylist"; return; }
	[ "$(header_value X-Spam)" = yes ] || { fail $n "the retry lacks X-Spam: yes"; return; }
	ok $n
	note "ham not greylisted; add-header mail 451 after the message, then X-Greylist: $xg"
	scan_restore
}

# ---- rate limits -------------------------------------------------------------------------

LIMIT_REFUSED="451 4.7.1 Rate limit exceeded"

# limit_send NAME IP FROM TO -> true when delivered; LIMIT_LAST = delivered|refused|other
limit_send() {
	ssend "$@"
	if [ "$SW_RC" = 0 ]; then
		LIMIT_LAST=delivered
	elif [ "$SW_RC" = 24 ] && expect_reply "$LIMIT_REFUSED"; then
		LIMIT_LAST=refused
	else
		LIMIT_LAST="other (rc $SW_RC: $(sw_replies))"
	fi
	[ "$LIMIT_LAST" = delivered ]
}

# burst 5, a negligible leak: exactly 5 pass, the 6th is refused at RCPT; another
# recipient is not affected
store_limits_burst() {
	local b=$1 n=store_limits_burst_$1 i rc k
	store_conf $n "$b" "limits" "$(store_limits_section "  limit_to = 5:0.01;")" || return
	store_net
	rc="burst-$TOKEN-$b@dest.example"
	for i in 1 2 3 4 5 6; do
		limit_send ${n}_$i "$STORE_NET.1" "s$i-$TOKEN@src.example" "$rc"
		if [ $i -le 5 ] && [ "$LIMIT_LAST" != delivered ]; then
			fail $n "message $i of the burst of 5: $LIMIT_LAST"; return
		fi
	done
	[ "$LIMIT_LAST" = refused ] || { fail $n "message 6 (burst 5): $LIMIT_LAST, want '$LIMIT_REFUSED'"; return; }
	summary_or_fail ${n}_6 "refused=1 .*limits=[a-z]+ \(bucket (e2erl|rl):to:$rc full: level 5\.0, burst 5, rate 0\.01/s.*1 rcpt refused" || return
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE 'limits=[^)]*\)')"
	wait_maillog "milter-reject: RCPT from .*$LIMIT_REFUSED.*to=<$rc>" 5 ||
		{ fail $n "no RCPT milter-reject line in the Postfix log"; return; }
	limit_send ${n}_other "$STORE_NET.1" "s7-$TOKEN@src.example" "other-$TOKEN-$b@dest.example" ||
		{ fail $n "another recipient: $LIMIT_LAST"; return; }
	if [ "$b" = redis ]; then
		k=$(rkeys "e2erl*$rc" | head -1)
		[ -n "$k" ] || { fail $n "no e2erl* bucket for $rc in redis: $(rkeys 'e2erl*' | head -3 | tr '\n' ' ')"; return; }
		note "redis: $k = '$(redis_cli main GET "$k")', TTL $(redis_cli main TTL "$k") s (burst/rate = 500 s)"
	fi
	ok $n
}
case_store_limits_burst_mem() { store_limits_burst mem; }
case_store_limits_burst_redis() { store_limits_burst redis; }

# burst 2, rate R = 0.5/SLOW per second: 2 pass, the 3rd is refused; 1/R s later one
# more passes and the next is refused again (real time)
store_limits_leak() {
	local b=$1 n=store_limits_leak_$1 i rc rate per t1
	rate=$(awk -v s="$SLOW" 'BEGIN { print 0.5 / s }')
	per=$(awk -v r="$rate" 'BEGIN { print 1 / r }')
	store_conf $n "$b" "limits" "$(store_limits_section "  limit_to = 2:$rate;")" || return
	store_net
	rc="leak-$TOKEN-$b@dest.example"
	for i in 1 2; do
		limit_send ${n}_$i "$STORE_NET.1" "l$i-$TOKEN@src.example" "$rc" ||
			{ fail $n "message $i (burst 2): $LIMIT_LAST"; return; }
	done
	t1=$(now)
	limit_send ${n}_3 "$STORE_NET.1" "l3-$TOKEN@src.example" "$rc"
	if fle "$(elapsed "$t1")" "$(awk -v p="$per" 'BEGIN { print p - 0.3 }')"; then
		[ "$LIMIT_LAST" = refused ] || { fail $n "message 3, $(elapsed "$t1")s after the burst of 2: $LIMIT_LAST, want refused"; return; }
	fi
	# the bucket leaks one message per $per s
	wait_until "$t1" "$(awk -v p="$per" 'BEGIN { print p + 0.3 }')"
	t1=$(now)
	limit_send ${n}_4 "$STORE_NET.1" "l4-$TOKEN@src.example" "$rc" ||
		{ fail $n "message 4, ${per}s + 0.3 s later (rate $rate/s): $LIMIT_LAST, want delivered"; return; }
	limit_send ${n}_5 "$STORE_NET.1" "l5-$TOKEN@src.example" "$rc"
	if fle "$(elapsed "$t1")" "$(awk -v p="$per" 'BEGIN { print p - 0.3 }')"; then
		[ "$LIMIT_LAST" = refused ] || { fail $n "message 5, right after message 4: $LIMIT_LAST, want refused"; return; }
	fi
	ok $n
	note "rate $rate/s: 2 passed, refused, one more after ${per}s, refused again"
}
case_store_limits_leak_mem() { store_limits_leak mem; }
case_store_limits_leak_redis() { store_limits_leak redis; }

# bounces (null sender, postmaster@...) have their own small bucket
store_limits_bounce() {
	local b=$1 n=store_limits_bounce_$1 rc
	store_conf $n "$b" "limits" "$(store_limits_section "  limit_to = 5:0.01;
  limit_bounce_to = 2:0.01;
  limit_bounce_to_ip = 2:0.01;")" || return
	store_net
	rc="bounce-$TOKEN-$b@dest.example"
	limit_send ${n}_1 "$STORE_NET.1" "<>" "$rc" || { fail $n "bounce 1 (null sender): $LIMIT_LAST"; return; }
	limit_send ${n}_2 "$STORE_NET.1" "<>" "$rc" || { fail $n "bounce 2: $LIMIT_LAST"; return; }
	limit_send ${n}_3 "$STORE_NET.1" "<>" "$rc"
	[ "$LIMIT_LAST" = refused ] || { fail $n "bounce 3 (limit_bounce_to = 2): $LIMIT_LAST, want refused"; return; }
	summary_or_fail ${n}_3 "refused=1 .*limits=[a-z]+ \(bucket (e2erl|rl):bounce_to(_ip)?:$rc" || return
	limit_send ${n}_4 "$STORE_NET.1" "PostMaster@src.example" "$rc"
	[ "$LIMIT_LAST" = refused ] || { fail $n "from postmaster@ (a bounce address): $LIMIT_LAST, want refused"; return; }
	limit_send ${n}_5 "$STORE_NET.1" "mailer-daemon@src.example" "$rc"
	[ "$LIMIT_LAST" = refused ] || { fail $n "from mailer-daemon@: $LIMIT_LAST, want refused"; return; }
	# ordinary mail to the same recipient: limit_to (5) has room
	limit_send ${n}_6 "$STORE_NET.1" "person-$TOKEN@src.example" "$rc" ||
		{ fail $n "ordinary sender after the bounce bucket filled: $LIMIT_LAST"; return; }
	ok $n
}
case_store_limits_bounce_mem() { store_limits_bounce mem; }
case_store_limits_bounce_redis() { store_limits_bounce redis; }

# limit_whitelist (client) and limit_whitelist_rcpt: no limit at all
store_limits_whitelist() {
	local b=$1 n=store_limits_whitelist_$1 i rc
	store_conf $n "$b" "limits" "$(store_limits_section "  limit_to = 2:0.01;")" || return
	store_net
	rc="wl-$TOKEN-$b@dest.example"
	for i in 1 2 3 4; do
		limit_send ${n}_ip$i 127.0.252.1 "w$i-$TOKEN@src.example" "$rc" ||
			{ fail $n "message $i from the whitelisted client 127.0.252.1: $LIMIT_LAST"; return; }
	done
	summary_or_fail ${n}_ip4 'limits=skipped \(client whitelisted\)' || return
	for i in 1 2 3 4; do
		limit_send ${n}_vip$i "$STORE_NET.1" "v$i-$TOKEN-$b@src.example" "vip@dest.example" ||
			{ fail $n "message $i to the whitelisted recipient vip@dest.example: $LIMIT_LAST"; return; }
	done
	# the same recipient from an ordinary client: limited
	for i in 1 2 3; do
		limit_send ${n}_ctl$i "$STORE_NET.1" "c$i-$TOKEN@src.example" "$rc"
	done
	[ "$LIMIT_LAST" = refused ] || { fail $n "3rd message from an ordinary client (limit 2): $LIMIT_LAST"; return; }
	ok $n
}
case_store_limits_whitelist_mem() { store_limits_whitelist mem; }
case_store_limits_whitelist_redis() { store_limits_whitelist redis; }

# limit_to_ip: per recipient and client address
store_limits_per_ip() {
	local b=$1 n=store_limits_per_ip_$1 rc
	store_conf $n "$b" "limits" "$(store_limits_section "  limit_to = 100:0.01;
  limit_to_ip = 2:0.01;")" || return
	store_net
	rc="perip-$TOKEN-$b@dest.example"
	limit_send ${n}_1 "$STORE_NET.1" "p1-$TOKEN@src.example" "$rc" || { fail $n "1: $LIMIT_LAST"; return; }
	limit_send ${n}_2 "$STORE_NET.1" "p2-$TOKEN@src.example" "$rc" || { fail $n "2: $LIMIT_LAST"; return; }
	limit_send ${n}_3 "$STORE_NET.1" "p3-$TOKEN@src.example" "$rc"
	[ "$LIMIT_LAST" = refused ] || { fail $n "3rd from $STORE_NET.1 (limit_to_ip 2): $LIMIT_LAST"; return; }
	summary_or_fail ${n}_3 "refused=1 .*limits=[a-z]+ \(bucket (e2erl|rl):to_ip:$rc:$STORE_NET\.1 full" || return
	limit_send ${n}_4 "$STORE_NET.2" "p4-$TOKEN@src.example" "$rc" ||
		{ fail $n "the same recipient from another client address: $LIMIT_LAST"; return; }
	ok $n
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE 'limits=[^)]*\)')"
}
case_store_limits_per_ip_mem() { store_limits_per_ip mem; }
case_store_limits_per_ip_redis() { store_limits_per_ip redis; }

# only accepted messages count: messages rejected (by a rule, at the end of the message)
# and greylisted attempts do not; then the same for a reject by a module that runs
# after limits (the test policy)
store_limits_not_counted() {
	local b=$1 n=store_limits_not_counted_$1 rc from t0 i
	store_conf $n "$b" "grey limits" "$(store_grey_section)
$(store_limits_section "  limit_to = 2:0.01;")
rule { name = store-nc; reject \"550 5.7.1 store rule reject\"; body /store-reject-me/; }" || return
	store_net
	rc="nc-$TOKEN-$b@dest.example"
	from="nc-$TOKEN@src.example"
	for i in 1 2 3; do
		ssend ${n}_rej$i 127.0.250.$((30 + ${#b})) "r$i-$TOKEN@src.example" "$rc" \
			--body "please store-reject-me $i"
		[ "$SW_RC" = 26 ] && expect_reply "550 5.7.1 store rule reject" ||
			{ fail $n "rule reject $i: rc=$SW_RC: $(sw_replies)"; return; }
	done
	t0=$(now)
	ssend ${n}_g1 "$STORE_NET.1" "$from" "$rc"
	expect_greylisted $n || return
	ssend ${n}_g2 "$STORE_NET.1" "$from" "$rc"
	expect_greylisted $n || return
	wait_until "$t0" "$STORE_GREY_T.3"
	limit_send ${n}_pass "$STORE_NET.1" "$from" "$rc" ||
		{ fail $n "after 3 rejected and 2 greylisted attempts (limit 2): $LIMIT_LAST, want delivered"; return; }
	limit_send ${n}_white "$STORE_NET.1" "$from" "$rc" ||
		{ fail $n "the 2nd accepted message (limit 2): $LIMIT_LAST, want delivered"; return; }
	limit_send ${n}_over "$STORE_NET.1" "$from" "$rc"
	[ "$LIMIT_LAST" = refused ] || { fail $n "the 3rd accepted message (limit 2): $LIMIT_LAST, want refused"; return; }
	ok $n
	# rejected at the end of the message by the test policy, which runs after limits
	rc="nc2-$TOKEN-$b@dest.example"
	for i in 1 2; do
		ssend ${n}_late$i 127.0.250.$((30 + ${#b})) "q$i-$TOKEN@src.example" "$rc" \
			--add-header "X-Rmilter-Test: reject"
		[ "$SW_RC" = 26 ] || { fail ${n}_late_reject "test-policy reject $i: rc=$SW_RC: $(sw_replies)"; return; }
	done
	limit_send ${n}_late3 127.0.250.$((30 + ${#b})) "q3-$TOKEN@src.example" "$rc" ||
		{ fail ${n}_late_reject "after 2 messages rejected at EOM by the test policy (limit 2): $LIMIT_LAST, want delivered (a refused message is not counted); $(grep -E "helo=${n}_late2\.client" "$RLOG" | grep -oE 'limits=[^)]*\)' | tail -1)"; return; }
	ok ${n}_late_reject
}
case_store_limits_not_counted_mem() { store_limits_not_counted mem; }
case_store_limits_not_counted_redis() { store_limits_not_counted redis; }

# ---- the store down ------------------------------------------------------------------------

# redis on a port where nothing listens; tempfail_on_error = no: mail passes at once and
# the summary names the server and the error
case_store_down_pass() {
	local n=store_down_pass
	STORE_REDIS_AT=$STORE_CLOSED_PORT store_conf $n redis "grey limits" "$(store_grey_section)
$(store_limits_section "  limit_to = 1:0.01;")" || return
	store_net
	ssend ${n}_1 "$STORE_NET.1" "dp-$TOKEN@src.example" "dp-$TOKEN@dest.example" --body "store down $TOKEN"
	expect_delivered $n || return
	summary_or_fail ${n}_1 "greylisting=continue \(greylisting store unavailable.*server 127\.0\.0\.1:$STORE_CLOSED_PORT, error: redis 127\.0\.0\.1:$STORE_CLOSED_PORT: .*limits=continue \(rate limit store unavailable.*server 127\.0\.0\.1:$STORE_CLOSED_PORT, error: " || return
	fle "$SW_SECS" $((3 * SLOW)) || { fail $n "took ${SW_SECS}s with the store down (connection refused)"; return; }
	# again: limit 1 would refuse it if anything were counted
	ssend ${n}_2 "$STORE_NET.1" "dp2-$TOKEN@src.example" "dp-$TOKEN@dest.example"
	expect_delivered $n || return
	ok $n
	note "${SW_SECS}s; $(printf '%s' "$SCAN_SUMMARY" | grep -oE 'greylisting=[^)]*\)' | cut -c1-200)"
}

# tempfail_on_error = yes: greylisting refuses at DATA, limits at RCPT
case_store_down_tempfail() {
	local n=store_down_tempfail
	STORE_REDIS_AT=$STORE_CLOSED_PORT store_conf $n redis "grey" "$(store_grey_section "  tempfail_on_error = yes;")" || return
	store_net
	ssend ${n}_grey "$STORE_NET.1" "dt-$TOKEN@src.example" "dt-$TOKEN@dest.example"
	[ "$SW_RC" = 25 ] && expect_reply "451 4.7.1 Temporary service failure" ||
		{ fail $n "greylisting, store down, tempfail_on_error = yes: rc=$SW_RC, want 25 with 451 4.7.1 Temporary service failure: $(sw_replies)"; return; }
	summary_or_fail ${n}_grey "greylisting=tempfail \(greylisting store unavailable" || return
	STORE_REDIS_AT=$STORE_CLOSED_PORT store_conf $n redis "limits" "$(store_limits_section "  limit_to = 5:0.01;" |
		sed 's/tempfail_on_error = no/tempfail_on_error = yes/')" || return
	ssend ${n}_limits "$STORE_NET.1" "dt2-$TOKEN@src.example" "dt-$TOKEN@dest.example"
	expect_rcpt_refused $n "451 4.7.1 Temporary service failure" || return
	summary_or_fail ${n}_limits "refused=1 .*limits=[a-z]+ \(rate limit store unavailable.*1 rcpt refused" || return
	ok $n
}

# ---- side daemons and mload -------------------------------------------------------------------

_side_var() { printf 'STORE_SIDE_%s_%s' "$1" "$2" | tr -c 'A-Za-z0-9_' '_'; }

# store_side_start NAME CONF-LINES -> a daemon of its own on a free port (STORE_SIDE_PORT),
# log in $STORE_DIR/NAME.log; many descriptors (c = 5000 sessions)
store_side_start() {
	local name=$1 port pid v
	peer_port port || { echo "no free port"; return 1; }
	{
		echo "bind_socket = \"inet:$port@127.0.0.1\";"
		echo "max_connections = 20000;"
		echo "listen_backlog = 8192;"
		echo "control_socket = \"$STORE_DIR/$name.ctl\";"
		printf '%s\n' "$2"
	} >"$STORE_DIR/$name.conf"
	# shellcheck disable=SC2086
	(ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
	 exec $RMILTER_WRAPPER "$RMILTER_BIN" -n -c "$STORE_DIR/$name.conf") >>"$STORE_DIR/$name.log" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	if ! "$PY" "$TOOLS/waitport.py" 127.0.0.1 "$port" $((10 * SLOW)) >/dev/null; then
		echo "side daemon $name did not listen on $port: $(tail -3 "$STORE_DIR/$name.log" | tr '\n' '|')"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	v=$(_side_var "$name" PID); printf -v "$v" %s "$pid"
	v=$(_side_var "$name" PORT); printf -v "$v" %s "$port"
	STORE_SIDE_PORT=$port
	STORE_SIDE_NAMES+=("$name")
}

side_port() { local v; v=$(_side_var "$1" PORT); echo "${!v:-}"; }

# store_side_stop NAME -> SIGTERM, wait (bounded); STORE_SIDE_RC; a sanitizer/valgrind
# report in its log is a failure of the case CASE (2nd argument)
store_side_stop() {
	local name=$1 v pid i
	v=$(_side_var "$name" PID)
	pid=${!v:-}
	STORE_SIDE_RC=none
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq $((200 * SLOW))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		STORE_SIDE_RC=timeout
	else
		wait "$pid" 2>/dev/null
		STORE_SIDE_RC=$?
	fi
	printf -v "$v" %s ""
	local x keep=()
	for x in "${STORE_SIDE_NAMES[@]}"; do [ "$x" = "$name" ] || keep+=("$x"); done
	STORE_SIDE_NAMES=("${keep[@]}")
	if [ -n "${2:-}" ]; then
		if [ "$STORE_SIDE_RC" != 0 ]; then
			fail "$2" "side daemon $name: SIGTERM exit code $STORE_SIDE_RC; log tail: $(tail -5 "$STORE_DIR/$name.log" | tr '\n' '|' | cut -c1-400)"
		elif grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|definitely lost: [1-9]|ERROR SUMMARY: [1-9]|Invalid (read|write|free)' "$STORE_DIR/$name.log"; then
			fail "$2" "side daemon $name: sanitizer/valgrind report in $STORE_DIR/$name.log"
		fi
	fi
}

store_side_stop_all() {
	local x
	for x in "${STORE_SIDE_NAMES[@]}"; do store_side_stop "$x"; done
}

# run_mload OUT PORT ARGS... -> mload -j -f against 127.0.0.1:PORT, JSON into OUT
# (stderr into OUT.err); at most STORE_MLOAD_T (120) s
run_mload() {
	local out=$1 port=$2
	shift 2
	(ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
	 exec "$STORE_MLOAD" -s "inet:$port@127.0.0.1" -j -f -t "${STORE_MLOAD_T:-120}" "$@") \
		>"$out" 2>"$out.err"
}

# msum FILE... -> MS_* variables from tools/mload_sum.py (MS_accepted, MS_tempfail ...)
msum() {
	local kv k v
	for kv in $("$PY" "$TOOLS/mload_sum.py" "$@"); do
		k=${kv%%=*}
		v=${kv#*=}
		printf -v "MS_$k" %s "$v"
	done
}

# redis_rt -> redis round trips so far: the EVALSHA/EVAL/SCRIPT calls of INFO
# commandstats (the commands a script runs inside redis are counted there too, and in
# total_commands_processed, but are no round trips)
redis_rt() {
	redis_cli main INFO commandstats 2>/dev/null | tr -d '\r' |
		awk -F'[:,=]' '/^cmdstat_(evalsha|eval|script)/ { s += $3 } END { print s + 0 }'
}

# rmilter -s of a side daemon: the counters line of MODULE ("module greylisting: ...")
side_counters() {
	timeout 10 "$RMILTER_BIN" -s -c "$STORE_DIR/$1.conf" 2>&1 | grep -E "^module $2:" | head -1
}

# ---- redis killed and restarted under load ------------------------------------------------------

# store_bg_load STOPFILE NAME PORT -> mload batches (100 messages, c = 20, new triplets, -T 10)
# against PORT until STOPFILE exists (at most 400 batches / 90 s), results in
# $STORE_DIR/NAME.bN.json
store_bg_load() {
	local stop=$1 name=$2 port=$3 t batch
	t=$(date +%s)
	for batch in $(seq 400); do
		[ -e "$stop" ] && break
		[ $(($(date +%s) - t)) -ge 90 ] && break
		STORE_MLOAD_T=60 run_mload "$STORE_DIR/$name.b$batch.json" "$port" -c 20 -n 100 -T 10 \
			-I 198.51.100.77 -i load.example -F "$name-%m-b$batch-$TOKEN@src.example" \
			-R "$name-%m@dest.example"
		sleep 0.2
	done
}

# load through the main daemon (mload, new triplets) while redis is SIGKILLed and started
# again on the same port: mail passes meanwhile (tempfail_on_error = no) within the
# timeouts, no session stalls, and once redis is back (after dead_time) mail is
# greylisted again -- also a triplet greylisted before the crash (redis kept nothing).
case_store_redis_kill_restart() {
	local n=store_redis_kill_restart tr i batch stop=$STORE_DIR/kill.stop bound back=
	local lpid before_from before_to limit
	[ -n "$STORE_MLOAD" ] || { fail $n "no mload"; return; }
	store_conf $n redis "grey" "$(store_grey_section "  awl_enable = no;")" || return
	store_net
	before_from="kr-$TOKEN@src.example"
	before_to="kr-$TOKEN@dest.example"
	rm -f "$stop" "$STORE_DIR"/kill.b*.json*
	# the load: batches of 100 messages, 20 at a time, new triplets, about 4 batches a
	# second until told to stop (at most 400 batches / 90 s)
	store_bg_load "$stop" kill "$MILTER_PORT" &
	lpid=$!
	sleep 1
	# phase A: redis up, a new triplet is greylisted
	ssend ${n}_a "$STORE_NET.1" "$before_from" "$before_to"
	expect_greylisted ${n}_before || { touch "$stop"; wait $lpid; return; }
	log_mark
	redis_stop main KILL
	# phase B: down; mail passes, bounded (connect 1 s + command 1 s + slack)
	bound=$(awk -v s="$SLOW" 'BEGIN { print 2 + 2 * s }')
	for i in 1 2 3; do
		ssend ${n}_b$i "$STORE_NET.1" "down$i-$TOKEN@src.example" "down$i-$TOKEN@dest.example"
		expect_delivered ${n}_down || { touch "$stop"; wait $lpid; return; }
		fle "$SW_SECS" "$bound" || { fail ${n}_down "message $i took ${SW_SECS}s with redis down (bound ${bound}s)"; touch "$stop"; wait $lpid; return; }
		note "down: message $i delivered in ${SW_SECS}s"
	done
	summary_or_fail ${n}_b3 "greylisting=continue \(greylisting store unavailable" || { touch "$stop"; wait $lpid; return; }
	ok ${n}_down
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE 'greylisting=[^)]*\)' | cut -c1-250)"
	sleep 1
	tr=$(now)
	if ! redis_start main "$STORE_REDIS_PORT"; then
		fail $n "redis did not start again on port $STORE_REDIS_PORT: $PEERS_WHY"
		touch "$stop"; wait $lpid; return
	fi
	# phase C: greylisting again once the client has reconnected (dead_time 5 s)
	limit=$(awk -v s="$SLOW" 'BEGIN { print 10 + 5 * s }')
	i=0
	while ! fle "$limit" "$(elapsed "$tr")"; do
		i=$((i + 1))
		ssend ${n}_c$i "$STORE_NET.1" "back$i-$TOKEN@src.example" "back$i-$TOKEN@dest.example"
		if [ "$SW_RC" = 25 ]; then back=$(elapsed "$tr"); break; fi
		[ "$SW_RC" = 0 ] || { fail ${n}_reconnect "while redis came back: rc=$SW_RC: $(sw_replies)"; touch "$stop"; wait $lpid; return; }
		sleep 0.5
	done
	if [ -z "$back" ]; then
		fail ${n}_reconnect "still no greylisting ${limit}s after redis restarted (dead_time 5 s): $(log_since | grep -iE 'redis|dead|alive|revive' | tail -3 | tr '\n' '|')"
		touch "$stop"; wait $lpid; return
	fi
	expect_greylisted ${n}_reconnect || { touch "$stop"; wait $lpid; return; }
	ok ${n}_reconnect
	note "greylisting again ${back}s after the restart ($i probe messages); log: $(log_since | grep -iE 'marked dead|revived|alive|reconnect' | head -2 | cut -c1-160 | tr '\n' '|')"
	# the triplet greylisted before the crash: redis lost it (no persistence), new again
	ssend ${n}_again "$STORE_NET.1" "$before_from" "$before_to"
	expect_greylisted ${n}_state || { touch "$stop"; wait $lpid; return; }
	ok ${n}_state
	touch "$stop"
	wait $lpid
	# the load: every session finished, none stalled
	msum "$STORE_DIR"/kill.b*.json
	[ "$MS_runs" -ge 4 ] && [ "$MS_failed_runs" = 0 ] ||
		{ fail ${n}_load "$MS_runs batches, $MS_failed_runs without a result: $(cat "$STORE_DIR"/kill.b*.json.err | head -3 | tr '\n' '|')"; return; }
	[ "$MS_errors" = 0 ] ||
		{ fail ${n}_load "$MS_errors of $((MS_messages + MS_errors)) load messages failed (stalled or cut): $(cat "$STORE_DIR"/kill.b*.json.err | grep -v '^  trace' | head -3 | tr '\n' '|')"; return; }
	fle "$MS_max_ms" $((4000 * SLOW)) ||
		{ fail ${n}_load "the slowest load message took ${MS_max_ms} ms (bound $((4000 * SLOW)) ms: connect + command timeouts + slack)"; return; }
	[ "$MS_tempfail_data" -gt 0 ] && [ "$MS_accepted" -gt 0 ] ||
		{ fail ${n}_load "load verdicts: $MS_tempfail_data greylisted, $MS_accepted passed: want both (greylisted while redis was up, passed while down)"; return; }
	ok ${n}_load
	note "load: $MS_runs batches, $MS_messages messages, $MS_tempfail_data greylisted, $MS_accepted passed (store down), 0 errors, max ${MS_max_ms} ms"
}

# redis hangs (SIGSTOP: connections open, no answer) under load: every message waits at
# most command_timeout (1 s) and passes; after SIGCONT and dead_time mail is greylisted
# again
case_store_redis_hang() {
	local n=store_redis_hang stop=$STORE_DIR/hang.stop lpid pid bound i back= th limit
	[ -n "$STORE_MLOAD" ] || { fail $n "no mload"; return; }
	store_conf $n redis "grey" "$(store_grey_section "  awl_enable = no;")" || return
	store_net
	rm -f "$stop" "$STORE_DIR"/hang.b*.json*
	store_bg_load "$stop" hang "$MILTER_PORT" &
	lpid=$!
	sleep 1
	pid=$(redis_pid main)
	th=$(now)
	kill -STOP "$pid"
	bound=$(awk -v s="$SLOW" 'BEGIN { print 1 + 2 * s }')
	for i in 1 2 3; do
		ssend ${n}_h$i "$STORE_NET.1" "hang$i-$TOKEN@src.example" "hang$i-$TOKEN@dest.example"
		if [ "$SW_RC" != 0 ] || ! fle "$SW_SECS" "$bound"; then
			kill -CONT "$pid"; touch "$stop"; wait $lpid
			fail ${n}_pass "message $i while redis hangs: rc=$SW_RC after ${SW_SECS}s (want delivered within ${bound}s: command_timeout 1 s): $(sw_replies)"
			return
		fi
		note "redis hanging: message $i delivered in ${SW_SECS}s"
	done
	summary_or_fail ${n}_h1 'greylisting=continue \(greylisting store unavailable.*error: ' || { kill -CONT "$pid"; touch "$stop"; wait $lpid; return; }
	ok ${n}_pass
	note "$(printf '%s' "$SCAN_SUMMARY" | grep -oE 'greylisting=[^)]*\)' | cut -c1-250)"
	sleep 1
	kill -CONT "$pid"
	th=$(now)
	limit=$(awk -v s="$SLOW" 'BEGIN { print 10 + 5 * s }')
	i=0
	while ! fle "$limit" "$(elapsed "$th")"; do
		i=$((i + 1))
		ssend ${n}_c$i "$STORE_NET.1" "hback$i-$TOKEN@src.example" "hback$i-$TOKEN@dest.example"
		if [ "$SW_RC" = 25 ]; then back=$(elapsed "$th"); break; fi
		sleep 0.5
	done
	touch "$stop"
	wait $lpid
	[ -n "$back" ] || { fail ${n}_back "no greylisting ${limit}s after SIGCONT"; return; }
	ok ${n}_back
	note "greylisting again ${back}s after SIGCONT"
	msum "$STORE_DIR"/hang.b*.json
	if [ "$MS_errors" != 0 ] || [ "$MS_failed_runs" != 0 ]; then
		fail ${n}_load "$MS_errors load messages failed, $MS_failed_runs batches without a result: $(cat "$STORE_DIR"/hang.b*.json.err | grep -v '^  trace' | head -3 | tr '\n' '|')"
	elif ! fle "$MS_max_ms" $((3000 * SLOW)); then
		fail ${n}_load "the slowest load message took ${MS_max_ms} ms (command_timeout 1 s)"
	else
		ok ${n}_load
		note "load: $MS_runs batches, $MS_messages messages, $MS_tempfail_data greylisted, $MS_accepted passed, 0 errors, max ${MS_max_ms} ms"
	fi
}

# ---- two daemons, one redis, one limit -------------------------------------------------------------

# limit_to = 50:0.001 on one recipient, two daemons sharing the redis, each given 150
# messages 100 at a time at once: exactly 50 accepted in total, the rest 451 at RCPT
case_store_limits_two_daemons() {
	local n=store_limits_two_daemons conf rc pa pb k lvl c=${STORE_TWO_C:-100} m=${STORE_TWO_N:-150}
	[ -n "$STORE_MLOAD" ] || { fail $n "no mload"; return; }
	rc="shared-$TOKEN@dest.example"
	conf="log_level = info;
$(store_redis_section "limits")
limits {
  limit_to = 50:0.001;
}"
	store_side_start twoA "$conf" || { fail $n "daemon A did not start"; return; }
	pa=$STORE_SIDE_PORT
	store_side_start twoB "$conf" || { fail $n "daemon B did not start"; return; }
	pb=$STORE_SIDE_PORT
	run_mload "$STORE_DIR/twoA.json" "$pa" -c "$c" -n "$m" -I 198.51.100.1 -i a.example \
		-F "a%m-$TOKEN@src.example" -R "$rc" &
	local ja=$!
	run_mload "$STORE_DIR/twoB.json" "$pb" -c "$c" -n "$m" -I 198.51.100.2 -i b.example \
		-F "b%m-$TOKEN@src.example" -R "$rc" &
	local jb=$!
	wait $ja
	wait $jb
	msum "$STORE_DIR/twoA.json" "$STORE_DIR/twoB.json"
	local a_acc b_acc
	a_acc=$(sed -n 's/.*"finals":{\([^}]*\)}.*/\1/p' "$STORE_DIR/twoA.json")
	b_acc=$(sed -n 's/.*"finals":{\([^}]*\)}.*/\1/p' "$STORE_DIR/twoB.json")
	k=$(rkeys "e2erl*$rc" | head -1)
	lvl=$(redis_cli main GET "$k" 2>/dev/null)
	store_side_stop twoA $n
	store_side_stop twoB $n
	[ "$MS_failed_runs" = 0 ] && [ "$MS_errors" = 0 ] ||
		{ fail $n "mload: $MS_errors errors, $MS_failed_runs runs without a result: $(head -3 "$STORE_DIR"/two*.json.err | tr '\n' '|')"; return; }
	note "A: {$a_acc}, B: {$b_acc}; bucket $k = '$lvl'"
	if [ "$MS_accepted" != 50 ]; then
		fail $n "$MS_accepted of $((2 * m)) messages accepted in total (limit_to = 50:0.001 shared through redis), want exactly 50; $MS_tempfail_rcpt refused at RCPT, $MS_tempfail tempfailed in all"
		note "A's log: $(grep -cE 'rcpt refused' "$STORE_DIR/twoA.log") refused, $(grep -oE 'limits=continue \(counted[^)]*\)' "$STORE_DIR/twoA.log" | tail -1)"
		return
	fi
	[ "$MS_tempfail_rcpt" = $((2 * m - 50)) ] ||
		{ fail $n "50 accepted, but $MS_tempfail_rcpt refused at RCPT (want $((2 * m - 50))), $MS_tempfail tempfailed in all"; return; }
	ok $n
}

# ---- load correctness ----------------------------------------------------------------------------

# STORE_LOAD_N messages at concurrency STORE_LOAD_C through one daemon and the redis,
# half never-seen triplets (each must be greylisted: 0 wrongly accepted), half triplets
# whitelisted beforehand by a real pass (send, wait the timeout, send again: each must be
# accepted: 0 wrongly tempfailed); then (STORE_LOAD_C2) the same at a higher concurrency
# with new never-seen triplets.  Also: the redis connections stay few (no connection per
# message) and rmilter's own counters agree.
case_store_load() {
	local n=store_load N C C2 half t0 secs conns0 conns1 cmds0 cmds1 p ok_all=1 tw
	[ -n "$STORE_MLOAD" ] || { fail $n "no mload"; return; }
	if [ -n "$RMILTER_WRAPPER" ]; then
		N=${STORE_LOAD_N:-2000}; C=${STORE_LOAD_C:-200}; C2=${STORE_LOAD_C2:-0}
	else
		N=${STORE_LOAD_N:-20000}; C=${STORE_LOAD_C:-1000}; C2=${STORE_LOAD_C2:-5000}
	fi
	half=$((N / 2))
	tw=2
	store_side_start load "log_level = notice;
$(store_redis_section "grey")
greylisting {
  timeout = ${tw}s; expire = 1h; expire_white = 1h;
  awl_enable = no;
  tempfail_on_error = no;
}" || { fail $n "the load daemon did not start"; return; }
	p=$STORE_SIDE_PORT
	conns0=$(redis_info main total_connections_received)
	# seeding, pass 1: every triplet is new
	t0=$(now)
	run_mload "$STORE_DIR/seed1.json" "$p" -c "$C" -n "$half" -I 198.51.100.10 -i white.example \
		-F "w%m-$TOKEN@src.example" -R "w%m@dest.example"
	msum "$STORE_DIR/seed1.json"
	secs=$(elapsed "$t0")
	note "seed pass 1: $half new triplets at c=$C in ${secs}s: $MS_tempfail_data greylisted at DATA, $MS_accepted accepted, $MS_errors errors"
	if [ "$MS_errors" != 0 ] || [ "$MS_tempfail_data" != "$half" ]; then
		fail ${n}_seed "pass 1 of $half new triplets: $MS_tempfail_data greylisted (want all), $MS_accepted accepted, $MS_errors errors: $(head -3 "$STORE_DIR/seed1.json.err" | tr '\n' '|')"
		ok_all=0
	fi
	sleep $((tw + 1))
	# seeding, pass 2: every triplet retried after the timeout: passes, X-Greylist added
	t0=$(now)
	run_mload "$STORE_DIR/seed2.json" "$p" -c "$C" -n "$half" -I 198.51.100.10 -i white.example \
		-F "w%m-$TOKEN@src.example" -R "w%m@dest.example"
	msum "$STORE_DIR/seed2.json"
	note "seed pass 2: the retries in $(elapsed "$t0")s: $MS_accepted accepted ($MS_hdr_added X-Greylist), $MS_tempfail tempfailed, $MS_errors errors"
	if [ "$MS_errors" != 0 ] || [ "$MS_accepted" != "$half" ] || [ "$MS_hdr_added" != "$half" ]; then
		fail ${n}_seed "pass 2 (retries after ${tw}s): $MS_accepted of $half accepted, $MS_hdr_added X-Greylist headers, $MS_tempfail tempfailed, $MS_errors errors"
		ok_all=0
	fi
	[ $ok_all = 1 ] && ok ${n}_seed
	# the measured runs: whitelisted and new triplets at the same time, C/2 each
	local c lvl runs=$C
	[ "${C2:-0}" -gt 0 ] && runs="$C $C2"
	lvl=0
	for c in $runs; do
		lvl=$((lvl + 1))
		cmds0=$(redis_rt)
		t0=$(now)
		run_mload "$STORE_DIR/white$lvl.json" "$p" -c $((c / 2)) -n "$half" -I 198.51.100.10 -i white.example \
			-F "w%m-$TOKEN@src.example" -R "w%m@dest.example" &
		local jw=$!
		run_mload "$STORE_DIR/new$lvl.json" "$p" -c $((c / 2)) -n "$half" -I 203.0.113.10 -i new.example \
			-F "n%m-L$lvl-$TOKEN@src.example" -R "n%m@dest.example" &
		local jn=$!
		wait $jw
		wait $jn
		secs=$(elapsed "$t0")
		cmds1=$(redis_rt)
		msum "$STORE_DIR/white$lvl.json"
		local w_acc=$MS_accepted w_tf=$MS_tempfail w_err=$MS_errors w_max=$MS_max_ms w_h=$MS_hdr_added
		msum "$STORE_DIR/new$lvl.json"
		local g_acc=$MS_accepted g_tf=$MS_tempfail_data g_err=$MS_errors g_max=$MS_max_ms
		note "c=$c: $N messages in ${secs}s ($(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') msg/s); whitelisted: $w_acc accepted, $w_tf tempfailed, $w_err errors, max ${w_max} ms; new: $g_tf greylisted, $g_acc accepted, $g_err errors, max ${g_max} ms; redis round trips $(awk -v a="$cmds0" -v b="$cmds1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }')/msg (EVALSHA)"
		if [ "$w_err" = 0 ] && [ "$g_err" = 0 ] && [ "$w_acc" = "$half" ] && [ "$w_tf" = 0 ] &&
			[ "$g_acc" = 0 ] && [ "$g_tf" = "$half" ] && [ "$w_h" = 0 ]; then
			ok ${n}_c$c
		else
			fail ${n}_c$c "whitelisted: $w_acc of $half accepted, $w_tf wrongly tempfailed, $w_h X-Greylist; new: $g_acc wrongly accepted, $g_tf of $half greylisted; errors $w_err + $g_err: $(cat "$STORE_DIR/white$lvl.json.err" "$STORE_DIR/new$lvl.json.err" | grep -v '^  trace' | head -3 | tr '\n' '|')"
		fi
	done
	conns1=$(redis_info main total_connections_received)
	note "rmilter: $(side_counters load greylisting)"
	store_side_stop load $n
	# connections to redis over the whole run (minus the redis-cli calls of this case)
	local cli=$((2 * lvl + 1))
	if [ $((conns1 - conns0 - cli)) -le 20 ]; then
		ok ${n}_redis_connections
		note "redis connections opened during $((2 * half + lvl * N)) messages: $((conns1 - conns0 - cli))"
	else
		fail ${n}_redis_connections "$((conns1 - conns0 - cli)) redis connections opened for $((2 * half + lvl * N)) messages"
	fi
}
