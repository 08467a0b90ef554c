"""Every row of product-server(8) "Statuses for bad input", over the wire with
grpcio, each with its exact status; bodies that grpcio would refuse to build
(invalid UTF-8, garbage) are handcrafted protobuf bytes. Afterwards the
server still serves and exits 0 on SIGTERM."""

import math

import harness as h
from harness import expect_code, expect_eq, pb_string, pb_varint

S = {}
UNKNOWN_ID = "7f0c2a4e-1111-4222-8333-944455556666"
BAD_UTF8 = [b"\xff\xfe", b"ok\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]


def setup():
    S["srv"] = h.Server().start()
    S["api"] = h.Api(S["srv"])
    S["user"] = h.make_token(S["srv"].secret, sub="alice", role="user")
    S["admin"] = h.make_token(S["srv"].secret, sub="root", role="admin")
    S["pid"] = S["api"].create(S["user"], name="existing", description="d", price=1.0,
                               categories=["c"]).id


def auth(tok):
    return [("authorization", "Bearer " + tok)]


def raw(method, body, tok=None):
    api = S["api"]
    return lambda: api.raw(h.SERVICE + method, body, metadata=auth(tok) if tok else ())


def create(tok=None, **fields):
    api = S["api"]
    return lambda: api.call("CreateProduct", token=tok or S["user"], **fields)


def update(**fields):
    api = S["api"]
    fields.setdefault("id", S["pid"])
    return lambda: api.call("UpdateProduct", token=S["user"], **fields)


def test_empty_name_on_create():
    expect_code("INVALID_ARGUMENT", create(name=""), "empty name")
    expect_code("INVALID_ARGUMENT", create(description="no name", price=1), "no name")


def test_negative_nan_and_infinite_price():
    for price in (-1.0, -0.01, -1e308, float("nan"), float("inf"), float("-inf")):
        expect_code("INVALID_ARGUMENT", create(name="p", price=price), "create price %r" % price)
        expect_code("INVALID_ARGUMENT", update(price=price), "update price %r" % price)
        expect_code("INVALID_ARGUMENT", update(price=price, update_mask=["price"]),
                    "masked update price %r" % price)
    # A NaN with a payload and a negative NaN, as raw doubles.
    for bits in (b"\x01\x00\x00\x00\x00\x00\xf8\x7f", b"\x00\x00\x00\x00\x00\x00\xf8\xff"):
        body = pb_string(1, b"n") + b"\x19" + bits  # field 3, wire type 1
        expect_code("INVALID_ARGUMENT", raw("CreateProduct", body, S["user"]), "raw NaN price")
    # Zero and large finite prices are fine.
    for price in (0.0, 1e308, 5e-324):
        p = S["api"].create(S["user"], name="fine", price=price)
        assert math.isfinite(p.price) and p.price == price, "price %r stored as %r" % (price,
                                                                                       p.price)


def test_empty_id_on_get_update_delete():
    api = S["api"]
    expect_code("INVALID_ARGUMENT", lambda: api.call("GetProduct", id=""), "get")
    expect_code("INVALID_ARGUMENT", update(id="", name="x"), "update")
    expect_code("INVALID_ARGUMENT", update(id="", name="x", update_mask=["name"]),
                "masked update")
    expect_code("INVALID_ARGUMENT",
                lambda: api.call("DeleteProduct", token=S["admin"], id=""), "delete")
    # An empty body is a valid message with an empty id.
    expect_code("INVALID_ARGUMENT", raw("GetProduct", b""), "get, empty body")


def test_invalid_utf8_in_every_string_field():
    pid = S["pid"].encode()
    for bad in BAD_UTF8:
        cases = [
            ("CreateProduct name", "CreateProduct", pb_string(1, bad), S["user"]),
            ("CreateProduct description", "CreateProduct",
             pb_string(1, b"n") + pb_string(2, bad), S["user"]),
            ("CreateProduct categories", "CreateProduct",
             pb_string(1, b"n") + pb_string(4, b"ok") + pb_string(4, bad), S["user"]),
            ("GetProduct id", "GetProduct", pb_string(1, bad), None),
            ("UpdateProduct id", "UpdateProduct", pb_string(1, bad) + pb_string(2, b"n"),
             S["user"]),
            ("UpdateProduct name", "UpdateProduct", pb_string(1, pid) + pb_string(2, bad),
             S["user"]),
            ("UpdateProduct description", "UpdateProduct",
             pb_string(1, pid) + pb_string(3, bad), S["user"]),
            ("UpdateProduct categories", "UpdateProduct",
             pb_string(1, pid) + pb_string(5, bad), S["user"]),
            ("UpdateProduct update_mask.paths", "UpdateProduct",
             pb_string(1, pid) + pb_string(6, pb_string(1, bad)), S["user"]),
            ("DeleteProduct id", "DeleteProduct", pb_string(1, bad), S["admin"]),
            ("ListProducts page_token", "ListProducts", pb_string(2, bad), None),
            ("ListProducts filter", "ListProducts", pb_string(3, bad), None),
        ]
        for what, method, body, tok in cases:
            expect_code("INVALID_ARGUMENT", raw(method, body, tok), "%s = %r" % (what, bad))
    # The product was not touched by any of it.
    p = S["api"].call("GetProduct", id=S["pid"])
    expect_eq((p.name, p.description, list(p.categories)), ("existing", "d", ["c"]),
              "product after refused updates")


def test_name_description_and_category_limits():
    ok = lambda f: expect_code("OK", f)  # noqa: E731
    ok(create(name="n" * 256))
    ok(create(name="\u00e9" * 128))  # 256 bytes in 128 characters
    expect_code("INVALID_ARGUMENT", create(name="n" * 257), "name 257 bytes")
    expect_code("INVALID_ARGUMENT", create(name="\u00e9" * 128 + "a"), "name 257 bytes, UTF-8")
    ok(create(name="d", description="d" * 4096))
    expect_code("INVALID_ARGUMENT", create(name="d", description="d" * 4097), "description 4097")
    ok(create(name="c", categories=["c%d" % i for i in range(32)]))
    expect_code("INVALID_ARGUMENT", create(name="c", categories=["c%d" % i for i in range(33)]),
                "33 categories")
    ok(create(name="c", categories=["x" * 64]))
    ok(create(name="c", categories=["\u20ac" * 21 + "x"]))  # 64 bytes
    expect_code("INVALID_ARGUMENT", create(name="c", categories=["x" * 65]), "category 65 bytes")
    expect_code("INVALID_ARGUMENT", create(name="c", categories=["ok", ""]), "empty category")
    # The same limits on update, with and without a mask.
    ok(update(name="n" * 256))
    expect_code("INVALID_ARGUMENT", update(name="n" * 257), "update name 257")
    expect_code("INVALID_ARGUMENT", update(description="d" * 4097), "update description 4097")
    expect_code("INVALID_ARGUMENT", update(categories=["c%d" % i for i in range(33)]),
                "update 33 categories")
    expect_code("INVALID_ARGUMENT", update(categories=["x" * 65]), "update category 65")
    expect_code("INVALID_ARGUMENT", update(categories=[""]), "update empty category")
    expect_code("INVALID_ARGUMENT", update(categories=[""], update_mask=["categories"]),
                "masked update empty category")
    expect_code("INVALID_ARGUMENT", update(name="n" * 257, update_mask=["name"]),
                "masked update name 257")


def test_garbage_bodies_are_invalid_argument():
    bodies = {
        "ff ff ff": b"\xff\xff\xff",
        "truncated varint": b"\x08\x80",
        "truncated length": pb_string(1, b"abcdef")[:-3],
        "field number 0": b"\x02\x00",
        "end group without start": b"\x0c",
        "wire type 7": b"\x0f",
        "varint over 10 bytes": b"\x08" + b"\xff" * 11,
    }
    for what, body in bodies.items():
        for method, tok in (("CreateProduct", S["user"]), ("GetProduct", None),
                            ("UpdateProduct", S["user"]), ("DeleteProduct", S["admin"]),
                            ("ListProducts", None)):
            expect_code("INVALID_ARGUMENT", raw(method, body, tok), "%s to %s" % (what, method))


def test_unknown_and_deleted_id_are_not_found():
    api = S["api"]
    expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=UNKNOWN_ID), "get unknown")
    expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="not-a-uuid"), "get non-uuid")
    expect_code("NOT_FOUND", update(id=UNKNOWN_ID, name="x"), "update unknown")
    expect_code("NOT_FOUND", lambda: api.call("DeleteProduct", token=S["admin"], id=UNKNOWN_ID),
                "delete unknown")
    p = api.create(S["user"], name="gone")
    api.call("DeleteProduct", token=S["admin"], id=p.id)
    expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=p.id), "get deleted")
    expect_code("NOT_FOUND", update(id=p.id, name="x"), "update deleted")
    expect_code("NOT_FOUND", lambda: api.call("DeleteProduct", token=S["admin"], id=p.id),
                "delete deleted")


