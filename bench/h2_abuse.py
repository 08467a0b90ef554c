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
--seconds (default 8) bounds each. --runs N repeats the whole set N times in
a row (every row of every run is printed as it comes) and ends with a compact
table: per attack and server, each run's legitimate p99 and RSS growth (and
KB of RSS per opened connection for the multi-connection attacks), and in how
many runs the margins held (p99 <= 20 ms, 50 ms for idle_connections; RSS
growth <= 16 MB; <= 12 KB per idle connection)."""

import argparse
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time

# The margins the compact table checks (issue "Margins, not luck").
P99_MS, P99_IDLE_MS, RSS_MB, IDLE_KB = 20.0, 50.0, 16.0, 12.0
MULTI = ("idle_connections", "slowloris")

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
               "after": ok_after, "alive": alive, "rss_after": after,
               "conns": out.connections}
        legit.close()
        return row
    finally:
        proc.kill()
        proc.wait(timeout=10)


def held(name, r):
    """True when one row is within the margins."""
    p99_max = P99_IDLE_MS if name == "idle_connections" else P99_MS
    ok = r["alive"] and r["fail"] == 0 and r["p99"] <= p99_max and r["rss"] <= RSS_MB
    if name == "idle_connections" and r["conns"]:
        ok = ok and r["rss"] * 1024 / r["conns"] <= IDLE_KB
    return ok


def compact(names, servers, results, runs):
    """One line per attack and server: every run's p99 and RSS growth."""
    print()
    print("| attack | server | legit p99 ms (run 1..%d) | RSS growth MB | KB per connection | "
          "runs within margins |" % runs)
    print("|---|---|---|---|---|---|")
    for name in names:
        for sname, _ in servers:
            rows = results[(name, sname)]
            p99 = " / ".join("%.1f" % r["p99"] for r in rows)
            rss = " / ".join("%+.1f" % r["rss"] for r in rows)
            kb = " / ".join("%.1f" % (r["rss"] * 1024 / r["conns"]) for r in rows) \
                if name in MULTI and all(r["conns"] for r in rows) else "-"
            print("| %s | %s | %s | %s | %s | %d of %d |" % (
                name, sname, p99, rss, kb, sum(held(name, r) for r in rows), len(rows)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", action="append", required=True, metavar="NAME=COMMAND")
    ap.add_argument("--attacks", default=",".join(h2.ATTACKS))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole set N times in a row")
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    names = a.attacks.split(",")
    unknown = [n for n in names if n not in h2.ATTACKS]
    if unknown:
        ap.error("unknown attack(s): %s (known: %s)" % (",".join(unknown), ",".join(h2.ATTACKS)))
    h2.raise_nofile(8192)
    servers = [s.split("=", 1) for s in a.server]
    results = {}
    print("| run | attack | server | RSS growth MB | server CPU s | abusive connection saw | "
          "legit p99 ms | legit failed | after: ok of 10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in range(1, a.runs + 1):
        for name in names:
            for sname, cmd in servers:
                r = one(cmd, name, a.seconds)
                results.setdefault((name, sname), []).append(r)
                rss = "%+.1f" % r["rss"]
                if r["rss_after"] is not None:
                    rss += " (%+.1f 2 s after)" % r["rss_after"]
                print("| %d | %s | %s | %s | %.2f | %s | %.1f | %d | %s |" % (
                    run, name, sname, rss, r["cpu"], r["saw"], r["p99"], r["fail"],
                    r["after"] if r["alive"] else "DEAD"), flush=True)
    compact(names, servers, results, a.runs)


if __name__ == "__main__":
    main()
