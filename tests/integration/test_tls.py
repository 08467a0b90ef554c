"""TLS and mutual TLS on the API port (product-server(8) "TLS" and the server
flags): who can connect, start-up refusals for bad TLS files, TLS 1.1
refused, certificate rotation without restart, and the plaintext health
port. Certificates are made at test time with certs/gen-dev-certs.sh (plus a
second, foreign CA) in a temporary folder."""

import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time

import harness as h
from harness import expect_code, expect_eq

S = {}
GEN = os.path.join(h.SRC, "certs", "gen-dev-certs.sh")


def gen(out, *args):
    p = subprocess.run([GEN, "--out", out] + list(args), capture_output=True, timeout=60)
    assert p.returncode == 0, "gen-dev-certs.sh failed: %s" % p.stderr.decode()


def setup():
    tmp = tempfile.mkdtemp(prefix="product-tls-")
    S["tmp"] = tmp
    S["pki"] = os.path.join(tmp, "pki")
    S["foreign"] = os.path.join(tmp, "foreign")
    gen(S["pki"])
    gen(S["foreign"])


def pki(name):
    return os.path.join(S["pki"], name)


def foreign(name):
    return os.path.join(S["foreign"], name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def tls_server(*extra, cert=None, key=None, client_ca=None):
    args = ["--tls-cert", cert or pki("server.crt"), "--tls-key", key or pki("server.key")]
    if client_ca:
        args += ["--tls-client-ca", client_ca]
    return h.Server(*(args + list(extra)), insecure=False)


class TlsApi(h.Api):
    """harness.Api over a TLS channel. Each channel gets its own
    subchannel pool, so every TlsApi makes its own connection."""

    def __init__(self, addr, ca=None, cert=None, key=None, plaintext=False):
        grpc = h.grpc_mod()
        self.pb, self.health_pb = h.stubs()
        opts = [("grpc.use_local_subchannel_pool", 1)]
        if plaintext:
            self.channel = h.channel(addr, options=opts)
        else:
            creds = grpc.ssl_channel_credentials(
                root_certificates=read(ca) if ca else None,
                private_key=read(key) if key else None,
                certificate_chain=read(cert) if cert else None)
            self.channel = h.channel(addr, creds, options=opts)
        self._stubs = {}


def list_code(addr, **kw):
    with TlsApi(addr, **kw) as api:
        return api.code("ListProducts", timeout=30)


def client(srv, *args):
    rc, out, err = h.run_client(srv, *(list(args) + ["list"]))
    return rc, out, err


def peer_serial(addr, ca):
    """The serial of the certificate a new TLS connection gets (python ssl +
    openssl x509 -serial)."""
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    ctx.load_cert_chain(pki("client.crt"), pki("client.key"))  # for mTLS servers
    with socket.create_connection((host, int(port)), timeout=5 * h.SLOW) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True, timeout=60, check=True)
    return p.stdout.decode().strip().split("=", 1)[1].upper()


def file_serial(path):
    p = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-serial"],
                       capture_output=True, timeout=60, check=True)
    return p.stdout.decode().strip().split("=", 1)[1].upper()


# ------------------------------------------------------------- TLS only ---

def test_plaintext_client_fails_against_tls_server():
    with tls_server() as srv:
        expect_eq(list_code(srv.addr, plaintext=True).name, "UNAVAILABLE", "grpcio plaintext")
        rc, _, err = client(srv, "--insecure")
        expect_eq(rc, 1, "product-client --insecure exit status (%s)" % err.strip())
        assert err.startswith("error: UNAVAILABLE"), err
        for line in srv.log_lines():  # handshake failures are logged as JSON
            assert "method" not in line or line.get("code") != "OK", line


def test_tls_client_trusting_the_ca_succeeds():
    with tls_server() as srv:
        expect_eq(list_code(srv.addr, ca=pki("ca.crt")).name, "OK", "grpcio with the CA")
        rc, out, err = client(srv, "--ca", pki("ca.crt"))
        expect_eq(rc, 0, "product-client --ca exit status (%s)" % err.strip())
        assert '"products"' in out, out
        start = srv.wait_log(lambda l: l.get("msg") == "product-server serving")
        expect_eq(start.get("tls_serial"), file_serial(pki("server.crt")), "serial in start line")
        expect_eq(start.get("mtls"), False, "mtls in start line")


def test_client_trusting_another_ca_fails():
    with tls_server() as srv:
        expect_eq(list_code(srv.addr, ca=foreign("ca.crt")).name, "UNAVAILABLE",
                  "grpcio trusting a foreign CA")
        rc, _, err = client(srv, "--ca", foreign("ca.crt"))
        expect_eq(rc, 1, "product-client with a foreign CA (%s)" % err.strip())
        assert err.startswith("error: UNAVAILABLE"), err


