"""Signing key sets and revocation lists at start and per call, against the
real product-server and mint-token (docs/key-rotation.md):

- start-up refusals over the CLI: a key set together with a secret, and
  every kind of broken key set or revocation list, exit 2 with one stderr
  line naming the key (by kid or index) or the line number, and never the
  key's k; a good pair of files starts (so the refusals are not a server
  that refuses everything);
- per call: a token without kid, or with a kid the set does not have, is
  UNAUTHENTICATED with log reason unknown_kid; a known kid with another
  key's signature is bad_signature; the metrics count both reasons and
  product_jwt_keys shows the keys in force;
- mint-token --keys/--kid: the kid header, the default key (the last one
  that may sign), verify-only and unknown kids refused, a random jti;
- PyJWT: tokens it signs with a kid header verify, and tokens the server
  accepts verify under PyJWT."""

import base64
import json
import os
import shutil
import tempfile
import time

import jwt  # PyJWT (Debian python3-jwt)

import harness as h
import test_metrics as tm
from harness import expect_code, expect_eq

S = {}


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_key(kid, ops=None, size=32, **extra):
    """(JWK dict, raw secret bytes)."""
    raw = os.urandom(size)
    jwk = {"kty": "oct", "kid": kid, "k": b64url(raw), "alg": "HS256"}
    if ops is not None:
        jwk["key_ops"] = ops
    jwk.update(extra)
    return jwk, raw


def write(name, content):
    path = os.path.join(S["tmp"], name)
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


def key_server(keys_path, *extra, revocations=None):
    args = ["--jwt-keys", keys_path]
    if revocations:
        args += ["--jwt-revocations", revocations]
    srv = h.Server(*(args + list(extra)))
    srv.env.pop("JWT_SECRET", None)  # a key set and a secret together are refused
    srv.env.pop("JWT_SECRET_FILE", None)
    return srv


def kid_token(raw, kid, **kw):
    hdr = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        hdr["kid"] = kid
    return h.make_token(raw, header=hdr, **kw)


def setup():
    S["tmp"] = tempfile.mkdtemp(prefix="product-keys-")
    a, S["a"] = new_key("k-a")
    b, S["b"] = new_key("k-b", ["verify", "sign"])
    c, S["c"] = new_key("k-c", ["verify"])
    S["keys"] = write("keys.json", {"keys": [a, b, c]})
    S["jwks"] = [a, b, c]


def teardown():
    shutil.rmtree(S["tmp"], ignore_errors=True)


# ------------------------------------------------------ start-up refusals ---

def refused(what, *args, env=None, want=()):
    """Runs the server with args; asserts exit 2, one stderr line holding
    every fragment of want and none of the keys' k values."""
    code, _, err = h.run_server_once("--insecure", "--store", "memory", "--listen",
                                     "127.0.0.1:0", *args, env=env)
    expect_eq(code, 2, "%s: exit status (stderr %r)" % (what, err))
    lines = [l for l in err.splitlines() if l.strip()]
    expect_eq(len(lines), 1, "%s: stderr lines %r" % (what, lines))
    for part in want:
        assert part in lines[0], "%s: %r lacks %r" % (what, lines[0], part)
    return lines[0]


def test_a_key_set_and_a_secret_together_are_refused():
    secret_file = write("secret", "s" * 40)
    for what, args, env in (
            ("--jwt-keys + JWT_SECRET", ["--jwt-keys", S["keys"]], {"JWT_SECRET": "s" * 40}),
            ("--jwt-keys + --jwt-secret-file", ["--jwt-keys", S["keys"], "--jwt-secret-file",
                                                 secret_file], None),
            ("JWT_KEYS_FILE + JWT_SECRET_FILE", [], {"JWT_KEYS_FILE": S["keys"],
                                                      "JWT_SECRET_FILE": secret_file})):
        line = refused(what, *args, env=env, want=("both given",))
        assert "s" * 32 not in line, "%s: the secret in the message" % what


