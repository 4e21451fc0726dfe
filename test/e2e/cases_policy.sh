# cases_policy.sh -- e2e cases of the policy core (sourced by run.sh):
# the JSON audit record matches the mail sent, noop leaves mail untouched
# while the record says what would have happened, and 1,000 spooled
# messages with aborts leave nothing in tempdir and no open file behind.

# with_conf EXTRA -> rewrite the daemon config with EXTRA and reload
with_conf() {
	write_conf "$1"
	hup_and_wait
}

# audit_last FIELD-EXPR -> evaluates a Python expression on the last record
audit_last() {
	"$PY" - "$TG/audit.jsonl" "$1" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
r = json.loads(lines[-1])
print(eval(sys.argv[2], {"r": r}))
EOF
}

case_audit_record() {
	local mid="<audit-$$@test.example>" got
	rm -f "$TG/audit.jsonl"
	with_conf "audit_log = \"$TG/audit.jsonl\";"
	send audit_record --from sender@test.example --to rcpt@dest.example \
		--h-Subject "audit subject" --header "Message-Id: $mid" \
		--add-header "X-Rmilter-Test: addheader X-Audited yes"
	if [ "$SW_RC" != 0 ] || ! wait_delivered "$SW_QID"; then
		fail audit_record "swaks rc=$SW_RC qid=$SW_QID: $(sw_replies)"
		with_conf ""
		return
	fi
	sleep 0.3
	if ! got=$("$PY" - "$TG/audit.jsonl" "$SW_QID" "$mid" <<'EOF'
import json, sys
path, qid, mid = sys.argv[1:4]
recs = [json.loads(l) for l in open(path)]          # every line parses
r = [x for x in recs if x.get("queue_id") == qid]
assert r, f"no record with queue_id {qid} among {len(recs)}"
r = r[-1]
checks = {
    "from": r["from"] == "<sender@test.example>",
    "rcpts": r["rcpts"] == ["<rcpt@dest.example>"],
    "subject": r["subject"] == "audit subject",
    "message_id": r["message_id"] == mid,
    "action": r["action"] in ("continue", "accept"),
    "helo": r["helo"] == "audit_record.client.test",
    "client": r["client"]["addr"] == "127.0.0.1",
    "edits": any(e["name"] == "X-Audited" for e in r["edits"]),
    "modules": any(m["name"] == "test_policy" for m in r["modules"]),
    "generation": isinstance(r["generation"], int),
}
bad = [k for k, v in checks.items() if not v]
assert not bad, f"fields wrong: {bad}: {json.dumps(r)[:400]}"
print(f"{len(recs)} record(s) parse; queue id {qid} matches from/rcpts/subject/message-id/edits")
EOF
	); then
		fail audit_record "$got"
	else
		ok audit_record
		note "$got"
	fi
	with_conf ""
}

case_noop() {
	with_conf "noop = yes;
audit_log = \"$TG/audit.jsonl\";"
	send noop --from sender@test.example --to rcpt@dest.example \
		--h-Subject "noop case" --add-header "X-Rmilter-Test: reject; addheader X-Noop yes"
	if [ "$SW_RC" != 0 ] || ! wait_delivered "$SW_QID"; then
		fail noop "noop = yes but the message was refused: swaks rc=$SW_RC $(sw_replies)"
	elif sink_grep '^X-Noop:' >/dev/null; then
		fail noop "noop = yes but the message was changed (X-Noop added)"
	elif ! grep -E "helo=noop\.client\.test" "$RLOG" | grep -q "would reject"; then
		fail noop "the summary line does not say what would have happened: $(grep 'helo=noop' "$RLOG" | tail -1 | cut -c1-300)"
	else
		ok noop
		note "$(grep 'helo=noop' "$RLOG" | tail -1 | sed 's/.*action=/action=/' | cut -c1-200)"
	fi
	with_conf ""
}

case_spool_1000() {
	local dir="$TG/spool" pid fds0 fds1 out
	mkdir -p "$dir"
	with_conf "tempdir = \"$dir\";
spool_memory_limit = 0;"
	pid=$RMILTER_PID
	fds0=$(ls /proc/"$pid"/fd 2>/dev/null | wc -l)
	out=$(timeout $((120 * SLOW)) "$PY" "$TOOLS/spool_load.py" "$MILTER_PORT" 1000 2>&1)
	sleep 0.5
	fds1=$(ls /proc/"$pid"/fd 2>/dev/null | wc -l)
	if ! echo "$out" | grep -q '^result: ok'; then
		fail spool_1000 "$out"
	elif [ -n "$(ls -A "$dir")" ]; then
		fail spool_1000 "files left in tempdir: $(ls "$dir" | head -3)"
	elif [ "$fds1" -gt "$fds0" ]; then
		fail spool_1000 "open fds grew from $fds0 to $fds1"
	else
		ok spool_1000
		note "$(echo "$out" | sed 's/^result: ok: //'); tempdir empty; fds $fds0 -> $fds1"
	fi
	with_conf ""
}
