#!/bin/bash
# test/bench/lib.sh -- helpers shared by the bench parts (scan.sh, store.sh).

# stop_pid PID [SECS]: SIGTERM, wait up to SECS (default 10), then SIGKILL.
stop_pid() {
	local p=$1 n=$((${2:-10} * 20))
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	while [ $n -gt 0 ] && kill -0 "$p" 2>/dev/null; do
		sleep 0.05
		n=$((n - 1))
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}