def test_broken_key_sets_are_refused_naming_the_key_never_its_k():
    good, _ = new_key("good")
    cases = [
        ("not JSON", "{\"keys\": [", ()),
        ("no keys array", {"kids": []}, ()),
        ("empty set", {"keys": []}, ()),
        ("duplicate kid", {"keys": [good, new_key("dup")[0], new_key("dup")[0]]},
         ("key 2", '"dup"', "key 1")),
        ("short key", {"keys": [good, new_key("short", size=31)[0]]}, ("key 1", '"short"', "31")),
        ("missing kid", {"keys": [{"kty": "oct", "k": good["k"]}]}, ("key 0",)),
        ("empty kid", {"keys": [good, dict(new_key("")[0])]}, ("key 1",)),
        ("padded base64url", {"keys": [dict(new_key("pad", size=32)[0],
                                            k=b64url(os.urandom(32)) + "=")]}, ('"pad"',)),
        ("standard base64 alphabet", {"keys": [dict(
            new_key("std")[0], k=base64.b64encode(b"\xfb\xff" * 20).decode().rstrip("="))]},
         ('"std"',)),
        ("whitespace in k", {"keys": [dict(new_key("ws")[0], k=good["k"][:20] + " " +
                                           good["k"][20:])]}, ('"ws"',)),
        ("kty RSA", {"keys": [good, new_key("rsa", kty="RSA")[0]]}, ('"rsa"', "kty")),
        ("alg HS384", {"keys": [new_key("h384", alg="HS384")[0]]}, ('"h384"', "alg")),
        ("alg none", {"keys": [new_key("none", alg="none")[0]]}, ('"none"', "alg")),
        ("key_ops sign only", {"keys": [new_key("so", ["sign"])[0]]}, ('"so"', "key_ops")),
        ("key_ops unknown op", {"keys": [new_key("enc", ["verify", "encrypt"])[0]]},
         ('"enc"', "key_ops")),
        ("key_ops empty", {"keys": [new_key("e", [])[0]]}, ('"e"', "key_ops")),
        ("key_ops duplicate", {"keys": [new_key("d", ["verify", "verify"])[0]]},
         ('"d"', "key_ops")),
        ("key_ops not an array", {"keys": [new_key("s", "verify")[0]]}, ('"s"', "key_ops")),
        ("missing k", {"keys": [{"kty": "oct", "kid": "nok"}]}, ('"nok"',)),
    ]
    for what, content, want in cases:
        path = write("bad-%s.json" % what.replace(" ", "_"), content)
        line = refused("key set with " + what, "--jwt-keys", path, want=(path,) + want)
        for jwk in (content.get("keys", []) if isinstance(content, dict) else []):
            k = jwk.get("k") if isinstance(jwk, dict) else None
            if k:
                assert k not in line and k[:16] not in line, "%s: k in %r" % (what, line)
    # The same refusal through the environment variable.
    path = write("env-bad.json", {"keys": [new_key("short", size=8)[0]]})
    refused("JWT_KEYS_FILE with a short key", env={"JWT_KEYS_FILE": path},
            want=(path, '"short"'))
    # A file that is not there.
    refused("missing key set file", "--jwt-keys", os.path.join(S["tmp"], "absent.json"),
            want=("absent.json",))


def test_malformed_revocation_lines_are_refused_naming_the_line():
    head = "# revoked tokens\n\njti abcdef\n"
    cases = [
        ("unknown keyword", head + "kid k1\n", 4),
        ("jti without value", head + "jti\n", 4),
        ("jti with two values", "jti a b\n", 1),
        ("sub without BEFORE", head + "\n# alice\nsub alice\n", 6),
        ("BEFORE not digits", "sub alice 17e9\n", 1),
        ("BEFORE negative", "sub alice -1\n", 1),
        ("control character", head + "jti a\x01b\n", 4),
    ]
    for what, content, lineno in cases:
        path = write("rev-%s.txt" % what.replace(" ", "_"), content)
        refused("revocation list with " + what, "--jwt-keys", S["keys"], "--jwt-revocations",
                path, want=(path, "line %d" % lineno))
    path = write("rev-env.txt", "sub bob\n")
    refused("JWT_REVOCATIONS_FILE with a malformed line", "--jwt-keys", S["keys"],
            env={"JWT_REVOCATIONS_FILE": path}, want=(path, "line 1"))


def test_good_files_start_and_are_reported_in_the_start_line():
    rev = write("rev-good.txt", "# comments, blanks and both kinds\n\n"
                "jti dead-beef # leaked in a ticket\nsub mallory 1700000000\n")
    with key_server(S["keys"], revocations=rev) as srv:
        line = srv.wait_log(lambda l: l.get("msg") == "product-server serving")
        expect_eq(line.get("jwt_keys"), "k-a,k-b,k-c(verify)", "kids in the start line")
        expect_eq(line.get("jwt_revocations"), 2, "revocation entries in the start line")
        assert "jwt_secret" not in line, line
        text = srv.stderr()
        for jwk in S["jwks"]:
            assert jwk["k"] not in text, "a key's k in the log"
        expect_eq(srv.stop(), 0, "exit status")


# ----------------------------------------------------------------- calls ---

