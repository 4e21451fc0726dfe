#!/bin/sh
# quickstart.sh -- build rmilter on Debian 12 and run it in the foreground
# with the shipped conf/rmilter.conf (needs no external server).
# Usage (from the repository root):  sh contrib/quickstart.sh
set -e
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="build-essential pkg-config libevent-dev libpcre2-dev libhiredis-dev \
libopendkim-dev libspf2-dev libssl-dev libjansson-dev libc-ares-dev"
missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
		install -y --no-install-recommends $missing
fi
make
src/rmilter -t -c conf/rmilter.conf
echo "rmilter: starting in the foreground (Ctrl-C stops it)"
exec src/rmilter -n -c conf/rmilter.conf
