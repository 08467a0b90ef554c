"""Authentication and authorization over the wire (product-server(8)
"Authentication and authorization"): every ProductService method x {no
token, malformed, expired, user, admin}; duplicate and odd authorization
values; interoperability with PyJWT in both directions; status messages
never echo the token."""

import time

import jwt  # PyJWT (Debian python3-jwt)

import harness as h
from harness import expect_code, expect_eq

S = {}


def setup():
    srv = S["srv"] = h.Server().start()
    S["api"] = h.Api(srv)
    sec = srv.secret
    S["tok"] = {
        "none": None,
        "malformed": "not-a-jwt",
        "expired": h.make_token(sec, sub="old", role="admin", ttl=-3600),
        "user": h.make_token(sec, sub="u1", role="user"),
        "admin": h.make_token(sec, sub="a1", role="admin"),
    }


# method -> expected code per token kind
MATRIX = {
    "GetProduct": dict(none="OK", malformed="OK", expired="OK", user="OK", admin="OK"),
    "ListProducts": dict(none="OK", malformed="OK", expired="OK", user="OK", admin="OK"),
    "CreateProduct": dict(none="UNAUTHENTICATED", malformed="UNAUTHENTICATED",
                          expired="UNAUTHENTICATED", user="OK", admin="OK"),
    "UpdateProduct": dict(none="UNAUTHENTICATED", malformed="UNAUTHENTICATED",
                          expired="UNAUTHENTICATED", user="OK", admin="OK"),
    "DeleteProduct": dict(none="UNAUTHENTICATED", malformed="UNAUTHENTICATED",
                          expired="UNAUTHENTICATED", user="PERMISSION_DENIED", admin="OK"),
}


def request_for(method, pid):
    api = S["api"]
    if method == "CreateProduct":
        return api.request(method, name="authz", price=1.0)
    if method == "UpdateProduct":
        return api.request(method, id=pid, name="renamed")
    if method == "ListProducts":
        return api.request(method)
    return api.request(method, id=pid)


def fresh_product():
    return S["api"].create(S["tok"]["admin"], name="target").id


def test_method_x_token_matrix():
    api = S["api"]
    for method, row in MATRIX.items():
        for kind, want in row.items():
            pid = fresh_product()
            tok = S["tok"][kind]
            details = expect_code(want, lambda: api.call(method, request_for(method, pid),
                                                         token=tok),
                                  "%s with %s token" % (method, kind))
            if want != "OK" and tok:
                assert tok not in (details or ""), "status message echoes the token"
            if method == "DeleteProduct":
                # Refused deletes left the product; the allowed one removed it.
                expect_eq(api.code("GetProduct", id=pid).name,
                          "NOT_FOUND" if want == "OK" else "OK",
                          "product after DeleteProduct with %s token" % kind)


def auth_md(*values):
    return [("authorization", v) for v in values]


def test_two_authorization_entries_are_unauthenticated():
    api = S["api"]
    adm, usr = S["tok"]["admin"], S["tok"]["user"]
    for vals in (("Bearer " + adm, "Bearer " + adm), ("Bearer " + usr, "Bearer " + adm),
                 ("Bearer " + adm, "")):
        for method in ("CreateProduct", "UpdateProduct", "DeleteProduct"):
            pid = fresh_product()
            expect_code("UNAUTHENTICATED", lambda: api.call(
                method, request_for(method, pid), metadata=auth_md(*vals)),
                "%s with two authorization entries" % method)


def test_schemes_and_odd_values():
    api = S["api"]
    adm = S["tok"]["admin"]
    req = api.request("CreateProduct", name="s")
    bad = ["Basic xyz", "Basic " + adm, adm, "Bearer", "Bearer ", "Bearer  ", "Bearer" + adm,
           "Token " + adm, "Bearer " + adm + ".x",
           "Bearer " + adm + "=", "Bearer " + adm.replace("-", "+").replace("_", "/") + "+/",
           "Bearer a.b.c", "Bearer ..", "Bearer " + adm[:-1]]
    for v in bad:
        expect_code("UNAUTHENTICATED",
                    lambda: api.call("CreateProduct", req, metadata=auth_md(v)),
                    "authorization %r" % v[:50])
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        expect_code("OK", lambda: api.call("CreateProduct", req,
                                           metadata=auth_md(scheme + " " + adm)),
                    "scheme %r" % scheme)


