#!/usr/bin/python3
# milter_raw.py PORT SCENARIO [ARG] -- speak the milter protocol by hand to rmilter
# (no libmilter), for protocol cases miltertest cannot express and for hostile input.
#
# Scenarios (each prints one "result: ..." line; exit 0 = expectation met, 1 = not):
#   probe            full v6 session: OPTNEG, CONNECT, HELO, MAIL, RCPT, DATA, a header
#                    "X-Rmilter-Test: addheader X-Probe ok", EOH, BODY, EOM -> expects an
#                    ADDHEADER X-Probe and a final CONTINUE/ACCEPT, then QUIT.
#   progress         a message asking for "progress": at least one SMFIR_PROGRESS ('p')
#                    must come before the final reply.
#   quit-nc          one message, SMFIC_QUIT_NC ('K'), then CONNECT again and a second
#                    message on the same socket; both EOMs must answer correctly.
#   pipelined        a whole message written in ONE send() (every event back-to-back with
#                    all NR_* bits the milter accepts), then the EOM answer is checked.
#   zero-len         after OPTNEG, a frame whose length field is 0 -> daemon must close.
#   huge-len         after OPTNEG, a frame header announcing 0x7fffffff bytes -> daemon
#                    must close promptly (without waiting for / allocating 2 GiB).
#   unknown-cmd      after OPTNEG, a frame with the unknown command byte 'Z' -> the
#                    daemon closes or answers; either way it must not hang or crash.
#   before-optneg    SMFIC_MAIL as the very first frame -> close or an error reply.
#   truncated        after OPTNEG, a frame header for 100 bytes, 10 bytes of it, then close.
#   slowloris SECS   after OPTNEG, one byte per second of a CONNECT frame for SECS seconds;
#                    reports whether/when the daemon dropped the connection.
import socket
import struct
import sys
import time

PORT = int(sys.argv[1])
SCEN = sys.argv[2]
ARG = sys.argv[3] if len(sys.argv) > 3 else None

# protocol bits
NOCONNECT, NOHELO, NOMAIL, NORCPT, NOBODY, NOHDRS, NOEOH = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40
NR_HDR, NOUNKNOWN, NODATA, SKIP = 0x80, 0x100, 0x200, 0x400
NR_CONN, NR_HELO, NR_MAIL, NR_RCPT, NR_DATA = 0x1000, 0x2000, 0x4000, 0x8000, 0x10000
NR_EOH, NR_BODY, HDR_LEADSPC = 0x40000, 0x80000, 0x100000
FINAL = set(b'cardty4')


def frame(cmd, data=b''):
    return struct.pack('>I', len(data) + 1) + cmd + data


def result(ok, text):
    print(f"result: {'ok' if ok else 'FAIL'}: {text}", flush=True)
    sys.exit(0 if ok else 1)


class Closed(Exception):
    pass