# ------------------------------------------------------------ mutual TLS ---

def test_mtls_requires_a_client_certificate_from_the_client_ca():
    with tls_server(client_ca=pki("ca.crt")) as srv:
        a = srv.addr
        expect_eq(list_code(a, ca=pki("ca.crt")).name, "UNAVAILABLE", "no client certificate")
        expect_eq(list_code(a, ca=pki("ca.crt"), cert=foreign("client.crt"),
                            key=foreign("client.key")).name, "UNAVAILABLE",
                  "client certificate of a foreign CA")
        expect_eq(list_code(a, ca=pki("ca.crt"), cert=pki("client.crt"),
                            key=pki("client.key")).name, "OK", "client certificate of the CA")
        expect_eq(list_code(a, plaintext=True).name, "UNAVAILABLE", "plaintext")

        rc, _, err = client(srv, "--ca", pki("ca.crt"))
        expect_eq(rc, 1, "product-client without --cert (%s)" % err.strip())
        rc, _, err = client(srv, "--ca", pki("ca.crt"), "--cert", foreign("client.crt"),
                            "--key", foreign("client.key"))
        expect_eq(rc, 1, "product-client with a foreign certificate (%s)" % err.strip())
        rc, out, err = client(srv, "--ca", pki("ca.crt"), "--cert", pki("client.crt"),
                              "--key", pki("client.key"))
        expect_eq(rc, 0, "product-client with the right certificate (%s)" % err.strip())
        assert '"products"' in out, out
        start = srv.wait_log(lambda l: l.get("msg") == "product-server serving")
        expect_eq(start.get("mtls"), True, "mtls in start line")


def test_mtls_rejects_the_server_certificate_used_as_a_client_certificate():
    # Signed by the right CA but without clientAuth: OpenSSL's purpose check
    # refuses it as a client certificate.
    with tls_server(client_ca=pki("ca.crt")) as srv:
        expect_eq(list_code(srv.addr, ca=pki("ca.crt"), cert=pki("server.crt"),
                            key=pki("server.key")).name, "UNAVAILABLE",
                  "server certificate (serverAuth only) as client certificate")


# ------------------------------------------------------ start-up refusals ---

# nobody/nogroup: a file of mode 000 is unreadable to it, unlike to root.
UNPRIVILEGED = 65534


