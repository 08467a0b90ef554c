"""Retry-safe writes over the wire (product-server(8) "Retry-safe writes"):
CreateProduct's request_id (a retry returns the first product; other fields
ALREADY_EXISTS; per caller; deleted: NOT_FOUND; not a UUID: INVALID_ARGUMENT),
the etag every product carries (moves on every update and only then; a
stale one is ABORTED and changes nothing; empty is unconditional), the
races (8 creates with one request id, 8 updates with one etag, 50 rounds, on
a SQLite server), a retry after kill -9 on SQLite, and product-client's
--request-id and --etag."""

import json
import os
import signal
import uuid

import harness as h
import retry_races
from harness import expect_code, expect_eq

S = {}


def setup():
    S["srv"] = h.Server().start()
    S["api"] = h.Api(S["srv"])
    S["alice"] = h.make_token(S["srv"].secret, sub="alice")
    S["bob"] = h.make_token(S["srv"].secret, sub="bob")
    S["admin"] = h.make_token(S["srv"].secret, sub="root", role="admin")


def count(api, name):
    return api.call("ListProducts", filter='name = "%s"' % name).total_size


def test_a_repeated_request_id_returns_the_first_product_and_creates_nothing():
    api, rid = S["api"], str(uuid.uuid4())
    name = "retry-" + rid[:8]
    first = api.call("CreateProduct", token=S["alice"], name=name, price=3, categories=["a"],
                     request_id=rid)
    again = api.call("CreateProduct", token=S["alice"], name=name, price=3, categories=["a"],
                     request_id=rid)
    expect_eq(again, first, "the retry's reply")
    expect_eq(count(api, name), 1, "products created")
    # The same UUID in capitals names the same request.
    expect_eq(api.call("CreateProduct", token=S["alice"], name=name, price=3, categories=["a"],
                       request_id=rid.upper()).id, first.id, "upper-case request id")
    # Without a request id, the same call creates another product.
    api.call("CreateProduct", token=S["alice"], name=name, price=3, categories=["a"])
    expect_eq(count(api, name), 2, "products after a create without request id")


def test_the_retry_returns_the_product_as_it_is_now_and_not_found_once_deleted():
    api, rid = S["api"], str(uuid.uuid4())
    first = api.call("CreateProduct", token=S["alice"], name="now-" + rid[:8], request_id=rid)
    upd = api.call("UpdateProduct", token=S["alice"], id=first.id, description="changed")
    again = api.call("CreateProduct", token=S["alice"], name="now-" + rid[:8], request_id=rid)
    expect_eq(again, upd, "the retry returns the updated product")
    api.call("DeleteProduct", token=S["admin"], id=first.id)
    expect_code("NOT_FOUND", lambda: api.call("CreateProduct", token=S["alice"],
                                              name="now-" + rid[:8], request_id=rid),
                "retry after the delete")
    expect_eq(count(api, "now-" + rid[:8]), 0, "nothing created by the retry")


def test_a_request_id_reused_with_other_fields_is_already_exists():
    api, rid = S["api"], str(uuid.uuid4())
    name = "reuse-" + rid[:8]
    api.call("CreateProduct", token=S["alice"], name=name, price=1, request_id=rid)
    for fields in ({"name": name, "price": 2}, {"name": name + "x", "price": 1},
                   {"name": name, "price": 1, "categories": ["c"]},
                   {"name": name, "price": 1, "description": "d"}):
        expect_code("ALREADY_EXISTS", lambda: api.call("CreateProduct", token=S["alice"],
                                                       request_id=rid, **fields), repr(fields))
    expect_eq(count(api, name), 1, "products")


def test_request_ids_are_per_caller():
    api, rid = S["api"], str(uuid.uuid4())
    name = "caller-" + rid[:8]
    a = api.call("CreateProduct", token=S["alice"], name=name, request_id=rid)
    b = api.call("CreateProduct", token=S["bob"], name=name, request_id=rid)
    assert a.id != b.id, "two callers with one request id got one product"
    expect_eq(count(api, name), 2, "products")


def test_a_request_id_that_is_not_a_uuid_is_invalid_argument():
    api, good = S["api"], str(uuid.uuid4())
    for bad in ("x", "not-a-uuid", good[:-1], good + "0", "{%s}" % good[:34],
                good.replace("-", ""), good[:8] + "_" + good[9:], "g" + good[1:]):
        expect_code("INVALID_ARGUMENT", lambda: api.call("CreateProduct", token=S["alice"],
                                                         name="bad-rid", request_id=bad), bad)
    expect_eq(count(api, "bad-rid"), 0, "products created with a bad request id")


def test_every_product_carries_an_etag_that_moves_on_every_update_and_only_then():
    api = S["api"]
    p = api.create(S["alice"], name="etag-" + uuid.uuid4().hex[:8])
    assert p.etag and len(p.etag.encode()) <= 64, "etag %r" % p.etag
    expect_eq(api.call("GetProduct", id=p.id).etag, p.etag, "get after create")
    listed = api.call("ListProducts", filter='name = "%s"' % p.name).products
    expect_eq([x.etag for x in listed], [p.etag], "list")
    u1 = api.call("UpdateProduct", token=S["alice"], id=p.id, price=5)
    u2 = api.call("UpdateProduct", token=S["alice"], id=p.id, price=5)  # same value
    assert len({p.etag, u1.etag, u2.etag}) == 3, "etags %r" % [p.etag, u1.etag, u2.etag]
    expect_eq(api.call("GetProduct", id=p.id).etag, u2.etag, "get after updates")


