#!/usr/bin/python3
"""Instructions per call of one server under callgrind, plaintext or TLS.

Wall-clock figures on a shared machine move with the load; instruction
counts do not. This starts a server (ours by default, or any command, like
the h2load driver) under valgrind --tool=callgrind with instrumentation off,
seeds products, and for each scenario: one real call checks the status, a
warm-up of --warmup calls, then instrumentation on for --calls calls driven by
h2load (-c/-m as given; one call at a time by default, so that the count
does not depend on how calls happen to share reads and writes), a dump,
and instrumentation off. It prints
instructions per call (the whole process: every thread) and keeps each
dump (callgrind.out.<scenario>) in --out for callgrind_annotate.

    bench/callgrind_calls.py --tls --scenarios ac --out /tmp/cg-tls
    bench/callgrind_calls.py --scenarios ac --out /tmp/cg-plain
    callgrind_annotate --inclusive=yes /tmp/cg-tls/callgrind.out.c | head -60

--handshake adds n (a new connection per call, full handshake) and, with
--tls, r (resumed), driven by bench/conn_client.py: instructions per
connection. Not a test: nothing here asserts a count.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2load_bench as hb  # noqa: E402  (Peer, certificates, seeding, h2load)
import conn_client  # noqa: E402

VALGRIND = "valgrind --tool=callgrind --instr-atstart=no --dump-instr=no " \
           "--callgrind-out-file={tmpdir}/cg.%p "


def ctl(pid, *what):
    subprocess.run(["callgrind_control"] + list(what) + [str(pid)], check=True,
                   capture_output=True, timeout=300)


def totals(tmpdir, pid):
    """Ir of the last dump of pid; returns (path, count)."""
    dumps = sorted(glob.glob(os.path.join(tmpdir, "cg.%d.*" % pid)), key=os.path.getmtime)
    if not dumps:
        raise SystemExit("callgrind: no dump written")
    # "totals:" (the sum of the costs listed); callgrind 3.19's "summary:"
    # can wrap below zero when threads were inside functions at the toggle.
    with open(dumps[-1]) as f:
        for line in f:
            m = re.match(r"totals: (\d+)", line)
            if m:
                return dumps[-1], int(m.group(1))
    raise SystemExit("callgrind: no totals in %s" % dumps[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default=hb.OURS)
    ap.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                    help="added to the server's environment (repeatable)")
    ap.add_argument("--tls", action="store_true", help="serve TLS with a generated certificate")
    ap.add_argument("--tls-key", choices=("ecdsa", "rsa2048"), default="ecdsa")
    ap.add_argument("--scenarios", default="ac")
    ap.add_argument("--handshake", action="store_true")
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--warmup", type=int, default=500)
    # One call at a time by default: how many calls share a read or a write
    # depends on timing under valgrind, one at a time does not.
    ap.add_argument("-c", type=int, default=1)
    ap.add_argument("-m", type=int, default=1)
    ap.add_argument("--products", type=int, default=50)
    ap.add_argument("--out", help="keep the dumps here")
    ap.add_argument("--h2load-args", default="", help="extra h2load arguments")
    args = ap.parse_args()
    letters = [s for s in args.scenarios if s in "acdeb"]
    if args.handshake:
        letters += ["n"] + (["r"] if args.tls else [])
    work = tempfile.mkdtemp(prefix="product-cg-")
    tls = hb.make_cert(work, args.tls_key) if args.tls else None
    env = dict(e.split("=", 1) for e in args.env)
    peer = hb.Peer("server", VALGRIND + args.server, None, env=env, tls=tls)
    pb, _ = hb.harness.stubs()
    user, forged, _ = peer.start(timeout=180)
    try:
        pid = peer.proc.pid
        reqs = hb.requests_for(pb, hb.seed(peer.addr, peer.creds, user, args.products))
        for letter in letters:
            method, tok, want = hb.SCENARIOS[letter]
            token = {"none": None, "user": user, "forged": forged}[tok]
            body = hb.grpc_frame(reqs[method])
            body_path = os.path.join(work, letter + ".bin")
            with open(body_path, "wb") as f:
                f.write(body)
            hb.check_status(peer.addr, peer.creds, method, body, token, want)
            if letter in hb.HANDSHAKE:
                run = lambda n: conn_client.run_count(  # noqa: E731
                    peer.addr, tls[0] if tls else None, letter == "r",
                    hb.SERVICE + method, body, token, n)
            else:
                def run(n):
                    cmd = ["h2load", "-n", str(n), "-c", str(args.c), "-m", str(args.m),
                           "-t", "1", "-d", body_path, "-H", "content-type: application/grpc",
                           "-H", "te: trailers"] + args.h2load_args.split()
                    if token:
                        cmd += ["-H", "authorization: Bearer " + token]
                    cmd.append("%s://%s%s%s" % ("https" if tls else "http", peer.addr,
                                                hb.SERVICE, method))
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
                    done = int(re.search(r"(\d+) succeeded", out.stdout).group(1))
                    if done != n:
                        raise SystemExit("h2load: %d of %d succeeded" % (done, n))
                    return n, 0, 0
            run(args.warmup)
            ctl(pid, "-i", "on")
            done, reused, failed = run(args.calls)
            ctl(pid, "-d")
            ctl(pid, "-i", "off")
            path, ir = totals(peer.tmp, pid)
            if args.out:
                os.makedirs(args.out, exist_ok=True)
                shutil.copy(path, os.path.join(args.out, "callgrind.out." + letter))
            print("%s %-14s %s: %8.0f instructions per %s (%d done%s%s)" % (
                letter, method, "TLS" if tls else "plaintext", ir / done,
                "connection" if letter in hb.HANDSHAKE else "call", done,
                ", %d resumed" % reused if letter == "r" else "",
                ", %d FAILED" % failed if failed else ""), flush=True)
    finally:
        peer.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
