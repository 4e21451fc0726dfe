#!/usr/bin/python3
"""bs_client.py -- a small beanstalkd client for the beanstalk_* e2e cases.

usage: bs_client.py PORT count TUBE
           prints the ready jobs of TUBE (0 when the tube does not exist)
       bs_client.py PORT wait TUBE N TIMEOUT
           waits until TUBE has at least N ready jobs (TIMEOUT seconds at most);
           prints the count; exit 1 on timeout
       bs_client.py PORT drain TUBE OUTDIR
           reserves every ready job of TUBE, writes each one's data to
           OUTDIR/job.<n> (n = 1, 2, ... in reserve order, i.e. priority then
           id), deletes it; prints the number of jobs and their ids/sizes
       bs_client.py PORT stat JOB-ID
           prints the job's pri and ttr ("pri 1025 ttr 60"); exit 1 if missing
       bs_client.py check JOB [--sink SINKFILE] [--data DATAFILE] [--headers]
           JOB compared byte for byte with what the milter got:
             --sink: the message as Postfix delivered it to smtp-sink (the sink's
               own X-* lines and Received: header and Postfix's Received: header,
               which milters never see, dropped; LF -> CRLF): equal
             --data: the message as the client sent it (CRLF, after the DATA
               dot-unstuffing): equal to the file plus the CRLF swaks sends
               before the final "."
             --headers: only the header part (through the first empty line) is
               expected
           prints "match N bytes" or where they differ; exit 1 on a mismatch
Only 127.0.0.1 is used.
"""
import socket
import sys
import time


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("beanstalkd closed the connection")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("latin-1")

    def data(self, n):
        while len(self.buf) < n + 2:
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("beanstalkd closed the connection")
            self.buf += d
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def cmd(self, c):
        self.s.sendall(c.encode() + b"\r\n")
        return self.line()

    def yaml(self, c):
        r = self.cmd(c)
        if not r.startswith("OK "):
            return None
        body = self.data(int(r.split()[1])).decode("latin-1")
        out = {}
        for ln in body.splitlines():
            if ": " in ln:
                k, v = ln.split(": ", 1)
                out[k.strip()] = v.strip()
        return out


def ready(c, tube):
    st = c.yaml("stats-tube " + tube)
    return int(st.get("current-jobs-ready", 0)) if st else 0


def main():
    a = sys.argv[1:]
    if a and a[0] == "check":
        return check(a[1:])
    port, op = a[0], a[1]
    c = Conn(port)
    if op == "count":
        print(ready(c, a[2]))
        return 0
    if op == "wait":
        tube, n, to = a[2], int(a[3]), float(a[4])
        t0 = time.time()
        while True:
            k = ready(c, tube)
            if k >= n or time.time() - t0 > to:
                print(k)
                return 0 if k >= n else 1
            time.sleep(0.05)
    if op == "drain":
        tube, out = a[2], a[3]
        r = c.cmd("watch " + tube)
        if tube != "default":
            c.cmd("ignore default")
        n = 0
        info = []
        while True:
            r = c.cmd("reserve-with-timeout 0")
            if r == "TIMED_OUT":
                break
            if not r.startswith("RESERVED "):
                print("unexpected reply to reserve: " + r, file=sys.stderr)
                return 1
            _, jid, size = r.split()
            d = c.data(int(size))
            n += 1
            with open("%s/job.%d" % (out, n), "wb") as f:
                f.write(d)
            st = c.yaml("stats-job " + jid) or {}
            info.append("%s:%s:%s:%s" % (jid, size, st.get("pri"), st.get("ttr")))
            if c.cmd("delete " + jid) != "DELETED":
                print("delete %s failed" % jid, file=sys.stderr)
                return 1
        print(n, " ".join(info))
        return 0
    if op == "stat":
        st = c.yaml("stats-job " + a[2])
        if st is None:
            return 1
        print("pri %s ttr %s tube %s" % (st.get("pri"), st.get("ttr"), st.get("tube")))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


def check(a):
    job = open(a[0], "rb").read()
    sink = data = None
    headers = "--headers" in a
    if "--sink" in a:
        sink = open(a[a.index("--sink") + 1], "rb").read()
    if "--data" in a:
        data = open(a[a.index("--data") + 1], "rb").read()
    if sink is not None:
        lines = sink.split(b"\n")
        # smtp-sink: X-Client-Addr ... lines, its own Received: header (with
        # continuation lines), then the message as delivered
        # continuation lines), Postfix's own Received: header (Postfix adds it
        # after the milters: they never see it), then the message
        k = 0
        while k < len(lines) and lines[k].startswith(b"X-"):
            k += 1
        for _ in range(2):
            if k >= len(lines) or not lines[k].startswith(b"Received: "):
                print("no Received: header at sink line %d: %r" % (k + 1, lines[k:k + 1]))
                return 1
            k += 1
            while k < len(lines) and lines[k][:1] in (b" ", b"\t"):
                k += 1
        want = b"\r\n".join(lines[k:])
        if want.endswith(b"\r\n\r\n"):
            want = want[:-2]    # smtp-sink ends its file with one more LF
    else:
        want = data + b"\r\n"   # swaks sends CRLF . CRLF after the file
    if headers:
        e = want.find(b"\r\n\r\n")
        want = want[:e + 4] if e >= 0 else want
    if job == want:
        print("match %d bytes" % len(job))
        return 0
    i = 0
    while i < min(len(job), len(want)) and job[i] == want[i]:
        i += 1
    print("differ at byte %d (job %d bytes, expected %d): job %r / expected %r" %
          (i, len(job), len(want), job[max(0, i - 20):i + 40], want[max(0, i - 20):i + 40]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