def test_a_stale_etag_is_aborted_and_changes_nothing():
    api = S["api"]
    p = api.create(S["alice"], name="cond-" + uuid.uuid4().hex[:8], price=1)
    u = api.call("UpdateProduct", token=S["alice"], id=p.id, price=2, etag=p.etag)
    expect_eq(u.price, 2.0, "update with the current etag")
    for etag in (p.etag, "garbage", "x" * 65, u.etag.upper() + "0"):
        expect_code("ABORTED", lambda: api.call("UpdateProduct", token=S["alice"], id=p.id,
                                                price=3, etag=etag), "update etag %r" % etag)
        expect_code("ABORTED", lambda: api.call("DeleteProduct", token=S["admin"], id=p.id,
                                                etag=etag), "delete etag %r" % etag)
    expect_eq(api.call("GetProduct", id=p.id), u, "after the refused writes")
    # Empty: unconditional, as before.
    u2 = api.call("UpdateProduct", token=S["alice"], id=p.id, price=4, etag="")
    expect_eq(u2.price, 4.0, "update without etag")
    api.call("DeleteProduct", token=S["admin"], id=p.id, etag=u2.etag)
    expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=p.id), "after the delete")
    for etag in (u2.etag, "garbage"):
        expect_code("NOT_FOUND", lambda: api.call("UpdateProduct", token=S["alice"], id=p.id,
                                                  price=3, etag=etag), "unknown id")


def test_product_client_request_id_and_etag():
    srv, rid = S["srv"], str(uuid.uuid4())
    name = "cli-" + rid[:8]
    rc, out1, err = h.run_client(srv, "create", "--name", name, "--request-id", rid,
                                 token=S["alice"])
    expect_eq(rc, 0, "create: " + err)
    rc, out2, err = h.run_client(srv, "create", "--name", name, "--request-id", rid,
                                 token=S["alice"])
    expect_eq((rc, out2), (0, out1), "the retried create prints the first product")
    p = json.loads(out1)
    assert p.get("etag"), "no etag printed: %r" % out1
    rc, out, err = h.run_client(srv, "create", "--name", name, "--request-id", "nope",
                                token=S["alice"])
    expect_eq(rc, 1, "bad request id exit status")
    assert "INVALID_ARGUMENT" in err, err
    rc, out, err = h.run_client(srv, "update", p["id"], "--price", "7", "--etag", p["etag"],
                                token=S["alice"])
    expect_eq(rc, 0, "conditional update: " + err)
    u = json.loads(out)
    assert u["etag"] != p["etag"], "etag did not move"
    rc, out, err = h.run_client(srv, "update", p["id"], "--price", "8", "--etag", p["etag"],
                                token=S["alice"])
    expect_eq(rc, 1, "stale update exit status")
    assert err.startswith("error: ABORTED"), err
    rc, out, err = h.run_client(srv, "delete", p["id"], "--etag", p["etag"], token=S["admin"])
    expect_eq(rc, 1, "stale delete exit status")
    assert err.startswith("error: ABORTED"), err
    rc, out, err = h.run_client(srv, "delete", p["id"], "--etag", u["etag"], token=S["admin"])
    expect_eq(rc, 0, "delete with the current etag: " + err)
    rc, out, err = h.run_client(srv, "get", "--etag", "x", p["id"])
    expect_eq(rc, 2, "get has no --etag")


def test_races_on_one_sqlite_server():
    with h.Server(store="sqlite:" + os.path.join(S["srv"].tmp, "race.db"),
                  secret=S["srv"].secret) as srv:
        api = h.Api(srv)
        try:
            n = retry_races.creates_with_one_request_id([api], S["alice"], "sqlite")
            applied, aborted = retry_races.updates_with_one_etag([api], S["alice"], "sqlite")
        finally:
            api.close()
    print("  one SQLite server: %d rounds x %d creates with one request id -> 1 product each; "
          "%d rounds x %d updates with one etag -> %d applied, %d ABORTED" % (
              n, retry_races.THREADS, applied, retry_races.THREADS, applied, aborted))


def test_a_retry_after_kill_9_returns_the_first_product():
    db = "sqlite:" + os.path.join(S["srv"].tmp, "kill9.db")
    rid = str(uuid.uuid4())
    name = "kill9-" + rid[:8]
    srv = h.Server(store=db, secret=S["srv"].secret).start()
    try:
        with h.Api(srv) as api:
            first = api.call("CreateProduct", token=S["alice"], name=name, price=9,
                             request_id=rid)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=30)
        expect_eq(srv.proc.returncode, -signal.SIGKILL, "killed")
    finally:
        srv.cleanup()
    srv = h.Server(store=db, secret=S["srv"].secret).start()
    try:
        with h.Api(srv) as api:
            again = api.call("CreateProduct", token=S["alice"], name=name, price=9,
                             request_id=rid)
            expect_eq(again, first, "the retry after kill -9")
            expect_eq(count(api, name), 1, "products")
    finally:
        srv.cleanup()


def cleanup():
    S["api"].close()
    expect_eq(S["srv"].stop(), 0, "server exit status")
    S["srv"].cleanup()


if __name__ == "__main__":
    setup()
    h.main([test_a_repeated_request_id_returns_the_first_product_and_creates_nothing,
            test_the_retry_returns_the_product_as_it_is_now_and_not_found_once_deleted,
            test_a_request_id_reused_with_other_fields_is_already_exists,
            test_request_ids_are_per_caller,
            test_a_request_id_that_is_not_a_uuid_is_invalid_argument,
            test_every_product_carries_an_etag_that_moves_on_every_update_and_only_then,
            test_a_stale_etag_is_aborted_and_changes_nothing,
            test_product_client_request_id_and_etag,
            test_races_on_one_sqlite_server,
            test_a_retry_after_kill_9_returns_the_first_product,
            cleanup])