def test_bad_page_token_and_negative_page_size():
    api = S["api"]
    for tok in ("x", "AAAA", "not a token at all", "e30"):
        expect_code("INVALID_ARGUMENT", lambda: api.call("ListProducts", page_token=tok),
                    "page token %r" % tok)
    expect_code("INVALID_ARGUMENT", lambda: api.call("ListProducts", page_size=-1), "size -1")
    expect_code("INVALID_ARGUMENT", raw("ListProducts", pb_varint(1, -1)), "raw size -1")


def test_request_over_4_mib_is_resource_exhausted():
    big = pb_string(1, b"a" * (5 * 1024 * 1024))
    expect_code("RESOURCE_EXHAUSTED", raw("GetProduct", big), "5 MiB GetProduct")
    expect_code("RESOURCE_EXHAUSTED", raw("CreateProduct", big, S["user"]), "5 MiB CreateProduct")
    just_over = pb_string(1, b"a" * (4 * 1024 * 1024))
    expect_code("RESOURCE_EXHAUSTED", raw("GetProduct", just_over), "4 MiB + 5 bytes")
    # Just under the limit is decoded (and then refused for its content).
    under = pb_string(1, b"a" * (4 * 1024 * 1024 - 16))
    expect_code("NOT_FOUND", raw("GetProduct", under), "just under 4 MiB")


