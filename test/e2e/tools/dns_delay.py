#!/usr/bin/python3
# dns_delay.py PORT UPSTREAM_PORT DELAY LOG -- a UDP DNS proxy on 127.0.0.1:PORT in front
# of the test dnsmasq (127.0.0.1:UPSTREAM_PORT), for the spf e2e cases:
#   - a query for a name with a label "slow" (slow.spf.test, x.slow.spf.test) is
#     forwarded after DELAY seconds (a nameserver that answers slowly);
#   - a query for a name under drop.spf.test is read and never answered (a nameserver
#     that does not answer: the resolver times out);
#   - every other query is forwarded at once.
# One line per query in LOG: "T NAME TYPE slow|drop|pass".  Loopback only; stopped by
# its PID (SIGTERM).
import socket
import struct
import sys
import threading
import time

port, up_port, delay, logf = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(('127.0.0.1', port))
log = open(logf, 'a', buffering=1)
lock = threading.Lock()


def qname(pkt):
    """(name, type) of the question, or (None, 0) for a malformed query."""
    try:
        i, labels = 12, []
        while pkt[i] != 0:
            n = pkt[i]
            labels.append(pkt[i + 1:i + 1 + n].decode('ascii', 'replace'))
            i += 1 + n
        qtype = struct.unpack('>H', pkt[i + 1:i + 3])[0]
        return '.'.join(labels).lower(), qtype
    except (IndexError, struct.error):
        return None, 0


def forward(pkt, client, wait):
    if wait > 0:
        time.sleep(wait)
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.settimeout(5)
    try:
        up.sendto(pkt, ('127.0.0.1', up_port))
        data, _ = up.recvfrom(65535)
        with lock:
            sock.sendto(data, client)
    except OSError:
        pass
    finally:
        up.close()


while True:
    pkt, client = sock.recvfrom(65535)
    name, qtype = qname(pkt)
    if name is None:
        continue
    labels = name.split('.')
    if name == 'drop.spf.test' or name.endswith('.drop.spf.test'):
        mode = 'drop'
    elif 'slow' in labels:
        mode = 'slow'
    else:
        mode = 'pass'
    log.write('%.3f %s %d %s\n' % (time.time(), name, qtype, mode))
    if mode == 'drop':
        continue
    threading.Thread(target=forward, args=(pkt, client, delay if mode == 'slow' else 0),
                     daemon=True).start()
