"""ListProducts page tokens in key-set mode follow the keys in force
(docs/key-rotation.md, "Page tokens"), against the real product-server
reloading its key file:

- under {k1, k2} a page token is minted with k2 (the last key that may
  sign) and names it; after the file changes to {k2, k3} the same token
  still gives the next page, and once k2 is gone ({k3}) it is
  INVALID_ARGUMENT like any token the server did not issue;
- a page token made outside the server with k1's page key (the leaked-key
  case: the layout and derivation are reimplemented here from
  auth/page_token.c) is accepted while k1 is in the set and refused
  as soon as a reload removes k1, without a restart;
- in the single-secret mode the token keeps its original format."""

import base64
import hashlib
import hmac
import json
import os
import shutil
import struct
import tempfile

import harness as h
from harness import expect_code, expect_eq

S = {}
LABEL = b"product-service page-token v1"


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key(kid):
    return {"kty": "oct", "kid": kid, "alg": "HS256", "k": b64url(S[kid])}


def put_keys(*kids):
    """Replaces the key file atomically (temporary file + rename)."""
    tmp = S["keys"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"keys": [key(k) for k in kids]}, f)
    os.rename(tmp, S["keys"])


def wait_in_force(srv, *kids):
    want = ",".join(kids)
    srv.wait_log(lambda l: l.get("msg") == "key set reloaded" and l.get("jwt_keys") == want)


def forge(secret, kid, created_us, pid, flt=""):
    """A key-set page token as the server makes one, under secret's page key."""
    pk = hmac.new(secret, LABEL, hashlib.sha256).digest()
    raw = (bytes([2]) + hashlib.sha256(kid.encode()).digest()[:8] + struct.pack(">q", created_us)
           + pid.encode().ljust(36, b"\0") + hashlib.sha256(flt.encode()).digest()[:16])
    return b64url(raw + hmac.new(pk, raw, hashlib.sha256).digest()[:16])


def setup():
    S["tmp"] = tempfile.mkdtemp(prefix="product-key-paging-")
    S["keys"] = os.path.join(S["tmp"], "keys.json")
    for kid in ("k1", "k2", "k3"):
        S[kid] = os.urandom(32)


def teardown():
    shutil.rmtree(S["tmp"], ignore_errors=True)


def page(api, tok, page_token):
    return api.call("ListProducts", token=tok, page_size=1, page_token=page_token)


def test_page_tokens_follow_a_key_rotation():
    put_keys("k1", "k2")
    srv = h.Server("--jwt-keys", S["keys"])
    srv.env.pop("JWT_SECRET", None)  # a key set and a secret together are refused
    with srv, h.Api(srv) as api:
        tok = h.make_token(S["k2"], header={"alg": "HS256", "kid": "k2", "typ": "JWT"})
        for i in range(4):
            api.create(tok, name="p%d" % i)
        made = [p.id for p in api.call("ListProducts", token=tok, page_size=10).products]
        expect_eq(len(made), 4, "products")
        first = page(api, tok, "")
        expect_eq([p.id for p in first.products], made[:1], "page 1")
        t1 = first.next_page_token
        raw = unb64url(t1)
        expect_eq((len(t1), raw[0]), (114, 2), "key-set token: length and version")
        expect_eq(raw[1:9], hashlib.sha256(b"k2").digest()[:8], "the token names k2")
        us, pid = struct.unpack(">q", raw[9:17])[0], raw[17:53].rstrip(b"\0").decode()
        expect_eq(pid, made[0], "the cursor in the token")
        # Made outside the server: the same token, and one under k1's key.
        expect_eq(forge(S["k2"], "k2", us, pid), t1, "the server's token, rebuilt")
        by_k1 = forge(S["k1"], "k1", us, pid)
        expect_eq([p.id for p in page(api, tok, by_k1).products], made[1:2], "k1's, k1 in force")

        put_keys("k2", "k3")  # k1 withdrawn, k3 minting
        wait_in_force(srv, "k2", "k3")
        tok3 = h.make_token(S["k3"], header={"alg": "HS256", "kid": "k3", "typ": "JWT"})
        second = page(api, tok3, t1)
        expect_eq([p.id for p in second.products], made[1:2], "page 2 with the k2 token")
        t2 = second.next_page_token
        expect_eq(unb64url(t2)[1:9], hashlib.sha256(b"k3").digest()[:8], "now minted with k3")
        expect_code("INVALID_ARGUMENT", lambda: page(api, tok3, by_k1), "k1's after removal")

        put_keys("k3")  # k2 withdrawn
        wait_in_force(srv, "k3")
        expect_code("INVALID_ARGUMENT", lambda: page(api, tok3, t1), "the k2 token after removal")
        expect_eq([p.id for p in page(api, tok3, t2).products], made[2:3], "page 3, k3 token")
        expect_eq(srv.stop(), 0, "exit status")


def test_single_secret_tokens_keep_their_format():
    with h.Server() as srv, h.Api(srv) as api:
        tok = h.make_token(srv.secret)
        for i in range(2):
            api.create(tok, name="p%d" % i)
        made = [p.id for p in api.call("ListProducts", token=tok, page_size=10).products]
        t = page(api, tok, "").next_page_token
        raw = unb64url(t)
        expect_eq((len(t), raw[0]), (103, 1), "single-secret token: length and version")
        pk = hmac.new(srv.secret.encode(), LABEL, hashlib.sha256).digest()
        expect_eq(raw[61:], hmac.new(pk, raw[:61], hashlib.sha256).digest()[:16],
                  "MAC under the secret's page key")
        expect_eq([p.id for p in page(api, tok, t).products], made[1:2], "page 2")
        expect_eq(srv.stop(), 0, "exit status")


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_page_tokens_follow_a_key_rotation,
            test_single_secret_tokens_keep_their_format,
        ])
    finally:
        teardown()
