#!/usr/bin/python3
# sockets.py -- rmilter's listening sockets, one scenario per call:
#   sockets.py probe SPEC            OPTNEG over SPEC (unix:/path, inet:PORT@HOST,
#                                    inet6:PORT@[ADDR]) must get an 'O' reply
#   sockets.py activate PORT RMILTER CONF LOG
#                                    systemd-style socket activation: listen on
#                                    127.0.0.1:PORT, hand it to rmilter as fd 3 with
#                                    LISTEN_FDS=1/LISTEN_PID, probe it, SIGTERM, expect
#                                    exit 0.
# Prints "result: ok|FAIL: text"; exit 0 on success.
import os, signal, socket, struct, sys, time


def result(ok, text):
    print(f"result: {'ok' if ok else 'FAIL'}: {text}", flush=True)
    sys.exit(0 if ok else 1)


def connect(spec):
    if spec.startswith('unix:'):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(spec[5:])
        return s
    kind, rest = spec.split(':', 1)
    port, host = rest.split('@', 1)
    host = host.strip('[]')
    fam = socket.AF_INET6 if kind == 'inet6' else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((host, int(port)))
    return s


def optneg(spec, tries=50):
    last = None
    for _ in range(tries):
        try:
            s = connect(spec)
            break
        except OSError as e:
            last = e
            time.sleep(0.1)
    else:
        return f"cannot connect to {spec}: {last}"
    s.sendall(struct.pack('>IcIII', 13, b'O', 6, 0x1ff, 0x1fffff))
    hdr = b''
    while len(hdr) < 5:
        c = s.recv(5 - len(hdr))
        if not c:
            return "EOF instead of the OPTNEG reply"
        hdr += c
    s.close()
    if hdr[4:5] != b'O':
        return f"reply {hdr[4:5]!r} instead of 'O'"
    return None


def main():
    mode = sys.argv[1]
    if mode == 'probe':
        err = optneg(sys.argv[2])
        result(err is None, err or f"OPTNEG answered on {sys.argv[2]}")
    if mode == 'activate':
        port, binary, conf, log = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(('127.0.0.1', port))
        ls.listen(16)
        pid = os.fork()
        if pid == 0:
            os.dup2(ls.fileno(), 3)
            os.set_inheritable(3, True)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            env = dict(os.environ, LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))
            os.execve(binary, [binary, '-n', '-c', conf], env)
        ls.close()
        err = optneg(f"inet:{port}@127.0.0.1")
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            result(False, "rmilter did not exit within 5 s of SIGTERM")
        if err:
            result(False, err)
        code = os.waitstatus_to_exitcode(status)
        result(code == 0, f"activated on fd 3, OPTNEG answered, exit {code}")
    result(False, f"unknown mode {mode}")


main()