class Sess:
    def __init__(self, timeout=10.0):
        self.s = socket.create_connection(('127.0.0.1', PORT), timeout=timeout)
        self.s.settimeout(timeout)
        self.prot = 0
        self.act = 0
        self.ver = 0

    def send(self, b):
        self.s.sendall(b)

    def recvn(self, n):
        b = b''
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise Closed(f"EOF after {len(b)} of {n} bytes")
            b += c
        return b

    def read(self):
        (ln,) = struct.unpack('>I', self.recvn(4))
        if ln < 1 or ln > 1 << 20:
            raise ValueError(f"bad reply length {ln}")
        p = self.recvn(ln)
        return p[:1], p[1:]

    def negotiate(self, ver=6, act=0x1FF, prot=0x1FFFFF):
        self.send(frame(b'O', struct.pack('>III', ver, act, prot)))
        cmd, data = self.read()
        if cmd != b'O' or len(data) < 12:
            raise ValueError(f"bad OPTNEG reply {cmd!r} {data!r}")
        self.ver, self.act, self.prot = struct.unpack('>III', data[:12])
        if self.ver > ver or (self.act & ~act) or (self.prot & ~prot & 0x0FFFFFFF):
            raise ValueError(f"OPTNEG reply not a subset: ver={self.ver} act=0x{self.act:x} "
                             f"prot=0x{self.prot:x}")
        return self

    def reply(self):
        while True:
            cmd, data = self.read()
            if cmd != b'p':
                return cmd, data

    def event(self, cmd, data, nobit, nrbit):
        """Send one event unless suppressed; return its reply, None if NR, 'skipped'."""
        if self.prot & nobit:
            return 'skipped'
        self.send(frame(cmd, data))
        if self.prot & nrbit:
            return None
        return self.reply()

    def eom(self):
        self.send(frame(b'E'))
        mods = []
        self.progress = 0
        while True:
            cmd, data = self.read()
            if cmd == b'p':
                self.progress += 1
                continue
            if cmd[0] in FINAL or cmd == b'y':
                return mods, (cmd, data)
            mods.append((cmd, data))

    def message(self, headers, body=b'body\r\n', sender=b'<s@test.example>',
                rcpt=b'<r@dest.example>'):
        """One transaction after CONNECT/HELO; returns (mods, final)."""
        lead = b' ' if self.prot & HDR_LEADSPC else b''
        for ev in ((b'M', sender + b'\0', NOMAIL, NR_MAIL),
                   (b'R', rcpt + b'\0', NORCPT, NR_RCPT),
                   (b'T', b'', NODATA, NR_DATA)):
            r = self.event(*ev)
            if r not in ('skipped', None) and r[0] != b'c':
                raise ValueError(f"event {ev[0]!r} answered {r!r}")
        for name, value in headers:
            r = self.event(b'L', name + b'\0' + lead + value + b'\0', NOHDRS, NR_HDR)
            if r not in ('skipped', None) and r[0] not in (b'c', b's'):
                raise ValueError(f"header answered {r!r}")
        r = self.event(b'N', b'', NOEOH, NR_EOH)
        if r not in ('skipped', None) and r[0] != b'c':
            raise ValueError(f"EOH answered {r!r}")
        r = self.event(b'B', body, NOBODY, NR_BODY)
        if r not in ('skipped', None) and r[0] not in (b'c', b's'):
            raise ValueError(f"BODY answered {r!r}")
        return self.eom()

    def connect_helo(self):
        r = self.event(b'C', b'client.test.example\x004' + struct.pack('>H', 4242) +
                       b'192.0.2.1\0', NOCONNECT, NR_CONN)
        if r not in ('skipped', None) and r[0] != b'c':
            raise ValueError(f"CONNECT answered {r!r}")
        r = self.event(b'H', b'client.test.example\0', NOHELO, NR_HELO)
        if r not in ('skipped', None) and r[0] != b'c':
            raise ValueError(f"HELO answered {r!r}")

    def closed_within(self, secs):
        """True if the peer closes (EOF/RST) within SECS; replies are read and ignored."""
        self.s.settimeout(0.2)
        end = time.time() + secs
        got = []
        while time.time() < end:
            try:
                c = self.s.recv(4096)
                if not c:
                    return True, got
                got.append(c)
            except socket.timeout:
                continue
            except OSError:
                return True, got
        return False, got


def has_header(mods, name, value):
    for cmd, data in mods:
        if cmd == b'h':
            n, _, v = data.partition(b'\0')
            if n == name and v.rstrip(b'\0').strip() == value:
                return True
    return False


