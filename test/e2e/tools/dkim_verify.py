#!/usr/bin/python3
# dkim_verify.py MSG KEYS [--tamper-from] -- verifies the first DKIM-Signature of MSG (a file
# as delivered to smtp-sink) with dkimpy, answering the key lookup from KEYS instead of DNS:
# lines "SELECTOR._domainkey.DOMAIN TXT-RECORD".  Prints "pass d=.. s=.. a=.. c=.. h=.." or
# "fail: WHY"; exit 0 on pass, 1 on fail, 2 when MSG has no signature.
# --tamper-from adds a second From header at the top first (an oversigned From must then
# fail).  Never touches the network.
import re
import sys

import dkim

path, keyfile = sys.argv[1], sys.argv[2]
tamper = '--tamper-from' in sys.argv[3:]
keys = {}
for line in open(keyfile, encoding='ascii'):
    line = line.strip()
    if line and not line.startswith('#'):
        name, txt = line.split(None, 1)
        keys[name.lower().rstrip('.') + '.'] = txt.encode()


def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    return keys.get(n.lower().rstrip('.') + '.')


raw = open(path, 'rb').read()
# smtp-sink adds its own X-* lines on top (unsigned); line ends normalized to CRLF
msg = raw.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
if tamper:
    msg = b'From: Mallory <mallory@evil.example>\r\n' + msg
hdr_end = msg.find(b'\r\n\r\n')
heads = msg[:hdr_end]
m = re.search(rb'(?mi)^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)', heads)
if m is None:
    print('fail: no DKIM-Signature header')
    sys.exit(2)
tags = {}
for part in re.sub(rb'\s+', b'', m.group(1)).split(b';'):
    if b'=' in part:
        k, v = part.split(b'=', 1)
        tags[k.decode()] = v.decode()
d = dkim.DKIM(msg)
try:
    ok = d.verify(dnsfunc=dnsfunc)
except Exception as e:  # dkimpy raises on malformed signatures
    print('fail: %s: %s' % (type(e).__name__, e))
    sys.exit(1)
desc = 'd=%s s=%s a=%s c=%s h=%s' % (tags.get('d'), tags.get('s'), tags.get('a'),
                                     tags.get('c', 'simple/simple'), tags.get('h'))
if ok:
    print('pass ' + desc)
    sys.exit(0)
print('fail: signature did not verify (%s)' % desc)
sys.exit(1)
