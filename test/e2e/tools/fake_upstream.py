#!/usr/bin/python3
"""fake_upstream.py -- a fault-injecting fake scanner (rspamd HTTP, spamd SPAMC, clamd).

usage: fake_upstream.py --listen 127.0.0.1:PORT|/path.sock --mode MODE
                        [--proto rspamd|spamd|clamd] [--pidfile F] [--control F]
                        [--interval 0.5] [--delay S] [--action ACTION] [--subject S]
                        [--virus NAME] [--huge-bytes N]

Modes (what a connection gets):
  refuse   the address is bound but never listened on: connect() gets ECONNREFUSED
           (the port stays reserved; no connection is ever accepted or counted)
  close    accepted, then closed at once without reading (FIN)
  reset    accepted, then reset at once (RST, SO_LINGER 0)
  hang     accepted, the request is read, nothing is ever answered
  drip     a valid clean reply, one byte every --interval seconds (default 0.5)
  garbage  random non-protocol bytes (seeded by the connection number), then close
  cut      the first half of a valid clean reply, then close
  huge     a reply that announces/starts a valid answer and streams --huge-bytes
           (default 64 MiB) of filler that never completes it, then closes
           (0 = never-ending)
  ok       a valid clean reply: rspamd "no action" JSON (or --action), spamd
           "Spam: False ; 0.0 / 5.0", clamd "stream: OK"
  spam     a valid positive reply: rspamd "reject" with smtp_message, spamd
           "Spam: True ; 1000.0 / 5.0", clamd "stream: NAME FOUND" (--virus)

The mode can be changed while running: write the new mode into the --control file;
it is read at every accepted connection and before every reply.  ("refuse" cannot
be switched to or from at run time: it decides whether the socket listens.)

Output: one line per accepted connection on stdout,
  "conn N from PEER mode=MODE proto=PROTO"
(count them with grep -c '^conn '), plus "# ..." detail lines (request seen, bytes
sent, how it ended).  --pidfile is written once the socket is bound (and listening),
so it can be used as the readiness signal.  SIGTERM/SIGINT: exit 0, the unix socket
file is removed.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import struct
import sys
import time

MODES = ("refuse", "close", "reset", "hang", "drip", "garbage", "cut", "huge", "ok", "spam")

args = None
conn_count = 0


def log(line):
    print(line, flush=True)


def current_mode():
    if args.control:
        try:
            with open(args.control) as f:
                m = f.read().strip()
            if m in MODES:
                return m
        except OSError:
            pass
    return args.mode


class Done(Exception):
    """the client went away"""


def eof_or(e, what):
    """a Done for a read that failed: a clean EOF between requests, or a broken request"""
    if isinstance(e, asyncio.IncompleteReadError) and not e.partial:
        return Done("client closed the connection")
    return Done(f"{what} ({type(e).__name__})")


# ---- request readers: return a short description of the request, or raise Done ----

async def read_http(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as e:
        raise eof_or(e, "no complete HTTP request head")
    lines = head.decode("latin-1").split("\r\n")
    reqline = lines[0]
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs.setdefault(k.strip().lower(), v.strip())
    n = 0
    try:
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            await reader.readexactly(n)
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                n += size
                if size == 0:
                    break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as e:
        raise Done(f"incomplete HTTP body ({type(e).__name__})")
    parts = reqline.split()
    return {"verb": parts[0] if parts else "?", "path": parts[1] if len(parts) > 1 else "/",
            "close": hdrs.get("connection", "").lower() == "close"
            or (len(parts) > 2 and parts[2] == "HTTP/1.0" and hdrs.get("connection", "").lower() != "keep-alive"),
            "desc": f"{reqline} body={n}", "headers": hdrs}


async def read_spamc(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as e:
        raise eof_or(e, "no complete SPAMC request head")
    lines = head.decode("latin-1").split("\r\n")
    verb = lines[0].split()[0] if lines[0].split() else "?"
    n = None
    for ln in lines[1:]:
        if ln.lower().startswith("content-length:"):
            n = int(ln.split(":", 1)[1])
    body = b""
    try:
        if n is not None:
            body = await reader.readexactly(n)
        elif verb not in ("PING", "SKIP"):
            body = await reader.read()            # until the client's half-close
    except (asyncio.IncompleteReadError, ConnectionError) as e:
        raise Done(f"incomplete SPAMC body ({type(e).__name__})")
    return {"verb": verb, "desc": f"{lines[0]} body={len(body)}", "body": body}


async def read_clamd(reader):
    try:
        first = await reader.readexactly(1)
        if first == b"z":
            cmd = (await reader.readuntil(b"\0"))[:-1]
            term = b"\0"
        elif first == b"n":
            cmd = (await reader.readuntil(b"\n"))[:-1]
            term = b"\n"
        else:
            cmd = first + (await reader.readuntil(b"\n"))[:-1]
            term = b"\n"
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as e:
        raise eof_or(e, "no complete clamd command")
    cmd = cmd.decode("latin-1")
    n = 0
    if cmd == "INSTREAM":
        try:
            while True:
                (ln,) = struct.unpack(">I", await reader.readexactly(4))
                if ln == 0:
                    break
                await reader.readexactly(ln)
                n += ln
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            raise Done(f"incomplete INSTREAM after {n} bytes ({type(e).__name__})")
    return {"verb": cmd, "term": term, "desc": f"{cmd} stream={n}"}


# ---- valid replies -----------------------------------------------------------------

def rspamd_reply(req, spam):
    if req["verb"] == "GET" and req["path"].startswith("/ping"):
        body = b"pong\r\n"
        ctype = "text/plain"
    else:
        if spam:
            r = {"is_skipped": False, "score": 20.0, "required_score": 15.0, "action": "reject",
                 "symbols": {"FAKE_SPAM": {"name": "FAKE_SPAM", "score": 20.0, "metric_score": 20.0}},
                 "messages": {"smtp_message": "Fake upstream: spam rejected"}}
        else:
            action = args.action or "no action"
            score = {"no action": 0.0, "greylist": 4.5, "add header": 7.0,
                     "rewrite subject": 9.0, "soft reject": 12.0, "reject": 20.0}.get(action, 0.0)
            r = {"is_skipped": False, "score": score, "required_score": 15.0, "action": action,
                 "symbols": {"FAKE_OK": {"name": "FAKE_OK", "score": score, "metric_score": score}},
                 "messages": {}}
            if action == "rewrite subject":
                r["subject"] = args.subject or "[FAKE-SPAM] rewritten subject"
        r["message-id"] = "fake@fake_upstream"
        r["time_real"] = 0.001
        body = json.dumps(r).encode()
        ctype = "application/json"
    head = (f"HTTP/1.1 200 OK\r\nServer: fake_upstream\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: {'close' if req['close'] else 'keep-alive'}\r\n\r\n")
    return head.encode() + body


def spamd_reply(req, spam):
    verb = req["verb"]
    if verb == "PING":
        return b"SPAMD/1.5 0 PONG\r\n"
    status = "Spam: True ; 1000.0 / 5.0" if spam else "Spam: False ; 0.0 / 5.0"
    sym = "FAKE_SPAM" if spam else "FAKE_OK"
    if verb == "CHECK":
        body = b""
    elif verb == "SYMBOLS":
        body = sym.encode()
    elif verb in ("REPORT", "REPORT_IFSPAM"):
        body = (f"fake_upstream report\n\n pts rule name\n---- ---------\n"
                f"{'1000' if spam else ' 0.0'} {sym}\n").encode()
    else:   # HEADERS / PROCESS: the message with an X-Spam-Status header on top
        flag = "Yes" if spam else "No"
        score = "1000.0" if spam else "0.0"
        body = (f"X-Spam-Status: {flag}, score={score} required=5.0 tests={sym}\r\n").encode() + req["body"]
        if verb == "HEADERS":
            body = body.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    head = "SPAMD/1.1 0 EX_OK\r\n"
    if body:
        head += f"Content-length: {len(body)}\r\n"
    head += f"{status}\r\n\r\n"
    return head.encode() + body


def clamd_reply(req, spam):
    verb, term = req["verb"], req["term"]
    if verb == "PING":
        out = "PONG"
    elif verb == "VERSION":
        out = "ClamAV 1.4.6/27000/fake_upstream"
    elif verb == "INSTREAM":
        out = f"stream: {args.virus} FOUND" if spam else "stream: OK"
    else:
        out = "UNKNOWN COMMAND"
    return out.encode() + term


VALID = {"rspamd": rspamd_reply, "spamd": spamd_reply, "clamd": clamd_reply}
READ = {"rspamd": read_http, "spamd": read_spamc, "clamd": read_clamd}


def huge_prefix(req):
    if args.proto == "rspamd":
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1073741824\r\n\r\n{\"action\": \"no action\", \"padding\": \"")
    if args.proto == "spamd":
        return b"SPAMD/1.1 0 EX_OK\r\nContent-length: 1073741824\r\nX-Filler: "
    return b"stream: "


# ---- per connection --------------------------------------------------------------------

async def send(writer, data, stats):
    writer.write(data)
    await writer.drain()
    stats["sent"] += len(data)


async def handle(reader, writer):
    global conn_count
    conn_count += 1
    n = conn_count
    mode = current_mode()
    peer = writer.get_extra_info("peername")
    if not peer:
        peer = "unix"
    elif isinstance(peer, tuple):
        peer = f"{peer[0]}:{peer[1]}"
    log(f"conn {n} from {peer} mode={mode} proto={args.proto}")
    stats = {"sent": 0, "requests": 0}
    t0 = time.time()
    outcome = "?"
    try:
        if mode == "close":
            outcome = "closed at once"
            return
        if mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            outcome = "reset at once"
            return
        if mode == "hang":
            total = 0
            while True:
                d = await reader.read(65536)
                if not d:
                    break
                total += len(d)
            outcome = f"hung; client closed after sending {total} bytes"
            return
        session = False
        while True:
            req = await READ[args.proto](reader)
            stats["requests"] += 1
            log(f"# conn {n}: request {req['desc']}")
            mode = current_mode()
            if args.proto == "clamd" and req["verb"] == "IDSESSION":
                session = True
                continue
            if args.proto == "clamd" and req["verb"] == "END":
                outcome = "clamd session END"
                return
            if args.delay and mode in ("ok", "spam", "drip", "cut"):
                await asyncio.sleep(args.delay)
            valid = VALID[args.proto](req, mode == "spam")
            if session:
                valid = f"{stats['requests'] - 1}: ".encode() + valid
            if mode in ("ok", "spam"):
                await send(writer, valid, stats)
            elif mode == "drip":
                for i in range(len(valid)):
                    await send(writer, valid[i:i + 1], stats)
                    if i + 1 < len(valid):
                        await asyncio.sleep(args.interval)
            elif mode == "hang":
                while await reader.read(65536):
                    pass
                outcome = "hung (switched); client closed"
                return
            elif mode == "garbage":
                rnd = random.Random(n)
                junk = (b"\x00\x16\x03\x01 NOT-A-SCANNER-REPLY "
                        + bytes(rnd.randrange(256) for _ in range(512)) + b"\r\n\r\n\0")
                await send(writer, junk, stats)
                outcome = "garbage sent, closed"
                return
            elif mode == "cut":
                await send(writer, valid[:len(valid) // 2], stats)
                await asyncio.sleep(0.05)
                outcome = f"cut after {len(valid) // 2} of {len(valid)} bytes, closed"
                return
            elif mode == "huge":
                await send(writer, huge_prefix(req), stats)
                chunk = b"A" * 65536
                limit = args.huge_bytes
                while limit == 0 or stats["sent"] < limit:
                    await send(writer, chunk, stats)
                outcome = "huge reply sent, closed"
                return
            elif mode in ("close", "reset"):     # switched while the connection was open
                outcome = "closed (switched)"
                return
            if args.proto == "spamd" or (args.proto == "clamd" and not session) or \
                    (args.proto == "rspamd" and req["close"]):
                outcome = "answered, closed"
                return
    except Done as e:
        outcome = f"client done: {e}"
    except (ConnectionError, BrokenPipeError) as e:
        outcome = f"client went away: {type(e).__name__}"
    finally:
        try:
            writer.close()
        except Exception:
            pass
        log(f"# conn {n}: {outcome}; {stats['requests']} request(s), sent {stats['sent']} bytes, "
            f"{time.time() - t0:.2f}s")


def make_socket(listen):
    if listen.startswith("/"):
        try:
            os.unlink(listen)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(listen)
        os.chmod(listen, 0o777)
    else:
        host, port = listen.rsplit(":", 1)
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    return s


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    sock = make_socket(args.listen)
    server = None
    if args.mode == "refuse":
        log(f"# bound {args.listen}, not listening (mode=refuse) proto={args.proto}")
    else:
        sock.listen(128)
        if args.listen.startswith("/"):
            server = await asyncio.start_unix_server(handle, sock=sock, limit=1 << 20)
        else:
            server = await asyncio.start_server(handle, sock=sock, limit=1 << 20)
        log(f"# listening on {args.listen} mode={args.mode} proto={args.proto}")
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(args.pidfile + ".tmp", args.pidfile)
    await stop
    if server:
        server.close()
    sock.close()
    for f in ([args.listen] if args.listen.startswith("/") else []) + ([args.pidfile] if args.pidfile else []):
        try:
            os.unlink(f)
        except OSError:
            pass
    log(f"# exit after {conn_count} connection(s)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="127.0.0.1:PORT, [::1]:PORT or /path.sock")
    ap.add_argument("--mode", required=True, choices=MODES)
    ap.add_argument("--proto", default="rspamd", choices=("rspamd", "spamd", "clamd"))
    ap.add_argument("--pidfile")
    ap.add_argument("--control", help="file holding the current mode (re-read per connection/request)")
    ap.add_argument("--interval", type=float, default=0.5, help="drip: seconds per byte")
    ap.add_argument("--delay", type=float, default=0.0, help="ok/spam/drip/cut: wait before answering")
    ap.add_argument("--action", help="rspamd ok mode: the action to report (e.g. 'add header')")
    ap.add_argument("--subject", help="rspamd 'rewrite subject': the new subject")
    ap.add_argument("--virus", default="Fake.Test.Virus.UNOFFICIAL", help="clamd spam mode: the name")
    ap.add_argument("--huge-bytes", type=int, default=64 << 20, help="huge: bytes to send (0 = endless)")
    args = ap.parse_args()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.exit(0)