def main():
    if SCEN == 'probe':
        s = Sess().negotiate()
        s.connect_helo()
        mods, final = s.message([(b'From', b's@test.example'),
                                 (b'X-Rmilter-Test', b'addheader X-Probe ok')])
        s.send(frame(b'Q'))
        ok = has_header(mods, b'X-Probe', b'ok') and final[0] in (b'c', b'a')
        result(ok, f"mods={mods!r} final={final!r}")

    if SCEN == 'progress':
        s = Sess().negotiate()
        s.connect_helo()
        mods, final = s.message([(b'X-Rmilter-Test', b'delay 300; progress; addheader X-P yes')])
        s.send(frame(b'Q'))
        ok = s.progress >= 1 and has_header(mods, b'X-P', b'yes') and final[0] in (b'c', b'a')
        result(ok, f"{s.progress} progress packet(s), mods={mods!r} final={final!r}")

    if SCEN == 'quit-nc':
        s = Sess().negotiate()
        s.connect_helo()
        m1, f1 = s.message([(b'X-Rmilter-Test', b'addheader X-First one')])
        s.send(frame(b'A') + frame(b'K'))
        s.connect_helo()
        m2, f2 = s.message([(b'X-Rmilter-Test', b'addheader X-Second two')])
        s.send(frame(b'A') + frame(b'Q'))
        ok = (has_header(m1, b'X-First', b'one') and has_header(m2, b'X-Second', b'two')
              and not has_header(m2, b'X-First', b'one') and f1[0] in (b'c', b'a')
              and f2[0] in (b'c', b'a'))
        result(ok, f"first={m1!r},{f1!r} second={m2!r},{f2!r}")

    if SCEN == 'pipelined':
        s = Sess().negotiate()
        p = s.prot
        lead = b' ' if p & HDR_LEADSPC else b''
        evs = [(b'C', b'client.test.example\x004' + struct.pack('>H', 4242) + b'192.0.2.1\0',
                NOCONNECT, NR_CONN),
               (b'H', b'client.test.example\0', NOHELO, NR_HELO),
               (b'M', b'<s@test.example>\0', NOMAIL, NR_MAIL),
               (b'R', b'<r@dest.example>\0', NORCPT, NR_RCPT),
               (b'T', b'', NODATA, NR_DATA),
               (b'L', b'X-Rmilter-Test\0' + lead + b'addheader X-Piped yes\0', NOHDRS, NR_HDR),
               (b'N', b'', NOEOH, NR_EOH),
               (b'B', b'body\r\n', NOBODY, NR_BODY)]
        blob = b''
        expect = 0
        for cmd, data, nobit, nrbit in evs:
            if p & nobit:
                continue
            blob += frame(b'D', cmd) + frame(cmd, data)   # a macro packet before each, like Postfix
            if not p & nrbit:
                expect += 1
        blob += frame(b'E')
        s.send(blob)
        replies = [s.reply() for _ in range(expect)]
        mods = []
        while True:
            cmd, data = s.read()
            if cmd == b'p':
                continue
            if cmd[0] in FINAL or cmd == b'y':
                final = (cmd, data)
                break
            mods.append((cmd, data))
        s.send(frame(b'A') + frame(b'Q'))
        ok = all(r[0] == b'c' for r in replies) and has_header(mods, b'X-Piped', b'yes')
        result(ok, f"{expect} replies {replies!r}, mods={mods!r} final={final!r}")

    if SCEN in ('zero-len', 'huge-len', 'unknown-cmd', 'truncated'):
        s = Sess().negotiate()
        if SCEN == 'zero-len':
            s.send(b'\0\0\0\0')
            closed, got = s.closed_within(5)
            result(closed, f"daemon {'closed' if closed else 'kept'} the connection; got {got!r}")
        if SCEN == 'huge-len':
            t0 = time.time()
            s.send(b'\x7f\xff\xff\xff' + b'B' + b'x' * 100)
            closed, got = s.closed_within(5)
            result(closed, f"daemon {'closed' if closed else 'kept'} the connection after "
                   f"{time.time() - t0:.2f} s; got {got!r}")
        if SCEN == 'unknown-cmd':
            s.send(frame(b'Z', b'garbage\0'))
            closed, got = s.closed_within(3)
            result(True, f"daemon {'closed the connection' if closed else 'kept it open'}; "
                   f"got {got!r}")
        if SCEN == 'truncated':
            s.send(struct.pack('>I', 100) + b'L' + b'123456789')
            time.sleep(0.2)
            s.s.close()
            result(True, "sent 14 of 104 bytes, then closed")

    if SCEN == 'before-optneg':
        s = Sess()
        s.send(frame(b'M', b'<s@test.example>\0'))
        closed, got = s.closed_within(3)
        result(closed or bool(got), f"daemon {'closed' if closed else 'kept'} the connection; "
               f"got {got!r}")

    if SCEN == 'slowloris':
        secs = int(ARG or 8)
        s = Sess().negotiate()
        pkt = frame(b'C', b'client.test.example\x004' + struct.pack('>H', 4242) + b'192.0.2.1\0')
        t0 = time.time()
        for i in range(min(secs, len(pkt) - 1)):
            try:
                s.send(pkt[i:i + 1])
            except OSError:
                result(True, f"daemon dropped the slow connection after {time.time() - t0:.1f} s"
                       f" ({i} bytes sent)")
            closed, _ = s.closed_within(1.0)
            if closed:
                result(True, f"daemon dropped the slow connection after {time.time() - t0:.1f} s"
                       f" ({i + 1} bytes sent)")
        result(True, f"connection still open after {time.time() - t0:.1f} s of dripping")

    print(f"unknown scenario {SCEN}")
    sys.exit(2)


try:
    main()
except SystemExit:
    raise
except Exception as e:  # noqa: BLE001 -- every failure is a test failure with its reason
    result(False, f"{type(e).__name__}: {e}")
