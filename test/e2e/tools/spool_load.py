#!/usr/bin/python3
# spool_load.py PORT N -- N messages straight to rmilter (no Postfix), each
# asking the test policy for "spoolinfo"; every 5th is aborted mid-body and
# every 7th has its connection closed mid-body.  Completed messages must get
# "X-Rmilter-Spool: ... file=yes" (the e2e config spills every spool to a
# file).  Prints "result: ok|FAIL: ..." and exits 0 on success.
import socket, struct, sys

PORT, N = int(sys.argv[1]), int(sys.argv[2])
NR = {b'C': 0x1000, b'H': 0x2000, b'M': 0x4000, b'R': 0x8000, b'T': 0x10000,
      b'L': 0x80, b'N': 0x40000, b'B': 0x80000}
NO = {b'C': 0x1, b'H': 0x2, b'M': 0x4, b'R': 0x8, b'B': 0x10, b'L': 0x20,
      b'N': 0x40, b'T': 0x200}


def fr(c, d=b''):
    return struct.pack('>I', len(d) + 1) + c + d


class Conn:
    def __init__(self):
        self.s = socket.create_connection(('127.0.0.1', PORT), timeout=10)
        self.buf = b''
        self.s.sendall(fr(b'O', struct.pack('>III', 6, 0x1ff, 0x1fffff)))
        c, d = self.read()
        assert c == b'O', c
        self.prot = struct.unpack('>I', d[8:12])[0]
        self.event(b'C', b'localhost\x004\x00\x19127.0.0.1\x00')
        self.event(b'H', b'spool.client.test\x00')

    def read(self):
        while True:
            if len(self.buf) >= 4:
                (ln,) = struct.unpack('>I', self.buf[:4])
                if len(self.buf) >= 4 + ln:
                    p = self.buf[4:4 + ln]
                    self.buf = self.buf[4 + ln:]
                    return p[:1], p[1:]
            d = self.s.recv(65536)
            if not d:
                raise EOFError('closed by rmilter')
            self.buf += d

    def event(self, c, d=b''):
        if self.prot & NO.get(c, 0):
            return None
        self.s.sendall(fr(c, d))
        if self.prot & NR.get(c, 0):
            return None
        r, _ = self.read()
        return r

    def close(self):
        self.s.close()


def main():
    conn = Conn()
    done = aborted = closed = spilled = 0
    chunk = (b'y' * 998 + b'\r\n') * 2
    for i in range(N):
        conn.event(b'M', b'<s%d@test.example>\x00' % i)
        conn.event(b'R', b'<r@dest.example>\x00')
        conn.event(b'T')
        conn.event(b'L', b'Subject\x00spool %d\x00' % i)
        conn.event(b'L', b'X-Rmilter-Test\x00spoolinfo\x00')
        conn.event(b'N')
        conn.event(b'B', chunk)
        if i % 7 == 3:
            conn.close()            # MTA gone mid-body
            closed += 1
            conn = Conn()
            continue
        if i % 5 == 1:
            conn.s.sendall(fr(b'A'))  # RSET mid-body
            aborted += 1
            continue
        conn.event(b'B', chunk)
        conn.s.sendall(fr(b'E'))
        while True:
            c, d = conn.read()
            if c == b'h' and d.startswith(b'X-Rmilter-Spool\x00') and b'file=yes' in d:
                spilled += 1
            if c in (b'c', b'a', b'r', b't', b'd', b'y'):
                break
        conn.s.sendall(fr(b'A'))
        done += 1
    conn.s.sendall(fr(b'A') + fr(b'Q'))
    conn.close()
    ok = spilled == done and done > 0
    print(f"result: {'ok' if ok else 'FAIL'}: {N} messages: {done} completed "
          f"({spilled} spooled to a file), {aborted} aborted mid-body, "
          f"{closed} connections closed mid-body", flush=True)
    sys.exit(0 if ok else 1)


main()
