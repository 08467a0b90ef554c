"""The three binaries from the outside (the man pages (docs/man) "Binaries",
"product-server", "mint-token", "product-client"): product-client against
the real server, --help/--version/bad flags of every binary, and the
server's start-up refusals (exit 2, one stderr line, nothing started)."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import harness as h
from harness import expect_eq

S = {}
BINARIES = ("product-server", "product-client", "mint-token")


def setup():
    S["srv"] = h.Server().start()
    rc, out, err = h.mint_token("--sub", "cli-admin", "--role", "admin", secret=S["srv"].secret)
    expect_eq(rc, 0, "mint-token exit (%s)" % err)
    S["admin"] = out.strip()
    rc, out, err = h.mint_token("--sub", "cli-user", secret=S["srv"].secret)
    expect_eq(rc, 0, "mint-token exit (%s)" % err)
    S["user"] = out.strip()


def run(*args, token=None, **kw):
    return h.run_client(S["srv"], *args, token=token, **kw)


def one_json(rc, out, err, what):
    """Asserts exit 0 and exactly one JSON object on stdout; returns it."""
    expect_eq(rc, 0, "%s exit status (stderr %r)" % (what, err))
    lines = out.splitlines()
    expect_eq(len(lines), 1, "%s: lines on stdout (%r)" % (what, out))
    obj = json.loads(lines[0])
    assert isinstance(obj, dict), "%s: stdout is not a JSON object: %r" % (what, out)
    return obj


def error_line(rc, out, err, code, what):
    """Asserts exit 1 and one 'error: CODE: message' line on stderr."""
    expect_eq(rc, 1, "%s exit status (stdout %r, stderr %r)" % (what, out, err))
    lines = err.splitlines()
    expect_eq(len(lines), 1, "%s: lines on stderr (%r)" % (what, err))
    prefix = "error: %s: " % code if code else "error: "
    assert lines[0].startswith(prefix), "%s: stderr %r does not start with %r" % (what, err,
                                                                                prefix)
    return lines[0]


def usage_error(rc, out, err, what):
    expect_eq(rc, 2, "%s exit status (stderr %r)" % (what, err))
    expect_eq(len(err.splitlines()), 1, "%s: one line on stderr (%r)" % (what, err))
    expect_eq(out, "", "%s: stdout" % what)


def test_demo_prints_one_json_object():
    obj = one_json(*run("demo", token=S["admin"]), what="demo")
    for step in ("created", "got", "updated", "listed", "deleted"):
        assert step in obj, "demo output lacks %r: %r" % (step, obj)
    created = obj["created"]
    assert h.UUID4_RE.match(created["id"]), "demo created id %r" % created["id"]
    expect_eq(created["name"], "Smartphone XYZ", "demo created name")
    expect_eq(obj["got"], created, "demo got == created")
    expect_eq(obj["updated"]["price"], 899.99, "demo updated price")
    expect_eq(obj["updated"]["created_at"], created["created_at"], "demo created_at")
    assert any(p["id"] == created["id"] for p in obj["listed"]["products"]), "demo listed"
    rc, out, err = run("get", created["id"])
    error_line(rc, out, err, "NOT_FOUND", "get after demo deleted it")


def test_create_get_update_list_delete_each_print_one_json_object():
    c = one_json(*run("create", "--name", "cli widget", "--description", "from the cli",
                      "--price", "12.5", "--category", "a", "--category", "b",
                      token=S["user"]), what="create")
    assert h.UUID4_RE.match(c["id"]), "create id %r" % c["id"]
    expect_eq((c["name"], c["description"], c["price"], c["categories"]),
              ("cli widget", "from the cli", 12.5, ["a", "b"]), "create output")
    expect_eq(c["created_at"], c["updated_at"], "create timestamps")
    g = one_json(*run("get", c["id"]), what="get")
    expect_eq(g, c, "get output")
    u = one_json(*run("update", c["id"], "--name", "renamed", token=S["user"]), what="update")
    expect_eq((u["name"], u["description"], u["price"]), ("renamed", "from the cli", 12.5),
              "update without mask")
    m = one_json(*run("update", c["id"], "--mask", "description,price", token=S["user"]),
                 what="update --mask")
    expect_eq((m["name"], m["description"], m["price"], m["categories"]),
              ("renamed", "", 0, ["a", "b"]), "update --mask description,price")
    expect_eq(m["created_at"], c["created_at"], "created_at after updates")
    one_json(*run("create", "--name", "other thing", token=S["user"]), what="create 2")
    lst = one_json(*run("list", "--page-size", "1", "--filter", 'name : "RENAMED"'),
                   what="list --filter")
    expect_eq([p["id"] for p in lst["products"]], [c["id"]], "filtered list")
    expect_eq((lst["total_size"], lst["next_page_token"]), (1, ""), "filtered list paging")
    full = one_json(*run("list", "--page-size", "1"), what="list --page-size 1")
    expect_eq(len(full["products"]), 1, "list --page-size 1")
    assert full["next_page_token"], "a next page token with more than one product"
    nxt = one_json(*run("list", "--page-size", "1", "--page-token", full["next_page_token"]),
                   what="list --page-token")
    assert nxt["products"][0]["id"] != full["products"][0]["id"], "second page repeats"
    d = one_json(*run("delete", c["id"], token=S["admin"]), what="delete")
    assert isinstance(d, dict), "delete output"
    rc, out, err = run("get", c["id"])
    error_line(rc, out, err, "NOT_FOUND", "get after delete")


def test_failed_calls_print_error_code_message_and_exit_1():
    rc, out, err = run("get", "00000000-0000-4000-8000-000000000000")
    error_line(rc, out, err, "NOT_FOUND", "get unknown id")
    expect_eq(out, "", "stdout of a failed get")
    rc, out, err = run("create", "--name", "x")
    error_line(rc, out, err, "UNAUTHENTICATED", "create without token")
    c = one_json(*run("create", "--name", "x", token=S["user"]), what="create")
    rc, out, err = run("delete", c["id"], token=S["user"])
    error_line(rc, out, err, "PERMISSION_DENIED", "delete with a user token")
    rc, out, err = run("create", "--name", "", token=S["user"])
    error_line(rc, out, err, "INVALID_ARGUMENT", "create with an empty name")
    rc, out, err = run("list", "--page-size", "-1")
    error_line(rc, out, err, "INVALID_ARGUMENT", "list --page-size -1")
    rc, out, err = run("list", "--page-token", "forged")
    error_line(rc, out, err, "INVALID_ARGUMENT", "list with a forged page token")
    rc, out, err = run("update", c["id"], "--mask", "bogus", token=S["user"])
    error_line(rc, out, err, "INVALID_ARGUMENT", "update --mask bogus")
    # The token from the environment.
    rc, out, err = run("create", "--name", "env token", extra_env={"PRODUCT_TOKEN": S["user"]})
    one_json(rc, out, err, "create with PRODUCT_TOKEN")
    # A server that is not there.
    port = h.free_port()
    p = subprocess.run([os.path.join(h.BIN, "product-client"), "--addr",
                          "127.0.0.1:%d" % port, "--insecure", "--timeout", "5", "list"],
                         capture_output=True, timeout=30 * h.SLOW)
    error_line(p.returncode, p.stdout.decode(), p.stderr.decode(), "UNAVAILABLE",
               "list against a closed port")


def test_timeout_is_honoured():
    # A stopped server cannot answer in time, however fast the machine: the
    # connection is accepted by the kernel but nothing reads it, so the call
    # ends only at the client's deadline. Which deadline: ignoring --timeout
    # would wait the default (10 s) at the very least, so the bound below
    # cannot be met by that, however fast the machine.
    srv = S["srv"]
    srv.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        rc, out, err = run("--timeout", "0.5", "list")
        took = time.monotonic() - t0
    finally:
        srv.proc.send_signal(signal.SIGCONT)
    error_line(rc, out, err, "DEADLINE_EXCEEDED", "list --timeout 0.5 to a stopped server")
    assert took < 10, "list --timeout 0.5 took %.1fs: the default deadline, not --timeout" % took
    # Served again once it runs (30 s: a hang guard for the resumed server).
    one_json(*run("--timeout", "30", "list"), what="list --timeout 30")


def test_client_bad_usage_exits_2():
    cases = [
        ("unknown command",), ("get",), ("get", "a", "b"), ("create",),
        ("create", "--name"), ("create", "--name", "x", "--price", "abc"),
        ("create", "--name", "x", "--bogus"), ("list", "--page-size", "many"),
        ("--timeout", "-1", "list"), ("--timeout", "abc", "list"), (),
    ]
    for args in cases:
        usage_error(*run(*args, token=S["user"]), what="product-client %s" % " ".join(args))
    for sub in ("create", "get", "update", "delete", "list", "demo", "health"):
        rc, out, err = run(sub, "--help")
        expect_eq(rc, 0, "product-client %s --help" % sub)
        assert sub in out, "%s --help output: %r" % (sub, out)


def test_health_exits_zero_only_for_serving():
    # The probe port (plaintext, health only) and the API port answer alike.
    # A PostgreSQL store that nothing listens for keeps the server up with
    # product.ProductService NOT_SERVING and "" SERVING (the liveness and
    # readiness split), so both answers are met without racing a shutdown.
    health_port = h.free_port()
    store = "postgres://product@127.0.0.1:%d/products?connect_timeout=2" % h.free_port()
    srv = h.Server("--health-listen", "127.0.0.1:%d" % health_port, store=store)
    try:
        srv.start()
        probe = type("Addr", (), {"addr": "127.0.0.1:%d" % health_port})()
        for target, what in ((srv, "API port"), (probe, "health port")):
            obj = one_json(*h.run_client(target, "health"), what="health on the %s" % what)
            expect_eq(obj, {"service": "", "status": "SERVING"}, "health on the %s" % what)
            # Bounded: the store probe reports the outage within its first
            # look (a refused connect); 60 s is a hang guard, not a budget.
            deadline = time.monotonic() + 60 * h.SLOW
            while True:
                rc, out, err = h.run_client(target, "health", "product.ProductService")
                if rc != 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            expect_eq((rc, err), (1, ""), "health product.ProductService on the %s (%r)"
                      % (what, out))
            expect_eq(json.loads(out), {"service": "product.ProductService",
                                        "status": "NOT_SERVING"},
                      "health product.ProductService on the %s" % what)
            error_line(*h.run_client(target, "health", "no.such.Service"), code="NOT_FOUND",
                       what="health of an unknown service on the %s" % what)
    finally:
        srv.cleanup()
    # ProductService SERVING on the shared server (memory store).
    obj = one_json(*run("health", "product.ProductService"), what="health on a serving store")
    expect_eq(obj["status"], "SERVING", "health product.ProductService")
    # Nothing listens any more: the call fails (exit 1), as grpc_health_probe's does.
    error_line(*h.run_client(probe, "--timeout", "5", "health"), code="UNAVAILABLE",
               what="health of a stopped server")
    usage_error(*run("health", "a", "b"), what="health with two services")


def bin_path(name):
    return os.path.join(h.BIN, name)


def run_bin(name, *args, env=None):
    e = dict(os.environ)
    for k in ("JWT_SECRET", "JWT_SECRET_FILE", "PRODUCT_TOKEN"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.run([bin_path(name)] + list(args), capture_output=True, env=e,
                         timeout=20 * h.SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_every_binary_answers_help_and_version():
    for name in BINARIES:
        for flag in ("--help", "-h"):
            rc, out, err = run_bin(name, flag)
            expect_eq(rc, 0, "%s %s exit status" % (name, flag))
            assert "usage" in out.lower(), "%s %s: no usage on stdout: %r" % (name, flag, out)
            expect_eq(err, "", "%s %s stderr" % (name, flag))
        rc, out, err = run_bin(name, "--version")
        expect_eq(rc, 0, "%s --version exit status" % name)
        assert out.strip(), "%s --version printed nothing" % name
        expect_eq(err, "", "%s --version stderr" % name)


def test_every_binary_refuses_bad_flags_with_one_line_and_exit_2():
    cases = [
        ("product-server", ("--bogus",)), ("product-server", ("--listen",)),
        ("product-server", ("--log-format", "xml")), ("product-server", ("--jwt-leeway", "soon")),
        ("product-server", ("extra-arg",)),
        ("product-client", ("--bogus", "list")), ("product-client", ("--addr",)),
        ("product-client", ("--addr", "no-port", "list")),
        ("mint-token", ("--bogus",)), ("mint-token", ("--sub",)), ("mint-token", ()),
        ("mint-token", ("--sub", "x", "--ttl", "forever")),
    ]
    secret = {"JWT_SECRET": "s" * 40}
    for name, args in cases:
        rc, out, err = run_bin(name, *args, env=secret)
        usage_error(rc, out, err, "%s %s" % (name, " ".join(args)))
        # The line names the problem (the flag or value at fault).
        words = [a for a in args if a.startswith("--")] or list(args)
        if words:
            assert any(w.lstrip("-") in err for w in words), "%s %s: %r names no flag" % (
                name, " ".join(args), err)


def test_mint_token_secret_rules():
    rc, out, err = run_bin("mint-token", "--sub", "x", env={"JWT_SECRET": "a" * 31})
    usage_error(rc, out, err, "mint-token with a 31-byte secret")
    rc, out, err = run_bin("mint-token", "--sub", "x")
    usage_error(rc, out, err, "mint-token without a secret")
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("f" * 32 + "\n")
    try:
        rc, out, err = run_bin("mint-token", "--sub", "x", "--secret-file", f.name)
        expect_eq(rc, 0, "mint-token --secret-file (%s)" % err)
        expect_eq(len(out.splitlines()), 1, "one token line")
        expect_eq(out.count("."), 2, "three JWT segments")
    finally:
        os.unlink(f.name)


def refused(args, env, what, says, hold_port=True):
    """product-server refuses: exit 2, one stderr line that says why (`says`),
    nothing on stdout, no ready file, and it never got to its port. The
    port is held by a listener of ours (without SO_REUSEPORT) while the
    server runs: a server that bound before it refused would have failed
    there, and its one line would say it cannot listen instead of `says`.
    (A check after the exit could not tell: the port is closed by then
    either way.)"""
    ready = os.path.join(tempfile.mkdtemp(prefix="refuse-"), "ready")
    holder = None
    full = ["--store", "memory", "--ready-file", ready]
    if hold_port:
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        full += ["--listen", "127.0.0.1:%d" % holder.getsockname()[1]]
    full += list(args)
    try:
        rc, out, err = h.run_server_once(*full, env=env)
    finally:
        if holder is not None:
            holder.close()
    expect_eq(rc, 2, "%s: exit status (stderr %r)" % (what, err))
    expect_eq(len(err.splitlines()), 1, "%s: lines on stderr (%r)" % (what, err))
    expect_eq(out, "", "%s: stdout" % what)
    assert not os.path.exists(ready), "%s: the ready file was written" % what
    assert says in err, "%s: the refusal does not say %r: %r" % (what, says, err)
    if hold_port:
        assert "cannot listen" not in err, "%s: it tried its port before refusing: %r" % (
            what, err)
    return err


def test_server_startup_refusals():
    good = {"JWT_SECRET": "k" * 32}
    refused(["--insecure"], {}, "no secret", "no JWT secret")
    refused(["--insecure"], {"JWT_SECRET": "k" * 31}, "31-byte secret",
            "is 31 bytes; at least 32 are required")
    tmp = tempfile.mkdtemp(prefix="secrets-")
    short = os.path.join(tmp, "short")
    with open(short, "w") as f:
        f.write("k" * 31 + "\n")
    refused(["--insecure", "--jwt-secret-file", short], {}, "31-byte secret file",
            "is 31 bytes; at least 32 are required")
    refused(["--insecure", "--jwt-secret-file", os.path.join(tmp, "missing")], {},
            "missing secret file", os.path.join(tmp, "missing"))
    refused([], good, "no certificate and no --insecure", "no TLS certificate")
    refused(["--tls-cert", os.path.join(tmp, "nope.pem"), "--tls-key",
             os.path.join(tmp, "nope.key")], good, "missing TLS files",
            "cannot read TLS certificate " + os.path.join(tmp, "nope.pem"))
    # Here the port itself is the refusal's reason.
    refused(["--insecure", "--listen", "127.0.0.1:99999"], good, "port 99999", "99999",
            hold_port=False)
    # The secret is never echoed, even when refused.
    err = refused(["--insecure"], {"JWT_SECRET": "Zq" * 15 + "x"}, "31-byte secret, echo",
                  "is 31 bytes")
    assert "Zq" * 15 not in err, "the refused secret was printed: %r" % err
    # A 32-byte secret is enough.
    with h.Server(secret="k" * 32) as srv:
        expect_eq(srv.proc.poll(), None, "server with a 32-byte secret runs")
        expect_eq(srv.stop(), 0, "exit status")


def test_listen_address_in_use_refuses_the_second_server():
    with h.Server() as first:
        port = first.port
        rc, out, err = h.run_server_once("--listen", "127.0.0.1:%d" % port, "--insecure",
                                         "--store", "memory", env={"JWT_SECRET": "q" * 40})
        expect_eq(rc, 2, "second server on a port in use (stderr %r)" % err)
        expect_eq(len(err.splitlines()), 1, "one line on stderr (%r)" % err)
        # The first one is unharmed.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        api = h.Api(first)
        expect_eq(api.health_check("").status, 1, "first server still SERVING")
        api.close()
        expect_eq(first.stop(), 0, "first server exit status")


def test_server_exits_zero():
    expect_eq(S["srv"].stop(), 0, "exit status after SIGTERM")


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_demo_prints_one_json_object,
            test_create_get_update_list_delete_each_print_one_json_object,
            test_failed_calls_print_error_code_message_and_exit_1,
            test_timeout_is_honoured,
            test_client_bad_usage_exits_2,
            test_health_exits_zero_only_for_serving,
            test_every_binary_answers_help_and_version,
            test_every_binary_refuses_bad_flags_with_one_line_and_exit_2,
            test_mint_token_secret_rules,
            test_server_startup_refusals,
            test_listen_address_in_use_refuses_the_second_server,
            test_server_exits_zero,
        ])
    finally:
        S["srv"].cleanup()
