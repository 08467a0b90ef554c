"""The server's log (product-server(8) "Logs"): one JSON object per stderr line;
call lines carry time (RFC 3339), method, code, duration_ms, peer, and sub
exactly when the call carried a valid token; levels follow the code;
client-supplied text that does reach a line (the `sub` of a validly signed
token, the method name of an unknown method) is escaped in both formats:
control characters, NUL, U+2028/U+2029, C1 controls and invalid UTF-8 never
appear raw, and the escaped value decodes back to what the client sent; and
no token, no 'Bearer' and no secret ever appears in the output of the server,
the client or mint-token. --log-format text gives human (non-JSON) lines."""

import json
import re
import socket
import struct
import time

import grpc

import harness as h
from harness import check, expect_code, expect_eq

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
CODES = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
         "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
         "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
         "UNAUTHENTICATED"}
# Hostile text that reaches a log line. The sub is a claim of a validly
# signed token (JSON in the token cannot carry invalid UTF-8, and the server
# refuses a NUL in a claim); the method name of an unknown method is raw
# bytes on the wire, so it carries NUL and invalid UTF-8 as well.
HOSTILE_SUB = "ev\nil\r\x1b[31m\x07\x7f\u2028\u2029\u009b\tend"
HOSTILE_PATH = b"/x.Y/Z\n\r\x1b[2J\x00\x07\x7f\xc2\x9b\xe2\x80\xa8\xe2\x80\xa9\xff\xfe\xc3end"
# What the log must give back once its escapes are decoded: every invalid
# byte becomes U+FFFD, everything else is kept as sent.
HOSTILE_PATH_TEXT = "/x.Y/Z\n\r\x1b[2J\x00\x07\x7f\u009b\u2028\u2029\ufffd\ufffd\ufffdend"
S = {"outputs": []}  # every (what, text) produced by the client and mint-token


def tokens(secret):
    t = {
        "user": h.make_token(secret, sub="log-user", role="user"),
        "admin": h.make_token(secret, sub="log-admin", role="admin"),
        "reader": h.make_token(secret, sub="log-reader"),
        "expired": h.make_token(secret, sub="log-expired", ttl=-7200),
        "forged": h.make_token("not-the-secret-" * 3, sub="log-forged", role="admin"),
        "none-alg": h.make_token(secret, sub="log-none", header={"alg": "none"}),
    }
    return t


def drive_calls():
    """A run with valid, expired and forged tokens over grpcio, the client
    and mint-token. Returns how many GetProduct calls carried a valid token
    (sub log-reader) and how many did not."""
    srv = S["srv"] = h.Server().start()
    tok = S["tokens"] = tokens(srv.secret)
    api = h.Api(srv)
    p = api.create(tok["user"], name="logged", description="body text must not be logged")
    S["product_id"] = p.id
    counts = {"get_valid": 0, "get_anon": 0}
    for _ in range(3):
        api.call("GetProduct", id=p.id, token=tok["reader"])
        counts["get_valid"] += 1
    for name in ("expired", "forged", "none-alg", None):
        api.call("GetProduct", id=p.id, token=tok[name] if name else None)
        counts["get_anon"] += 1
    h.expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="no-such-id"))
    counts["get_anon"] += 1
    for name in ("expired", "forged", "none-alg"):
        h.expect_code("UNAUTHENTICATED", lambda: api.call("CreateProduct", token=tok[name],
                                                          name="x"), name)
    h.expect_code("UNAUTHENTICATED", lambda: api.call(
        "CreateProduct", name="x", metadata=[("authorization", "Bearer " + tok["user"]),
                                             ("authorization", "Bearer " + tok["admin"])]))
    h.expect_code("PERMISSION_DENIED", lambda: api.call("DeleteProduct", token=tok["user"],
                                                        id=p.id))
    h.expect_code("INVALID_ARGUMENT", lambda: api.call("CreateProduct", token=tok["user"],
                                                       name=""))
    h.expect_code("UNIMPLEMENTED", lambda: api.raw("/x.Y/Z", b""))
    api.call("DeleteProduct", token=tok["admin"], id=p.id)
    hostile_calls(srv, api)
    api.close()
    # product-client with each kind of token.
    for name in ("user", "expired", "forged"):
        for args in (("create", "--name", "via cli"), ("list",), ("get", p.id)):
            rc, out, err = h.run_client(srv, *args, token=tok[name])
            S["outputs"].append(("product-client %s (%s token)" % (args[0], name), out + err))
    rc, out, err = h.run_client(srv, "create", "--name", "env",
                                extra_env={"PRODUCT_TOKEN": tok["forged"]})
    S["outputs"].append(("product-client with PRODUCT_TOKEN", out + err))
    # mint-token: its stdout is the token by design; its stderr never is.
    for args in (("--sub", "m"), ("--sub", "m", "--bogus"), ("--sub", "m", "--ttl", "x"),
                 ("--sub",)):
        rc, out, err = h.mint_token(*args, secret=srv.secret)
        S["outputs"].append(("mint-token %s stderr" % " ".join(args), err))
        if rc == 0:
            expect_eq(out.count("\n"), 1, "mint-token prints one line")
            S["minted"] = out.strip()
    rc, out, err = h.mint_token("--sub", "m", secret=srv.secret[:31])
    S["outputs"].append(("mint-token short secret", out + err))
    expect_eq(srv.stop(), 0, "exit status after SIGTERM")
    S["counts"] = counts


