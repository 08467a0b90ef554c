"""The server's log (product-server(8) "Logs"): one JSON object per stderr line;
call lines carry time (RFC 3339), method, code, duration_ms, peer, and sub
exactly when the call carried a valid token; levels follow the code;
client-supplied control characters never appear raw; and no token, no
'Bearer' and no secret ever appears in the output of the server, the client
or mint-token. --log-format text gives human (non-JSON) lines."""

import json
import re

import harness as h
from harness import expect_eq

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
CODES = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
         "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
         "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
         "UNAUTHENTICATED"}
EVIL_ID = "evil\nid\x1b[31m\r\x07\x7f"
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
    h.expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=EVIL_ID))
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
    # A client whose user-agent carries control characters.
    ua = h.Api(srv, options=[("grpc.primary_user_agent", "ua\x1b[2J\x07")])
    h.status_of(lambda: ua.call("ListProducts"))
    ua.close()
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


def test_control_characters_from_the_client_never_appear_raw():
    raw = S["srv"].stderr()
    for ch in sorted(set(raw)):
        if ch != "\n" and (ord(ch) < 0x20 or ord(ch) == 0x7f):
            raise AssertionError("raw control character %r in stderr" % ch)
    # The call with the evil id was logged (as one line: a raw newline would
    # have broken the JSON of its line).
    evil = [l for l in S["srv"].call_lines("GetProduct") if l["code"] == "NOT_FOUND"]
    assert evil, "no NOT_FOUND GetProduct line"


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


def test_text_log_format_gives_human_lines():
    with h.Server("--log-format", "text") as srv:
        api = h.Api(srv)
        tok = h.make_token(srv.secret, sub="text-user")
        api.create(tok, name="t")
        h.expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=EVIL_ID))
        api.close()
        expect_eq(srv.stop(), 0, "exit status")
        raw = srv.stderr()
    lines = [l for l in raw.split("\n") if l]
    assert len(lines) >= 3, "too few text lines: %r" % raw
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        raise AssertionError("a JSON line in text format: %r" % obj)
    assert any("CreateProduct" in l and "OK" in l for l in lines), raw
    assert any("GetProduct" in l and "NOT_FOUND" in l for l in lines), raw
    for ch in set(raw):
        assert ch == "\n" or not (ord(ch) < 0x20 or ord(ch) == 0x7f), (
            "raw control character %r in text log" % ch)
    assert tok not in raw and "Bearer" not in raw, "token in the text log"


if __name__ == "__main__":
    try:
        drive_calls()
        h.main([
            test_every_stderr_line_is_a_json_object,
            test_call_lines_have_the_contract_fields,
            test_sub_is_logged_exactly_when_the_token_is_valid,
            test_levels_follow_the_code,
            test_control_characters_from_the_client_never_appear_raw,
            test_no_token_bearer_or_secret_in_any_output,
            test_text_log_format_gives_human_lines,
        ])
    finally:
        if "srv" in S:
            S["srv"].cleanup()