def test_100kb_authorization_value_is_unauthenticated_and_server_keeps_serving():
    api = S["api"]
    req = api.request("CreateProduct", name="big")
    failures = []
    for v in ("Bearer " + "a" * 100 * 1024, "Bearer " + S["tok"]["admin"] + "A" * 100 * 1024,
              "x" * 100 * 1024):
        # Each on its own connection: one the server drops must not fail
        # the checks that follow.
        with h.Api(S["srv"]) as big:
            try:
                expect_code("UNAUTHENTICATED",
                            lambda: big.call("CreateProduct", req, metadata=auth_md(v)),
                            "%d-byte authorization value" % len(v))
            except AssertionError as e:
                failures.append(str(e))
            # The same connection still works for a normal call.
            code, details, _ = h.status_of(
                lambda: big.call("CreateProduct", req, token=S["tok"]["user"]))
            if code.name != "OK":
                failures.append("a normal call on the same connection after a %d-byte "
                                "authorization value: %s (%r)" % (len(v), code.name, details))
    expect_code("OK", lambda: api.call("CreateProduct", req, token=S["tok"]["user"]),
                "a normal call afterwards")
    expect_eq(api.health_check("").status, 1, "health after the big header")
    assert not failures, "; ".join(failures)


def test_pyjwt_minted_token_is_accepted():
    api = S["api"]
    now = int(time.time())
    claims = {"sub": "py", "role": "admin", "iss": "product-service", "aud": "client",
              "iat": now, "nbf": now, "exp": now + 600}
    tok = jwt.encode(claims, S["srv"].secret, algorithm="HS256")
    if isinstance(tok, bytes):
        tok = tok.decode()
    pid = api.create(tok, name="pyjwt").id
    api.call("DeleteProduct", token=tok, id=pid)
    # aud as an array that contains the audience.
    claims["aud"] = ["other", "client"]
    tok2 = jwt.encode(claims, S["srv"].secret, algorithm="HS256")
    expect_code("OK", lambda: api.create(tok2, name="aud-array"), "aud array")
    # Same claims, other algorithm or wrong issuer: refused.
    for bad in (jwt.encode(claims, S["srv"].secret, algorithm="HS384"),
                jwt.encode(dict(claims, iss="someone-else"), S["srv"].secret, algorithm="HS256"),
                jwt.encode(dict(claims, aud="nobody"), S["srv"].secret, algorithm="HS256")):
        expect_code("UNAUTHENTICATED", lambda: api.create(bad, name="x"), "PyJWT bad token")


def test_mint_token_output_verifies_under_pyjwt():
    sec = S["srv"].secret
    rc, out, err = h.mint_token("--sub", "minted", "--role", "admin", "--ttl", "15m", secret=sec)
    expect_eq(rc, 0, "mint-token exit (%s)" % err)
    tok = out.strip()
    claims = jwt.decode(tok, sec, algorithms=["HS256"], audience="client",
                        issuer="product-service")
    expect_eq((claims["sub"], claims["user_id"], claims["role"]), ("minted", "minted", "admin"),
              "minted claims")
    for k in ("iat", "nbf", "exp"):
        assert isinstance(claims[k], int), "%s is not an integer: %r" % (k, claims[k])
    assert abs(claims["exp"] - claims["iat"] - 900) <= 1, "ttl 15m: %r" % claims
    expect_eq(jwt.get_unverified_header(tok).get("alg"), "HS256", "alg")
    # The server accepts it too.
    pid = S["api"].create(tok, name="minted").id
    S["api"].call("DeleteProduct", token=tok, id=pid)
    # Without --role: no role claim, and DeleteProduct is refused.
    rc, out, err = h.mint_token("--sub", "plain", secret=sec)
    plain = out.strip()
    claims = jwt.decode(plain, sec, algorithms=["HS256"], audience="client",
                        issuer="product-service")
    assert "role" not in claims, "role claim without --role: %r" % claims
    expect_code("PERMISSION_DENIED", lambda: S["api"].call("DeleteProduct", token=plain,
                                                           id=pid or "x"), "no role")


def test_status_messages_never_echo_the_token():
    api = S["api"]
    sec = S["srv"].secret
    toks = [S["tok"]["expired"], h.make_token("w" * 40, sub="forged"),
            h.make_token(sec, sub="x", header={"alg": "HS256", "crit": ["exp"]}),
            h.make_token(sec, sub=""), S["tok"]["malformed"]]
    for t in toks:
        d = expect_code("UNAUTHENTICATED", lambda: api.create(t, name="e"), "invalid token")
        assert t not in (d or "") and t.split(".")[-1] not in (d or ""), "echoed: %r" % d
    d = expect_code("PERMISSION_DENIED", lambda: api.call(
        "DeleteProduct", token=S["tok"]["user"], id=fresh_product()), "user delete")
    assert S["tok"]["user"] not in (d or ""), "echoed: %r" % d


def test_server_exits_zero():
    S["api"].close()
    expect_eq(S["srv"].stop(), 0, "exit status after SIGTERM")


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_method_x_token_matrix,
            test_two_authorization_entries_are_unauthenticated,
            test_schemes_and_odd_values,
            test_100kb_authorization_value_is_unauthenticated_and_server_keeps_serving,
            test_pyjwt_minted_token_is_accepted,
            test_mint_token_output_verifies_under_pyjwt,
            test_status_messages_never_echo_the_token,
            test_server_exits_zero,
        ])
    finally:
        S["srv"].cleanup()
