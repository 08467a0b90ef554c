"""libgrpc 1.51's stale connect errno (docs/troubleshooting.md; fixed upstream
by grpc/grpc PR 35064 in 1.60): a sound TCP connect fails as "No such file or
directory" before a byte reaches the server. A test-only LD_PRELOAD shim
(tests/support/stale_connect_errno.c) makes a process's first N in-progress
connects fail exactly so, every time. product-client tries the call once more
on a new channel (and only for this error, only once); --discover's etcd call
too; the etcd registration registers; the harness' grpcio channels tolerate
it once. Under ASan the ASan runtime is preloaded first, the shim after it."""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import harness as h
from harness import expect_eq

BUILD = os.environ.get("PRODUCT_BUILD_DIR") or os.path.join(h.SRC, "build-test")
SHIM = os.path.join(BUILD, "tests", "stale_connect_errno.so")
CLIENT = os.path.join(h.BIN, "product-client")
STALE = "failed to connect to all addresses; last error: UNKNOWN: ipv4:"
ENOENT = ": No such file or directory"


def asan_runtime(binary):
    """The ASan runtime binary links, which must come first in LD_PRELOAD."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libasan.so") and len(parts) >= 3:
            return parts[2]
    raise AssertionError("%s is an ASan build but links no libasan: %s" % (binary, out))


class Shim:
    """Environment that preloads the shim with a budget of `count` failed
    connects, and the per-process events it logged."""

    def __init__(self, count, binary=CLIENT, sanitized=None, port=None):
        self.tmp = tempfile.mkdtemp(prefix="stale-errno-")
        self.log = os.path.join(self.tmp, "shim.log")
        preload = [SHIM]
        if h.SANITIZE if sanitized is None else sanitized:
            preload.insert(0, asan_runtime(binary))
        self.env = {"LD_PRELOAD": ":".join(preload), "STALE_CONNECT_ERRNO_COUNT": str(count),
                    "STALE_CONNECT_ERRNO_LOG": self.log}
        if port is not None:
            self.env["STALE_CONNECT_ERRNO_PORT"] = str(port)

    def events(self):
        """{pid: Counter(loaded=, connect=, enoent=)}"""
        out = collections.defaultdict(collections.Counter)
        if os.path.exists(self.log):
            with open(self.log) as f:
                for line in f:
                    what, pid = line.split()
                    out[pid][what] += 1
        return out

    def only_process(self):
        ev = self.events()
        expect_eq(len(ev), 1, "processes that loaded the shim: %r" % dict(ev))
        (counts,) = ev.values()
        expect_eq(counts["loaded"], 1, "the shim is in the path")
        return counts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.tmp, ignore_errors=True)


def client(server_addr, shim, *args, token=None):
    env = dict(os.environ)
    env.pop("PRODUCT_TOKEN", None)
    env.update(shim.env)
    cmd = [CLIENT, "--addr", server_addr, "--insecure"]
    if token:
        cmd += ["--token", token]
    p = subprocess.run(cmd + list(args), env=env, capture_output=True, timeout=60 * h.SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_product_client_tries_once_more_on_a_new_channel():
    with h.Server() as srv, Shim(1) as shim:
        tok = h.make_token(srv.secret, sub="errno")
        code, out, err = client(srv.addr, shim, "create", "--name", "once", token=tok)
        expect_eq(code, 0, "create under the stale errno: %s" % err)
        expect_eq(json.loads(out)["name"], "once", "reply")
        counts = shim.only_process()
        expect_eq(counts["enoent"], 1, "connects failed by the shim")
        expect_eq(counts["connect"], 2, "connects (the failed one, then the new channel's)")
        # The failed attempt never reached the server: one product, one call.
        with h.Api(srv) as api:
            expect_eq(api.call("ListProducts").total_size, 1, "products")
        srv.wait_log(lambda l: l.get("method", "").endswith("ListProducts"))
        expect_eq(len(srv.call_lines("CreateProduct")), 1, "CreateProduct calls the server saw")


def test_product_client_tries_only_once():
    with h.Server() as srv, Shim(2) as shim:
        code, _, err = client(srv.addr, shim, "list")
        expect_eq(code, 1, "exit status when the second connect fails too")
        if not (err.startswith("error: UNAVAILABLE: " + STALE) and err.endswith(ENOENT + "\n")):
            raise AssertionError("stderr %r" % err)
        counts = shim.only_process()
        expect_eq((counts["enoent"], counts["connect"]), (2, 2), "(failed, all) connects")
        expect_eq(srv.call_lines(), [], "calls the server saw")


def test_other_unavailable_is_not_retried():
    port = h.free_port()  # nothing listens there
    with Shim(0) as shim:
        code, _, err = client("127.0.0.1:%d" % port, shim, "list")
        expect_eq(code, 1, "exit status")
        if not err.startswith("error: UNAVAILABLE: ") or "No such file" in err:
            raise AssertionError("stderr %r" % err)
        counts = shim.only_process()
        expect_eq((counts["enoent"], counts["connect"]), (0, 1), "(failed, all) connects")


def test_harness_channel_tolerates_it_once():
    """harness.channel() in a grpcio process under the shim (python is not
    sanitized: the shim alone): one failure is made good, two are not."""
    script = ("import sys, harness as h\n"
              "api = h.Api(sys.argv[1])\n"
              "try:\n"
              "    print(api.call('ListProducts').total_size)\n"
              "except h.grpc_mod().RpcError as e:\n"
              "    print(e.code().name, e.details())\n")
    with h.Server() as srv:
        for count, want in ((1, "0"), (2, "UNAVAILABLE " + STALE)):
            with Shim(count, sanitized=False) as shim:
                env = dict(os.environ)
                env.update(shim.env)
                p = subprocess.run([sys.executable, "-c", script, srv.addr], env=env,
                                   cwd=os.path.dirname(os.path.abspath(__file__)),
                                   capture_output=True, timeout=120 * h.SLOW)
                out = p.stdout.decode().strip()
                if not out.startswith(want):
                    raise AssertionError("count %d: %r %r" % (count, out, p.stderr[-2000:]))
                # python3 also runs protoc (harness.stubs()): count over all.
                enoent = sum(c["enoent"] for c in shim.events().values())
                expect_eq(enoent, count, "connects failed by the shim")
        expect_eq(len(srv.call_lines("ListProducts")), 1, "ListProducts calls the server saw")


def test_registration_registers_and_discover_finds_it():
    """The server's first connect (its etcd channel) and --discover's first
    (its etcd lookup) both fail as in the bug."""
    import test_etcd as te  # noqa: E402 - only this test needs etcd
    if not te.ETCD_BIN:
        if h.TOOLS_REQUIRED:
            raise AssertionError("no etcd binary (Debian package etcd-server)")
        print("     skipped: no etcd")
        return
    server_bin = os.path.join(h.BIN, "product-server")
    etcd = te.Etcd().start()
    etcd_port = int(etcd.url.rsplit(":", 1)[1])
    # Only the etcd channel's connects: the server's start-up probe of its
    # own port (the HTTP/2 guard's self-test) is a plain connect of ours.
    with te.etcd_cleanup(etcd), Shim(1, binary=server_bin, port=etcd_port) as srv_shim, \
            te.server(etcd.url, env=srv_shim.env) as srv:
        kv, _ = etcd.wait_key(te.key_of(srv))
        expect_eq(kv.value.decode(), srv.addr, "registered value")
        srv.wait_log(lambda l: l.get("msg") == "etcd: registered")
        counts = srv_shim.only_process()
        expect_eq(counts["enoent"], 1, "the server's connects failed by the shim")
        with Shim(1) as shim:
            env = dict(os.environ)
            env.update(shim.env)
            p = subprocess.run([CLIENT, "--discover", etcd.url, "--insecure", "list"], env=env,
                               capture_output=True, timeout=60 * h.SLOW)
            expect_eq(p.returncode, 0, "list via --discover: %s" % p.stderr.decode())
            expect_eq(json.loads(p.stdout)["total_size"], 0, "reply")
            counts = shim.only_process()
            # etcd's failed connect, its new channel's, then the server's.
            expect_eq((counts["enoent"], counts["connect"]), (1, 3), "(failed, all) connects")


if __name__ == "__main__":
    if not os.path.exists(SHIM):
        raise SystemExit("FAIL: %s is not built (tests/CMakeLists.txt)" % SHIM)
    h.main([
        test_product_client_tries_once_more_on_a_new_channel,
        test_product_client_tries_only_once,
        test_other_unavailable_is_not_retried,
        test_harness_channel_tolerates_it_once,
        test_registration_registers_and_discover_finds_it,
    ])