def hpack_literal(name, value):
    """An HPACK literal header field without indexing, new name, no
    Huffman (lengths below 127)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def h2_frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def call_raw_path(srv, path):
    """One call to `path` (raw bytes, which grpcio would not send) over a
    hand-written HTTP/2 connection; returns once the server's trailers (a
    HEADERS frame with END_STREAM on stream 1) or EOF arrived (bounded)."""
    block = b"".join(hpack_literal(k, v) for k, v in (
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", path),
        (b":authority", b"127.0.0.1"), (b"content-type", b"application/grpc"),
        (b"te", b"trailers")))
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=20 * h.SLOW)
    try:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) +
                     h2_frame(1, 4, 1, block) + h2_frame(0, 1, 1, b"\x00\x00\x00\x00\x00"))
        buf = b""
        while True:
            data = sock.recv(65536)  # the socket timeout is the hang guard
            if not data:
                return
            buf += data
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big")
                buf = buf[9 + n:]
                if ftype == 4 and not flags & 1:
                    sock.sendall(h2_frame(4, 1, 0))  # SETTINGS ACK
                if ftype == 1 and sid == 1 and flags & 1:
                    return
    finally:
        sock.close()


def hostile_calls(srv, api):
    """The hostile sub (ListProducts and GetProduct with a valid token that
    carries it) and the hostile method name (one unknown-method call)."""
    tok = h.make_token(srv.secret, sub=HOSTILE_SUB)
    api.call("ListProducts", token=tok)
    h.expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="no-such-id", token=tok))
    call_raw_path(srv, HOSTILE_PATH)


def raw_stderr(srv):
    with open(srv.stderr_path, "rb") as f:
        return f.read()


def check_nothing_raw(raw, what):
    """The bytes of a log: valid UTF-8, no C0 control but the line ends, no
    DEL, no C1 control, no U+2028/U+2029 (a line break to JavaScript and to
    some terminals)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError("%s is not valid UTF-8: %s" % (what, e))
    for ch in sorted(set(text)):
        o = ord(ch)
        if ch != "\n" and (o < 0x20 or 0x7f <= o <= 0x9f or o in (0x2028, 0x2029)):
            i = text.index(ch)
            raise AssertionError("raw U+%04X in %s: %r" % (o, what, text[max(0, i - 80):i + 20]))
    return text


def strict_lines(text):
    out = []
    for line in text.split("\n"):
        if line == "":
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError("stderr line is not JSON: %r" % line)
        assert isinstance(obj, dict), "stderr line is not a JSON object: %r" % line
        out.append(obj)
    return out


def test_every_stderr_line_is_a_json_object():
    raw = S["srv"].stderr()
    assert raw.endswith("\n"), "the last line is not terminated"
    lines = strict_lines(raw)
    assert len(lines) >= 20, "too few log lines: %d" % len(lines)
    others = [l for l in lines if "method" not in l]
    assert others, "no start-up line"
    for l in lines:
        assert RFC3339.match(l.get("time", "")), "time is not RFC 3339: %r" % l


