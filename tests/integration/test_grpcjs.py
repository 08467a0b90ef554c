"""An independent client: node/grpcjs_client.js (@grpc/grpc-js on Node's own
HTTP/2, sharing no code with the gRPC C core) drives every RPC against the
real server, over plaintext and over TLS with a dev CA made at test time.
Node and the pinned npm packages come from tools/install-deps.sh; when they
are missing the test fails (it never skips)."""

import os
import re
import shutil
import subprocess
import tempfile

import harness as h
from harness import expect_eq
from test_tls import gen

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
CLIENT = os.path.join(NODE_DIR, "grpcjs_client.js")
S = {}


def setup():
    node = shutil.which("node")
    assert node, "node is not installed (run tools/install-deps.sh)"
    for pkg in ("@grpc/grpc-js", "@grpc/proto-loader"):
        assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", pkg)), (
            "%s is not installed in %s (run tools/install-deps.sh)" % (pkg, NODE_DIR))
    S["node"] = node
    S["tmp"] = tempfile.mkdtemp(prefix="product-grpcjs-")
    S["pki"] = os.path.join(S["tmp"], "pki")
    gen(S["pki"])
    # Every check the client defines must report "ok": none may go missing.
    with open(CLIENT) as f:
        text = f.read()
    S["checks"] = len(re.findall(r"^check\(", text, re.M))
    # plainCheck: run over plaintext only (they read the server's frames).
    S["plain_checks"] = len(re.findall(r"^plainCheck\(", text, re.M))
    assert S["checks"] >= 10, "the client defines only %d checks" % S["checks"]
    assert S["plain_checks"] >= 1, "the client defines no plaintext-only check"


def token(srv, *args, secret=None):
    rc, out, err = h.mint_token(*args, secret=secret or srv.secret)
    assert rc == 0, "mint-token %s failed: %s" % (" ".join(args), err)
    return out.strip()


def run_client(srv, ca=None):
    env = dict(os.environ)
    env.update({
        "PRODUCT_ADDR": srv.addr,
        "PRODUCT_USER_TOKEN": token(srv, "--sub", "js-user"),
        "PRODUCT_ADMIN_TOKEN": token(srv, "--sub", "js-admin", "--role", "admin"),
        # Well formed, right claims, signed with a secret the server does not know.
        "PRODUCT_FORGED_TOKEN": token(srv, "--sub", "js-admin", "--role", "admin",
                                      secret="f" * 48),
        "PRODUCT_PROTO_DIR": os.path.join(h.SRC, "proto"),
        "PRODUCT_GRPC_PROTO_DIR": "/usr/share/grpc-proto",
        "PRODUCT_SLOW": str(h.SLOW),
    })
    env.pop("PRODUCT_CA", None)
    if ca:
        env["PRODUCT_CA"] = ca
    p = subprocess.run([S["node"], CLIENT], env=env, cwd=NODE_DIR, capture_output=True,
                       timeout=180 * h.SLOW)
    out = p.stdout.decode("utf-8", "replace")
    print(out, end="")
    if p.stderr:
        print(p.stderr.decode("utf-8", "replace")[-4000:], end="")
    m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
    assert m, "no summary line from the grpc-js client (exit %d)" % p.returncode
    want = S["checks"] + (0 if ca else S["plain_checks"])
    expect_eq((int(m.group(1)), int(m.group(2))), (want, 0), "grpc-js checks passed/failed")
    expect_eq(p.returncode, 0, "grpc-js client exit status")
    # The server's call log saw every RPC arrive from the other stack (the
    # log is flushed within 50 ms: wait for it, bounded).
    for m in ("CreateProduct", "GetProduct", "UpdateProduct", "DeleteProduct", "ListProducts",
              "Check", "ServerReflectionInfo"):
        srv.wait_log(lambda l, m=m: l.get("method", "").endswith("/" + m))
    # A clean exit (under ASan: no leak or error report) after the other stack.
    expect_eq(srv.stop(), 0, "server exit status after SIGTERM")


def test_grpcjs_over_plaintext():
    with h.Server() as srv:
        run_client(srv)


def test_grpcjs_over_tls_with_the_dev_ca():
    pki = lambda name: os.path.join(S["pki"], name)  # noqa: E731
    with h.Server("--tls-cert", pki("server.crt"), "--tls-key", pki("server.key"),
                  insecure=False) as srv:
        run_client(srv, ca=pki("ca.crt"))


if __name__ == "__main__":
    setup()
    try:
        h.main([test_grpcjs_over_plaintext, test_grpcjs_over_tls_with_the_dev_ca])
    finally:
        shutil.rmtree(S["tmp"], ignore_errors=True)
