#!/usr/bin/python3
# waitport.py HOST PORT [TIMEOUT] -- wait until a TCP port accepts connections.
# Exit 0 when it does, 1 after TIMEOUT seconds (default 30).  Prints the wait.
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
t0 = time.time()
while time.time() - t0 < timeout:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        print(f"{host}:{port} up after {1000 * (time.time() - t0):.0f} ms")
        sys.exit(0)
    except OSError:
        time.sleep(0.02)
print(f"{host}:{port} not up after {timeout:.0f} s")
sys.exit(1)