def refused_calls_logged(srv, n):
    """The refused CreateProduct call lines, once n are logged (bounded)."""
    deadline = time.monotonic() + 5 * h.SLOW
    while True:
        lines = [x for x in srv.call_lines("CreateProduct") if x.get("code") != "OK"]
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_unknown_or_missing_kid_is_unknown_kid_and_counted():
    with key_server(S["keys"], "--metrics-listen", "127.0.0.1:0") as srv, h.Api(srv) as api:
        before = tm.scrape(srv)
        expect_eq(before.get(tm.key("product_jwt_keys")), 3.0, "product_jwt_keys")
        for reason in ("unknown_kid", "revoked"):
            assert tm.key("product_auth_rejections_total", reason=reason) in before, reason
        cases = [
            ("no kid", kid_token(S["a"], None, sub="nokid"), "unknown_kid"),
            ("unknown kid", kid_token(S["a"], "k-z", sub="unknown"), "unknown_kid"),
            ("kid of another key", kid_token(S["a"], "k-b", sub="mixed"), "bad_signature"),
            ("foreign secret, unknown kid", kid_token(os.urandom(32), "k-x", sub="forged"),
             "unknown_kid"),
        ]
        for i, (what, tok, _) in enumerate(cases):
            expect_code("UNAUTHENTICATED", lambda: api.create(tok, name="x"), what)
            refused_calls_logged(srv, i + 1)  # lines in call order (wait_call_lines)
        # Every kid that may verify is accepted, the verify-only one too.
        for kid in ("k-a", "k-b", "k-c"):
            expect_code("OK", lambda: api.create(kid_token(S[kid[-1]], kid, sub="ok-" + kid),
                                                 name=kid), "token of " + kid)
        subs = {"nokid", "unknown", "mixed", "forged"}
        lines = refused_calls_logged(srv, len(cases))
        expect_eq([(x.get("code"), x.get("reason"), x.get("auth_error")) for x in lines],
                  [("UNAUTHENTICATED", want, want) for _, _, want in cases], "logged reasons")
        for x in lines:
            assert x.get("sub") not in subs, "sub of an unverified token logged: %r" % x
        after = tm.scrape(srv)
        d = tm.deltas(before, after)
        expect_eq(d.get(tm.key("product_auth_rejections_total", reason="unknown_kid")), 3.0,
                  "unknown_kid counter")
        expect_eq(d.get(tm.key("product_auth_rejections_total", reason="bad_signature")), 1.0,
                  "bad_signature counter")
        expect_eq(after.get(tm.key("product_jwt_keys")), 3.0, "product_jwt_keys after calls")
        expect_eq(srv.stop(), 0, "exit status")


def test_single_secret_mode_reports_one_key_and_ignores_kid():
    with h.Server("--metrics-listen", "127.0.0.1:0") as srv, h.Api(srv) as api:
        expect_eq(tm.scrape(srv).get(tm.key("product_jwt_keys")), 1.0, "single secret gauge")
        expect_code("OK", lambda: api.create(kid_token(srv.secret, "anything"), name="x"),
                    "single secret, any kid header")
        expect_eq(srv.stop(), 0, "exit status")


def mint(*args):
    rc, out, err = h.mint_token(*args)
    return rc, out.strip(), err


