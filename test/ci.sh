#!/bin/bash
# test/ci.sh -- install what the tests need (Debian 12, non-interactive) and run every
# test ("make check": unit plain/ASan+UBSan/valgrind, e2e against a private Postfix
# three times, short fuzzing).  Used on a fresh machine and by CI (.ci/run, CI=true).
# Needs root or sudo for apt-get and for the private Postfix instance of the e2e suite.
#
# Postfix is preseeded with "No configuration": the package then installs no system
# MTA configuration and starts nothing.  The e2e suite runs its own instance from a
# temp directory (own main.cf/master.cf/queue, 127.0.0.1 on ports 24525/24526/24539 or
# the next free block), so a system Postfix, if one runs, is never touched.

set -u
cd "$(dirname "$0")/.." || exit 1
exec </dev/null   # CI has no standard input; make sure nothing waits for one

PKGS=(build-essential pkg-config clang libclang-rt-14-dev valgrind
	libevent-dev libpcre2-dev libhiredis-dev libopendkim-dev libspf2-dev libssl-dev libc-ares-dev
	libjansson-dev libmilter-dev
	postfix swaks miltertest netcat-openbsd python3 iproute2 procps
	rspamd spamassassin spamd spamc clamav-daemon clamav dnsmasq-base bind9-dnsutils curl
	redis-server beanstalkd libsasl2-modules python3-dkim)
# The scanners are real peers of the e2e suite (test/e2e/peers.sh starts private
# instances on loopback, offline).  dnsmasq-base is the dnsmasq binary without the
# "dnsmasq" package's system service (which would want port 53).

if [ "$(id -u)" = 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo -n)
else
	echo "ci.sh: not root and no sudo: cannot install packages" >&2
	exit 1
fi
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "ci.sh: installing ${missing[*]}"
	echo "postfix postfix/main_mailer_type select No configuration" | "${SUDO[@]}" debconf-set-selections
	echo "postfix postfix/mailname string localhost" | "${SUDO[@]}" debconf-set-selections
	ok=0
	for try in 1 2 3; do
		if "${APT[@]}" update && "${APT[@]}" install -y --no-install-recommends "${PKGS[@]}"; then
			ok=1
			break
		fi
		echo "ci.sh: apt-get failed (attempt $try), retrying in 10 s" >&2
		sleep 10
	done
	[ $ok = 1 ] || { echo "ci.sh: could not install the test dependencies" >&2; exit 1; }
else
	echo "ci.sh: all ${#PKGS[@]} packages already installed"
fi

# A system Postfix is left alone (ours is a separate instance); just say if one runs.
if [ -f /var/spool/postfix/pid/master.pid ]; then
	mp=$(tr -d ' ' </var/spool/postfix/pid/master.pid 2>/dev/null)
	if [ -n "$mp" ] && kill -0 "$mp" 2>/dev/null; then
		echo "ci.sh: note: a system Postfix (master pid $mp) is running; the tests use their own instance"
	fi
fi

echo "ci.sh: $(uname -sr), $(nproc) CPUs; $(gcc --version | head -1); $(clang --version | head -1)"
echo "ci.sh: $(postconf -d mail_version 2>/dev/null); $(valgrind --version); swaks $(swaks --version 2>&1 | grep -oE '[0-9]{8}[.0-9]*' | head -1)"

# Build the daemon first so a compile error is reported as such.
if ! make -j"$(nproc)" all; then
	echo "ci.sh: the build failed"
	exit 1
fi
if [ "$(id -u)" = 0 ]; then
	make check
else
	# the e2e suite starts a private Postfix, which needs root
	"${SUDO[@]}" env CI="${CI:-}" FUZZ_SECONDS="${FUZZ_SECONDS:-30}" make check
fi