def test_call_lines_have_the_contract_fields():
    calls = S["srv"].call_lines()
    assert len(calls) >= 15, "too few call lines: %d" % len(calls)
    for l in calls:
        for k in ("time", "method", "code", "duration_ms", "peer"):
            assert k in l, "call line lacks %r: %r" % (k, l)
        assert RFC3339.match(l["time"]), "time %r" % l["time"]
        assert l["method"].startswith("/") and l["method"].count("/") == 2, l["method"]
        assert l["code"] in CODES, "code %r" % l["code"]
        assert isinstance(l["duration_ms"], (int, float)) and l["duration_ms"] >= 0, l
        assert isinstance(l["peer"], str) and l["peer"], "peer %r" % l
        assert "127.0.0.1" in l["peer"], "peer %r is not the loopback client" % l["peer"]
    methods = {l["method"] for l in calls}
    for m in ("CreateProduct", "GetProduct", "DeleteProduct", "ListProducts"):
        assert h.SERVICE + m in methods, "no line for %s" % m
    assert "/x.Y/Z" in methods, "no line for the unknown method"


def test_sub_is_logged_exactly_when_the_token_is_valid():
    calls = S["srv"].call_lines()
    invalid = {"log-expired", "log-forged", "log-none"}
    for l in calls:
        assert l.get("sub") not in invalid, "sub of an invalid token logged: %r" % l
        if l["code"] == "UNAUTHENTICATED":
            assert "sub" not in l, "sub on an UNAUTHENTICATED line: %r" % l
        if l["code"] == "PERMISSION_DENIED":
            expect_eq(l.get("sub"), "log-user", "sub on the PERMISSION_DENIED line")
        if "sub" in l:
            assert isinstance(l["sub"], str) and l["sub"], l
    gets = [l for l in calls if l["method"] == h.SERVICE + "GetProduct"]
    c = S["counts"]
    expect_eq(len([l for l in gets if l.get("sub") == "log-reader"]), c["get_valid"],
              "GetProduct lines with the valid token's sub")
    expect_eq(len([l for l in gets if "sub" not in l and "peer" in l and
                   l["peer"].startswith("ipv4")]) >= c["get_anon"], True,
              "GetProduct lines without sub (no or invalid token)")
    creates = [l for l in calls if l["method"] == h.SERVICE + "CreateProduct" and
               l["code"] == "OK"]
    assert creates and all(l.get("sub") == "log-user" for l in creates), creates


def test_levels_follow_the_code():
    calls = S["srv"].call_lines()
    by_code = {}
    for l in calls:
        assert l.get("level") in ("info", "warn", "error"), "level %r" % l
        by_code.setdefault(l["code"], set()).add(l["level"])
    for code, levels in by_code.items():
        expect_eq(len(levels), 1, "levels used for %s" % code)
    expect_eq(by_code.get("OK"), {"info"}, "level of OK")
    expect_eq(by_code.get("PERMISSION_DENIED"), {"warn"}, "level of PERMISSION_DENIED")
    for code in ("INVALID_ARGUMENT", "NOT_FOUND", "UNAUTHENTICATED", "UNIMPLEMENTED"):
        assert by_code.get(code, {"info"}) <= {"info", "warn"}, "%s logged as %s" % (
            code, by_code[code])


def test_hostile_sub_and_method_are_escaped_in_json_lines():
    """The hostile values did reach the log (each call is one line whose
    field decodes back to exactly what the client sent), and no byte of
    them reached it raw."""
    check_nothing_raw(raw_stderr(S["srv"]), "the JSON log")
    calls = S["srv"].call_lines()
    subs = [l for l in calls if l.get("sub") == HOSTILE_SUB]
    expect_eq(sorted(l["method"] for l in subs),
              sorted([h.SERVICE + "GetProduct", h.SERVICE + "ListProducts"]),
              "lines that carry the hostile sub")
    paths = [l for l in calls if l["method"].startswith("/x.Y/Z\n")]
    expect_eq([(l["method"], l["code"]) for l in paths],
              [(HOSTILE_PATH_TEXT, "UNIMPLEMENTED")], "the hostile method's line")


def test_no_token_bearer_or_secret_in_any_output():
    srv, tok = S["srv"], S["tokens"]
    outputs = [("server stderr", srv.stderr()), ("server stdout", srv.stdout())]
    outputs += S["outputs"]
    needles = {"secret": srv.secret, "Bearer": "Bearer"}
    for name, t in list(tok.items()) + [("minted", S.get("minted", "x.y.z"))]:
        needles["%s token" % name] = t
        head, payload, sig = t.split(".")
        if len(sig) >= 16:
            needles["%s signature" % name] = sig
        needles["%s payload" % name] = payload
    needles["body text"] = "body text must not be logged"
    for what, text in outputs:
        for nname, needle in needles.items():
            if nname == "body text" and what != "server stderr":
                continue  # the client prints the product it got back
            assert needle not in text, "%s found in %s" % (nname, what)


