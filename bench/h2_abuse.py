#!/usr/bin/python3
"""HTTP/2 abuse bench: the attacks of tests/integration/h2attack.py against
several servers in one run, one fresh server per attack. Prints per attack
and server: RSS growth (peak VmRSS over a warm-up baseline), server CPU
seconds, what the abusive connection saw, and the legitimate client's
(GetProduct every 50 ms) p99 and failures. Not a test: nothing is asserted.

  bench/h2_abuse.py --server ours='build-test/bin/product-server --insecure --store memory --listen 127.0.0.1:{port}' \\
                    --server go='/path/go-seed/bin/product-server' \\
                    --server cpp='/path/cpp-core/bin/product-server'

Each command is run with JWT_SECRET, LISTEN_ADDR=127.0.0.1:{port} and
PORT={port} in its environment ({port} in the command is replaced too), and
is ready once the port accepts connections. --attacks a,b picks attacks;
--seconds (default 8) bounds each."""

import argparse
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import h2attack as h2  # noqa: E402
from harness import make_token  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd):
    port = free_port()
    env = dict(os.environ, JWT_SECRET=secrets.token_hex(24),
               LISTEN_ADDR="127.0.0.1:%d" % port, PORT=str(port))
    proc = subprocess.Popen(shlex.split(cmd.replace("{port}", str(port))), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port, env["JWT_SECRET"]
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("server exited: %s" % cmd)
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server not ready: %s" % cmd)


def one(cmd, name, seconds):
    proc, port, secret = start(cmd)
    addr = "127.0.0.1:%d" % port
    try:
        pid = proc.pid
        product = h2.create_product(addr, make_token(secret))
        legit = h2.Legit(addr, product, pid)
        for _ in range(50):
            legit.call()
        legit.latencies, legit.failures = [], []
        base, cpu0 = h2.rss_kb(pid), h2.cpu_seconds(pid)
        legit.start()
        kw = {"count": 3000} if name == "idle_connections" else {}
        conn, out = h2.ATTACKS[name](port, seconds, **kw)
        while time.monotonic() < out.started + seconds:
            time.sleep(0.05)
        legit.finish()
        peak = max(legit.peak_rss, h2.rss_kb(pid))
        conn.close()
        after = None
        if name == "rapid_reset":
            time.sleep(2)
            after = (h2.rss_kb(pid) - base) / 1024
        alive = h2.alive(pid) and proc.poll() is None
        ok_after = sum(1 for _ in range(10) if alive and legit.call())
        row = {"rss": (peak - base) / 1024, "cpu": h2.cpu_seconds(pid) - cpu0 if alive else 0,
               "saw": out.summary(), "p99": legit.p99_ms(), "fail": len(legit.failures),
               "after": ok_after, "alive": alive, "rss_after": after}
        legit.close()
        return row
    finally:
        proc.kill()
        proc.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", action="append", required=True, metavar="NAME=COMMAND")
    ap.add_argument("--attacks", default=",".join(h2.ATTACKS))
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    h2.raise_nofile(8192)
    servers = [s.split("=", 1) for s in a.server]
    print("| attack | server | RSS growth MB | server CPU s | abusive connection saw | "
          "legit p99 ms | legit failed | after: ok of 10 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.attacks.split(","):
        for sname, cmd in servers:
            r = one(cmd, name, a.seconds)
            rss = "%+.1f" % r["rss"]
            if r["rss_after"] is not None:
                rss += " (%+.1f 2 s after)" % r["rss_after"]
            print("| %s | %s | %s | %.2f | %s | %.1f | %d | %s |" % (
                name, sname, rss, r["cpu"], r["saw"], r["p99"], r["fail"],
                r["after"] if r["alive"] else "DEAD"), flush=True)


if __name__ == "__main__":
    main()