def test_unknown_methods_are_unimplemented():
    api = S["api"]
    for path in ("/product.ProductService/Nope", "/x.Y/Z", "/product.ProductService/getProduct",
                 "/product.ProductService/", "/grpc.health.v1.Health/Nope"):
        expect_code("UNIMPLEMENTED", lambda: api.raw(path, b""), path)
        expect_code("UNIMPLEMENTED", lambda: api.raw(path, b"\x0a\x01x",
                                                     metadata=auth(S["admin"])), path + " (body)")


def test_server_still_serves_and_exits_zero():
    api = S["api"]
    p = api.call("GetProduct", id=S["pid"])
    expect_eq(p.id, S["pid"], "GetProduct after all the bad input")
    q = api.create(S["user"], name="after")
    expect_eq(api.call("GetProduct", id=q.id), q, "create + get after the bad input")
    api.close()
    expect_eq(S["srv"].stop(), 0, "exit status after SIGTERM")
    bad = [l for l in S["srv"].call_lines() if l.get("code") == "INTERNAL"]
    expect_eq(bad, [], "calls answered INTERNAL")


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_empty_name_on_create,
            test_negative_nan_and_infinite_price,
            test_empty_id_on_get_update_delete,
            test_invalid_utf8_in_every_string_field,
            test_name_description_and_category_limits,
            test_garbage_bodies_are_invalid_argument,
            test_unknown_and_deleted_id_are_not_found,
            test_bad_page_token_and_negative_page_size,
            test_request_over_4_mib_is_resource_exhausted,
            test_unknown_methods_are_unimplemented,
            test_server_still_serves_and_exits_zero,
        ])
    finally:
        S["srv"].cleanup()