def refused(args, what, unprivileged=False):
    """Runs product-server with args; asserts exit 2, one stderr line, no
    serving. Returns that line. unprivileged: as root, the server runs as
    an unprivileged user (file permissions then apply to it, as to any
    deployment that does not run as root)."""
    tmp = tempfile.mkdtemp(prefix="product-tls-refuse-")
    kw = {}
    if unprivileged and os.geteuid() == 0:
        kw = dict(user=UNPRIVILEGED, group=UNPRIVILEGED, extra_groups=[])
        os.chmod(tmp, 0o777)
    try:
        ready = os.path.join(tmp, "ready")
        env = dict(os.environ, JWT_SECRET="s" * 40)
        for k in ("TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CLIENT_CA_FILE", "INSECURE"):
            env.pop(k, None)
        p = subprocess.run([os.path.join(h.BIN, "product-server"), "--listen", "127.0.0.1:0",
                            "--store", "memory", "--ready-file", ready] + args,
                           env=env, capture_output=True, timeout=30 * h.SLOW, **kw)
        err = p.stderr.decode()
        expect_eq(p.returncode, 2, "%s: exit status (stderr %r)" % (what, err))
        lines = [l for l in err.splitlines() if l.strip()]
        expect_eq(len(lines), 1, "%s: stderr lines %r" % (what, lines))
        assert not os.path.exists(ready), what + ": ready file written"
        return lines[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def expect_in(line, *parts):
    for part in parts:
        assert part in line, "%r lacks %r" % (line, part)


def test_startup_refuses_bad_tls_inputs_with_one_line_and_exit_2():
    d = os.path.join(S["tmp"], "bad")
    os.makedirs(d, exist_ok=True)
    crt, key = pki("server.crt"), pki("server.key")
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    half = os.path.join(d, "half.crt")
    with open(half, "wb") as f:
        f.write(read(crt)[:200])
    missing = os.path.join(d, "missing.crt")
    keydir = os.path.join(d, "key.d")
    os.makedirs(keydir, exist_ok=True)

    expect_in(refused(["--tls-cert", missing, "--tls-key", key], "missing cert"),
              missing, "No such file")
    expect_in(refused(["--tls-cert", crt, "--tls-key", keydir], "key is a directory"),
              keydir, "TLS key", "directory")
    # An unreadable key, as root too: the server then runs unprivileged, and
    # everything on the way but the key stays readable to it.
    locked = os.path.join(d, "locked.key")
    shutil.copy(key, locked)
    os.chmod(locked, 0)
    for path in (S["tmp"], S["pki"], d):
        os.chmod(path, 0o711)
    os.chmod(crt, 0o644)
    expect_in(refused(["--tls-cert", crt, "--tls-key", locked], "unreadable key",
                      unprivileged=True), locked, "TLS key", "Permission denied")
    expect_in(refused(["--tls-cert", crt, "--tls-key", pki("client.key")], "mismatched pair"),
              pki("client.key"), "does not match", crt)
    expect_in(refused(["--tls-cert", garbage, "--tls-key", key], "garbage cert"),
              garbage, "no valid PEM certificate")
    expect_in(refused(["--tls-cert", half, "--tls-key", key], "half-written cert"),
              half, "no valid PEM certificate")
    expect_in(refused(["--tls-cert", crt, "--tls-key", garbage], "garbage key"),
              garbage, "no valid PEM private key")
    expect_in(refused(["--tls-cert", crt, "--tls-key", key, "--tls-client-ca", missing],
                      "missing client CA"), "client CA", missing)
    expect_in(refused(["--tls-cert", crt], "cert without key"), "--tls-key")
    expect_in(refused(["--tls-key", key], "key without cert"), "--tls-cert")
    expect_in(refused([], "neither certificate nor --insecure"), "--insecure")
    # The line names no key material.
    line = refused(["--tls-cert", crt, "--tls-key", pki("client.key")], "mismatch again")
    assert "PRIVATE KEY" not in line and read(pki("client.key")).decode()[40:80] not in line


# --------------------------------------------------------- TLS versions ---

def s_client(addr, *args):
    p = subprocess.run(["openssl", "s_client", "-connect", addr, "-servername", "localhost"]
                       + list(args), input=b"", capture_output=True, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def test_tls_1_1_is_refused_and_1_2_and_1_3_work():
    help_text = subprocess.run(["openssl", "s_client", "-help"], capture_output=True).stderr
    if b"-tls1_1" not in help_text:
        h.skip_case("the local openssl s_client has no -tls1_1")
    with tls_server() as srv:
        for v, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = s_client(srv.addr, v, "-alpn", "h2", "-CAfile", pki("ca.crt"))
            expect_eq(rc, 0, "s_client %s:\n%s" % (v, out[-800:]))
            # "New, ..." is printed at the handshake (the session block with
            # "Protocol :" may be missing in TLS 1.3 when the ticket is late).
            expect_in(out, "New, %s, Cipher is " % name, "Verify return code: 0 (ok)")
        # SECLEVEL=0 lets the local client really offer TLS 1.1, so that the
        # refusal is the server's.
        rc, out = s_client(srv.addr, "-tls1_1", "-alpn", "h2", "-cipher", "DEFAULT@SECLEVEL=0")
        assert rc != 0, "TLS 1.1 handshake succeeded:\n" + out[-800:]
        assert "no peer certificate available" in out, out[-800:]
        srv.wait_log(lambda l: "unsupported protocol" in l.get("msg", ""))


def test_tls_min_version_1_3_refuses_tls_1_2():
    with tls_server("--tls-min-version", "1.3") as srv:
        rc, out = s_client(srv.addr, "-tls1_3", "-alpn", "h2", "-CAfile", pki("ca.crt"))
        expect_eq(rc, 0, "s_client -tls1_3:\n" + out[-800:])
        expect_in(out, "New, TLSv1.3, Cipher is ")
        rc, out = s_client(srv.addr, "-tls1_2", "-alpn", "h2", "-CAfile", pki("ca.crt"))
        assert rc != 0, "TLS 1.2 handshake succeeded with --tls-min-version 1.3:\n" + out[-800:]
        srv.wait_log(lambda l: "unsupported protocol" in l.get("msg", ""))


# ----------------------------------------------- handshake cost levers ---

def test_x25519_is_chosen_and_p256_still_served():
    """The core alone allows P-256 only; the server offers X25519 first
    (one round trip, no HelloRetryRequest for clients that lead with it)."""
    with tls_server() as srv:
        for groups, temp_key in (("X25519:P-256", "Server Temp Key: X25519"),
                                 ("P-256", "Server Temp Key: ECDH, prime256v1")):
            rc, out = s_client(srv.addr, "-tls1_3", "-groups", groups, "-alpn", "h2",
                               "-CAfile", pki("ca.crt"))
            expect_eq(rc, 0, "s_client -groups %s:\n%s" % (groups, out[-800:]))
            expect_in(out, temp_key)


def tls13_connect(addr, ctx, session=None):
    """A TLS 1.3 connection that speaks the HTTP/2 preface and reads the
    server's SETTINGS (the session tickets come before it); returns
    (session_reused, the session to offer next)."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0\0\0\x04\0\0\0\0\0")
            got = b""
            while len(got) < 9:  # bounded by the socket timeout
                chunk = s.recv(4096)
                assert chunk, "the server closed before its SETTINGS"
                got += chunk
            expect_eq(got[3], 4, "first frame from the server (4: SETTINGS)")
            return s.session_reused, s.session


def test_session_ticket_resumes_the_next_connection():
    with tls_server() as srv:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(pki("ca.crt"))
        ctx.set_alpn_protocols(["h2"])
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        reused, session = tls13_connect(srv.addr, ctx)
        assert not reused, "a first connection cannot resume"
        assert session is not None and session.has_ticket, "no session ticket was sent"
        for _ in range(3):  # each resumed connection gets a ticket of its own
            reused, session = tls13_connect(srv.addr, ctx, session)
            assert reused, "the server did not resume with its own ticket"
        # A ticket from another server (another certificate, other keys) does not resume.
        with tls_server() as other:
            reused, _ = tls13_connect(other.addr, ctx, session)
            assert not reused, "a ticket of another server resumed"


# ------------------------------------------------------------- rotation ---

def replace_atomically(src, dst):
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
    os.rename(tmp, dst)


def wait_serial(addr, ca, want, limit):
    """Seconds until a new connection sees serial want (bounded by limit)."""
    t0 = time.monotonic()
    seen = None
    while time.monotonic() - t0 < limit:
        seen = peer_serial(addr, ca)
        if seen == want:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError("new connections still get serial %s, want %s" % (seen, want))


def call_peer_ports(srv, n):
    """The client ports of the first n ListProducts calls in the server's
    log (waits, bounded, until n are logged)."""
    t0 = time.monotonic()
    while True:
        lines = srv.call_lines("ListProducts")
        if len(lines) >= n or time.monotonic() - t0 > 30 * h.SLOW:
            break
        time.sleep(0.05)
    expect_eq(len(lines), n, "ListProducts calls logged")
    return [l["peer"].rsplit(":", 1)[1] for l in lines[:n]]


def test_rotation_reaches_new_connections_and_keeps_open_ones():
    d = os.path.join(S["tmp"], "rot")
    os.makedirs(d)
    live_crt, live_key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    shutil.copy(pki("server.crt"), live_crt)
    shutil.copy(pki("server.key"), live_key)
    # A second server certificate (new key, new serial) from the same CA.
    second = os.path.join(S["tmp"], "second")
    os.makedirs(second)
    shutil.copy(pki("ca.crt"), second)
    shutil.copy(pki("ca.key"), second)
    gen(second, "--server-only")
    old_serial, new_serial = file_serial(live_crt), file_serial(os.path.join(second, "server.crt"))
    assert old_serial != new_serial

    with tls_server(cert=live_crt, key=live_key, client_ca=pki("ca.crt")) as srv:
        mtls = dict(ca=pki("ca.crt"), cert=pki("client.crt"), key=pki("client.key"))
        old = TlsApi(srv.addr, **mtls)
        try:
            expect_code("OK", lambda: old.call("ListProducts"), "call before the swap")
            expect_eq(peer_serial(srv.addr, pki("ca.crt")), old_serial, "serial before the swap")

            replace_atomically(os.path.join(second, "server.key"), live_key)
            replace_atomically(os.path.join(second, "server.crt"), live_crt)
            took = wait_serial(srv.addr, pki("ca.crt"), new_serial, 60 * h.SLOW)
            print("  new certificate seen by a new connection after %.1fs" % took)
            srv.wait_log(lambda l: l.get("msg") == "TLS certificate reloaded" and
                         l.get("tls_serial") == new_serial)

            for i in range(5):  # the connection opened before the swap still works
                expect_code("OK", lambda: old.call("ListProducts"), "old channel call %d" % i)
            ports = call_peer_ports(srv, 6)
            expect_eq(len(set(ports)), 1, "client ports of the old channel's calls %r" % ports)
            expect_eq(list_code(srv.addr, **mtls).name, "OK", "new mTLS channel after the swap")
            rc, _, err = client(srv, "--ca", pki("ca.crt"), "--cert", pki("client.crt"),
                                "--key", pki("client.key"))
            expect_eq(rc, 0, "product-client after the swap (%s)" % err.strip())

            # A broken replacement: a new certificate with a key of another pair.
            third = os.path.join(S["tmp"], "third")
            os.makedirs(third)
            shutil.copy(pki("ca.crt"), third)
            shutil.copy(pki("ca.key"), third)
            gen(third, "--server-only")
            replace_atomically(os.path.join(third, "server.crt"), live_crt)
            t0 = time.monotonic()
            failed = None
            while failed is None and time.monotonic() - t0 < 60 * h.SLOW:
                expect_eq(peer_serial(srv.addr, pki("ca.crt")), new_serial,
                          "serial with a mismatched replacement")
                failed = [l for l in srv.log_lines()
                          if l.get("msg", "").startswith("TLS certificate reload failed")]
                failed = failed or None
                time.sleep(0.2)
            assert failed, "no log line for the mismatched replacement"
            expect_in(failed[-1].get("reason", ""), "does not match", live_key)
            expect_eq(failed[-1].get("tls_serial"), new_serial, "kept serial in the log line")
            # A half-written certificate is refused the same way.
            with open(live_crt, "wb") as f:
                f.write(read(os.path.join(third, "server.crt"))[:300])
            wait_half_file_logged(srv, new_serial)
            expect_eq(peer_serial(srv.addr, pki("ca.crt")), new_serial, "serial after half file")
            expect_code("OK", lambda: old.call("ListProducts"), "old channel after bad files")
            for l in srv.log_lines():
                assert "PRIVATE KEY" not in str(l), "key material in the log"
        finally:
            old.close()
        expect_eq(srv.stop(), 0, "exit status")


def wait_half_file_logged(srv, serial):
    """Makes handshakes (the fetcher runs at each) until a reload-failure
    line about a half-written file shows up; each sees the kept serial."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 * h.SLOW:
        expect_eq(peer_serial(srv.addr, pki("ca.crt")), serial, "serial while the file is bad")
        if any(l.get("msg", "").startswith("TLS certificate reload failed") and
               "no valid PEM certificate" in l.get("reason", "") for l in srv.log_lines()):
            return
        time.sleep(0.2)
    raise AssertionError("no log line for the half-written certificate")


# ---------------------------------------------------------- health port ---

def test_health_port_is_plaintext_and_serves_only_health():
    grpc = h.grpc_mod()
    for client_ca in (None, pki("ca.crt")):
        hport = h.free_port()
        with tls_server("--health-listen", "127.0.0.1:%d" % hport, client_ca=client_ca) as srv:
            haddr = "127.0.0.1:%d" % hport
            with TlsApi(haddr, plaintext=True) as hp:
                st = hp.health_pb.HealthCheckResponse.ServingStatus.Value("SERVING")
                for name in ("", "product.ProductService"):
                    expect_eq(hp.health_check(name).status, st, "plaintext Check(%r)" % name)
                for m in ("ListProducts", "GetProduct", "CreateProduct"):
                    expect_code("UNIMPLEMENTED", lambda: hp.call(m), "%s on the health port" % m)
                expect_code("UNIMPLEMENTED", lambda: hp.raw(
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", b""),
                    "reflection on the health port")
            # TLS on the health port does not work: it is plaintext only.
            with TlsApi(haddr, ca=pki("ca.crt")) as tp:
                expect_code("UNAVAILABLE", lambda: tp.health_check("", timeout=5),
                            "TLS to the health port")
            # The API port stays TLS-only.
            expect_eq(list_code(srv.addr, plaintext=True), grpc.StatusCode.UNAVAILABLE,
                      "plaintext on the API port (mtls=%s)" % bool(client_ca))


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_plaintext_client_fails_against_tls_server,
            test_tls_client_trusting_the_ca_succeeds,
            test_client_trusting_another_ca_fails,
            test_mtls_requires_a_client_certificate_from_the_client_ca,
            test_mtls_rejects_the_server_certificate_used_as_a_client_certificate,
            test_startup_refuses_bad_tls_inputs_with_one_line_and_exit_2,
            test_tls_1_1_is_refused_and_1_2_and_1_3_work,
            test_tls_min_version_1_3_refuses_tls_1_2,
            test_x25519_is_chosen_and_p256_still_served,
            test_session_ticket_resumes_the_next_connection,
            test_rotation_reaches_new_connections_and_keeps_open_ones,
            test_health_port_is_plaintext_and_serves_only_health,
        ])
    finally:
        shutil.rmtree(S["tmp"], ignore_errors=True)