TEXT_FIELD = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def text_fields(line):
    """The quoted key="value" fields of a text line, values unescaped (the
    text format uses the JSON escapes inside its quotes)."""
    return {k: json.loads('"%s"' % v) for k, v in TEXT_FIELD.findall(line)}


def test_text_log_format_gives_human_lines_and_escapes_client_text():
    with h.Server("--log-format", "text") as srv:
        api = h.Api(srv)
        tok = h.make_token(srv.secret, sub="text-user")
        api.create(tok, name="t")
        h.expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="no-such-id"))
        hostile_calls(srv, api)
        api.close()
        expect_eq(srv.stop(), 0, "exit status")
        raw = raw_stderr(srv)
    text = check_nothing_raw(raw, "the text log")
    lines = [l for l in text.split("\n") if l]
    assert len(lines) >= 6, "too few text lines: %r" % text
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        raise AssertionError("a JSON line in text format: %r" % obj)
    assert any("CreateProduct" in l and "OK" in l for l in lines), text
    assert any("GetProduct" in l and "NOT_FOUND" in l for l in lines), text
    fields = [text_fields(l) for l in lines]
    subs = [f for f in fields if f.get("sub") == HOSTILE_SUB]
    expect_eq(sorted(f.get("method") for f in subs),
              sorted([h.SERVICE + "GetProduct", h.SERVICE + "ListProducts"]),
              "text lines that carry the hostile sub")
    paths = [f for f in fields if f.get("method", "").startswith("/x.Y/Z")]
    expect_eq([(f["method"], f.get("code")) for f in paths],
              [(HOSTILE_PATH_TEXT, "UNIMPLEMENTED")], "the hostile method's text line")
    assert tok not in text and "Bearer" not in text, "token in the text log"


def test_compressed_requests_are_refused_and_the_cores_lines_are_bounded():
    """Compressed requests get UNIMPLEMENTED (the core inflated them whole
    before checking any limit); the core logs an error line for each, at
    most 10 a second reach stderr, and the next line says how many did not."""
    calls = 200
    with h.Server() as srv:
        ch = grpc.insecure_channel(srv.addr, compression=grpc.Compression.Gzip)
        try:
            rpc = ch.unary_unary("/product.ProductService/GetProduct",
                                 request_serializer=h._identity,
                                 response_deserializer=h._identity)
            started = time.monotonic()
            for _ in h.each(range(calls), "compressed calls"):
                code, _, _ = h.status_of(lambda: rpc(b"\x0a\x01x", timeout=30 * h.SLOW))
                expect_eq(code.name, "UNIMPLEMENTED", "a compressed request")
            elapsed = time.monotonic() - started
        finally:
            ch.close()
        # A plain request on a new channel is served as before.
        with h.Api(srv) as api:
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="x",
                                                      token=h.make_token(srv.secret)),
                        "an uncompressed call")
        expect_eq(srv.stop(), 0, "exit status")
        core = [l for l in strict_lines(srv.stderr()) if l.get("source") == "grpc" and
                "Compression algorithm" in l.get("msg", "")]
        # Whatever the machine's speed: 10 per started second at most.
        bound = 10 * (int(elapsed) + 2)
        check(0 < len(core) <= bound, "%d core lines for %d refused calls in %.1f s (bound %d)" % (
            len(core), calls, elapsed, bound))
        expect_eq({l["level"] for l in core}, {"warn"}, "the client's doing: warn, not error")
        check(len(core) + sum(l.get("unlogged_before", 0) for l in core) <= calls,
              "unlogged counts add up to no more than the calls")
        if len(core) < calls:
            check(any(l.get("unlogged_before", 0) > 0 for l in core) or len(core) <= 10,
                  "a line after dropped ones says how many")


if __name__ == "__main__":
    try:
        drive_calls()
        h.main([
            test_every_stderr_line_is_a_json_object,
            test_call_lines_have_the_contract_fields,
            test_sub_is_logged_exactly_when_the_token_is_valid,
            test_levels_follow_the_code,
            test_hostile_sub_and_method_are_escaped_in_json_lines,
            test_no_token_bearer_or_secret_in_any_output,
            test_text_log_format_gives_human_lines_and_escapes_client_text,
            test_compressed_requests_are_refused_and_the_cores_lines_are_bounded,
        ])
    finally:
        if "srv" in S:
            S["srv"].cleanup()