def test_mint_token_with_a_key_set():
    with key_server(S["keys"]) as srv, h.Api(srv) as api:
        rc, tok, err = mint("--keys", S["keys"], "--kid", "k-a", "--sub", "m1")
        expect_eq(rc, 0, "mint-token --kid k-a (%s)" % err)
        expect_eq(jwt.get_unverified_header(tok), {"alg": "HS256", "kid": "k-a", "typ": "JWT"},
                  "header")
        claims = jwt.decode(tok, S["a"], algorithms=["HS256"], audience="client",
                            issuer="product-service")
        expect_eq(claims["sub"], "m1", "sub")
        expect_code("OK", lambda: api.create(tok, name="minted"), "minted with k-a")
        # Default: the last key that may sign (k-c is verify-only).
        rc, tok2, err = mint("--keys", S["keys"], "--sub", "m2")
        expect_eq(rc, 0, "mint-token without --kid (%s)" % err)
        expect_eq(jwt.get_unverified_header(tok2).get("kid"), "k-b", "default kid")
        jwt.decode(tok2, S["b"], algorithms=["HS256"], audience="client")
        expect_code("OK", lambda: api.create(tok2, name="default"), "minted with the default")
        # Through the environment.
        rc, tok3, err = h.mint_token("--sub", "m3", "--kid", "k-a",
                                     env={"JWT_KEYS_FILE": S["keys"]})
        expect_eq(rc, 0, "JWT_KEYS_FILE (%s)" % err)
        expect_eq(jwt.get_unverified_header(tok3.strip()).get("kid"), "k-a", "kid via env")
        # Random jti: 128 bits or more, base64url, different on every token.
        jtis = [jwt.decode(t.strip(), options={"verify_signature": False})["jti"]
                for t in (tok, tok2, tok3)]
        for j in jtis:
            raw = base64.urlsafe_b64decode(j + "=" * (-len(j) % 4))
            assert len(raw) >= 16 and "=" not in j, "jti %r" % j
        expect_eq(len(set(jtis)), 3, "distinct jti values")
        # A flag chooses whatever the environment holds for the other kind.
        secret_file = write("mint-secret", "s" * 40)
        for what, args, env, kid in (
                ("--keys with JWT_SECRET set", ["--keys", S["keys"], "--kid", "k-a"],
                 {"JWT_SECRET": "s" * 40}, "k-a"),
                ("--secret-file with JWT_KEYS_FILE set", ["--secret-file", secret_file],
                 {"JWT_KEYS_FILE": S["keys"]}, None)):
            rc, out, err = h.mint_token("--sub", "x", *args, env=env)
            expect_eq(rc, 0, "mint-token with %s: exit (%s)" % (what, err.strip()))
            expect_eq(jwt.get_unverified_header(out.strip()).get("kid"), kid, what)
            if kid is None:
                jwt.decode(out.strip(), "s" * 40, algorithms=["HS256"], audience="client")
        # Refusals: verify-only kid, unknown kid, --kid without a key set,
        # a key set and a secret together with nothing to choose.
        for what, args, env in (
                ("verify-only kid", ["--keys", S["keys"], "--kid", "k-c"], None),
                ("unknown kid", ["--keys", S["keys"], "--kid", "k-z"], None),
                ("--kid without a key set", ["--kid", "k-a"], {"JWT_SECRET": "s" * 40}),
                ("--keys and --secret-file", ["--keys", S["keys"], "--secret-file", secret_file],
                 None),
                ("JWT_KEYS_FILE and JWT_SECRET", [], {"JWT_KEYS_FILE": S["keys"],
                                                      "JWT_SECRET": "s" * 40})):
            rc, out, err = h.mint_token("--sub", "x", *args, env=env)
            expect_eq(rc, 2, "mint-token with %s: exit (%s)" % (what, err.strip()))
            expect_eq(out, "", "mint-token with %s: stdout" % what)
            for jwk in S["jwks"]:
                assert jwk["k"] not in err, "k in mint-token's message"
        expect_eq(srv.stop(), 0, "exit status")


def test_pyjwt_tokens_with_a_kid_verify():
    with key_server(S["keys"]) as srv, h.Api(srv) as api:
        now = int(time.time())
        claims = {"sub": "py", "role": "admin", "iss": "product-service", "aud": "client",
                  "iat": now, "nbf": now, "exp": now + 600, "jti": "py-1"}
        for kid, raw in (("k-a", S["a"]), ("k-b", S["b"]), ("k-c", S["c"])):
            tok = jwt.encode(claims, raw, algorithm="HS256", headers={"kid": kid})
            tok = tok.decode() if isinstance(tok, bytes) else tok
            expect_eq(jwt.get_unverified_header(tok).get("kid"), kid, "PyJWT header")
            pid = expect_code("OK", lambda: api.create(tok, name="py-" + kid),
                              "PyJWT token with kid %s" % kid).id
            expect_code("OK", lambda: api.call("DeleteProduct", token=tok, id=pid),
                        "PyJWT admin token with kid %s" % kid)
        for what, tok in (
                ("no kid", jwt.encode(claims, S["a"], algorithm="HS256")),
                ("kid of another key", jwt.encode(claims, S["a"], algorithm="HS256",
                                                  headers={"kid": "k-b"})),
                ("HS384", jwt.encode(claims, S["a"], algorithm="HS384",
                                     headers={"kid": "k-a"}))):
            tok = tok.decode() if isinstance(tok, bytes) else tok
            expect_code("UNAUTHENTICATED", lambda: api.create(tok, name="x"), "PyJWT " + what)
        expect_eq(srv.stop(), 0, "exit status")


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_a_key_set_and_a_secret_together_are_refused,
            test_broken_key_sets_are_refused_naming_the_key_never_its_k,
            test_malformed_revocation_lines_are_refused_naming_the_line,
            test_good_files_start_and_are_reported_in_the_start_line,
            test_unknown_or_missing_kid_is_unknown_kid_and_counted,
            test_single_secret_mode_reports_one_key_and_ignores_kid,
            test_mint_token_with_a_key_set,
            test_pyjwt_tokens_with_a_kid_verify,
        ])
    finally:
        teardown()
