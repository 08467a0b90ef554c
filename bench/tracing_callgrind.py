#!/usr/bin/python3
"""Instructions per call of product-server, tracing off, on or always_off, counted by callgrind.

Wall-clock CPU per call moves with whatever else the machine runs;
instruction counts do not. This starts the server under
`valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes`,
seeds 20 products, and for each scenario: 200 warm-up calls with h2load
(-c 4 -m 8), 6 s for the exporter's interval to post what they queued,
then instrumentation on, N calls, 6 s again (so the exporter's share of the
measured calls is counted), instrumentation off and a dump. Prints the
server's instructions per call, all threads together, then the five
largest threads' (--keep the dumps and callgrind_annotate them to see
which is which: the exporter's holds trace/exporter.c's tick).

  bench/tracing_callgrind.py --mode off|on|always_off --scenarios acdeb -n 2000

--mode on starts the OTLP receiver of the tests (node/otlp_receiver.js,
quiet) and points the server at it with the default sampler: every call
is sampled. Scenario letters as in h2load_bench.py. Not a test: nothing
here asserts a count.
"""
import argparse
import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import h2load_bench as hb  # noqa: E402

SCENARIOS = {"a": ("GetProduct", "none"), "b": ("CreateProduct", "user"),
             "c": ("ListProducts", "none"), "d": ("DeleteProduct", "user"),
             "e": ("CreateProduct", "forged")}


def totals(paths):
    """Instructions per dump file (its 'totals:' line)."""
    out = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.startswith("totals:"):
                    out[path] = int(line.split()[1])
                    break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/bin/product-server"))
    ap.add_argument("--mode", default="off", choices=["off", "on", "always_off"])
    ap.add_argument("--scenarios", default="a")
    ap.add_argument("-n", type=int, default=2000, help="measured calls per scenario")
    ap.add_argument("--keep", metavar="DIR", help="copy the callgrind dumps there")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="product-callgrind-")
    receiver = None
    env = dict(os.environ, INSECURE="1", AUTH_FAILURE_LIMIT="off", GRPC_DNS_RESOLVER="native")
    for var in ("JWT_SECRET_FILE", "JWT_KEYS_FILE", "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_SAMPLER"):
        env.pop(var, None)
    key = secrets.token_urlsafe(36)
    env["JWT_SECRET"] = key
    if args.mode != "off":
        receiver, url = hb.start_receiver(None)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = url
        if args.mode == "always_off":
            env["OTEL_TRACES_SAMPLER"] = "always_off"
    addr = "127.0.0.1:%d" % hb.free_port()
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
            "--callgrind-out-file=%s/cg.%%p" % work, args.binary, "--insecure",
            "--store", "memory", "--listen", addr]
    log = open(os.path.join(work, "stderr.log"), "wb")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
    control = ["callgrind_control"]
    try:
        deadline = time.monotonic() + 120
        while not hb.Peer._answers(addr):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("tracing_callgrind: the server did not start")
            time.sleep(0.3)
        user, forged = hb.mint(key), hb.mint(secrets.token_bytes(32))
        pb, _ = hb.harness.stubs()
        requests = hb.requests_for(pb, hb.seed(addr, user, 20))
        for letter in args.scenarios:
            method, auth = SCENARIOS[letter]
            token = {"none": None, "user": user, "forged": forged}[auth]
            body = os.path.join(work, "body.%s" % letter)
            with open(body, "wb") as f:
                f.write(hb.grpc_frame(requests[method]))

            def calls(n):
                cmd = ["h2load", "-c", "4", "-m", "8", "-t", "1", "-n", str(n), "-d", body,
                       "-H", "content-type: application/grpc", "-H", "te: trailers"]
                if token:
                    cmd += ["-H", "authorization: Bearer " + token]
                cmd.append("http://%s%s%s" % (addr, hb.SERVICE, method))
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=900).stdout
                m = re.search(r"(\d+) succeeded", out)
                if not m or int(m.group(1)) != n:
                    raise SystemExit("tracing_callgrind: h2load: %s" % out[-2000:])

            calls(200)
            time.sleep(6)
            for f in glob.glob(os.path.join(work, "cg.*")):
                os.unlink(f)
            pid = str(proc.pid)
            subprocess.run(control + ["-z", pid], check=True, capture_output=True)
            subprocess.run(control + ["-i", "on", pid], check=True, capture_output=True)
            calls(args.n)
            time.sleep(6)
            subprocess.run(control + ["-i", "off", pid], check=True, capture_output=True)
            subprocess.run(control + ["-d", letter, pid], check=True, capture_output=True)
            per = totals(glob.glob(os.path.join(work, "cg.*")))
            top = sorted(per.items(), key=lambda kv: -kv[1])[:5]
            print("%s %s %s: %.0f instructions/call (threads: %s)" % (
                args.mode, letter, method, sum(per.values()) / args.n,
                ", ".join("%.0f" % (v / args.n) for _, v in top)), flush=True)
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                for f in per:
                    shutil.copy(f, os.path.join(args.keep, "%s.%s.%s" % (
                        args.mode, letter, os.path.basename(f))))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if receiver:
            receiver.terminate()
            out, _ = receiver.communicate(timeout=20)
            print("collector: %s" % out.decode().strip().splitlines()[-1])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
