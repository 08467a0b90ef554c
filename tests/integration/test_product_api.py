"""ProductService over the wire with grpcio: every RPC's happy path, the
seed's update semantics, field masks, delete, and ListProducts paging,
ordering, page tokens and filters (product-server(8) "The API", "ListProducts",
"UpdateProduct with a field mask")."""

import harness as h
from harness import expect_code, expect_eq

S = {}  # one server for most tests: started in setup, stopped in the last test


def setup():
    S["srv"] = h.Server().start()
    S["api"] = h.Api(S["srv"])
    S["user"] = h.make_token(S["srv"].secret, sub="alice", role="user")
    S["admin"] = h.make_token(S["srv"].secret, sub="root", role="admin")


def ts_us(t):
    return t.seconds * 1000000 + t.nanos // 1000


def test_create_returns_uuid_v4_and_equal_timestamps():
    api = S["api"]
    p = api.create(S["user"], name="Widget", description="a widget", price=9.5,
                   categories=["tools", "home"])
    assert h.UUID4_RE.match(p.id), "id is not a UUID v4: %r" % p.id
    expect_eq(p.name, "Widget", "name")
    expect_eq(p.description, "a widget", "description")
    expect_eq(p.price, 9.5, "price")
    expect_eq(list(p.categories), ["tools", "home"], "categories")
    assert p.HasField("created_at") and p.HasField("updated_at"), "timestamps missing"
    expect_eq(p.created_at, p.updated_at, "created_at == updated_at on create")
    assert ts_us(p.created_at) > 1600000000 * 1000000, "created_at is not a wall-clock time"
    q = api.create(S["user"], name="Widget")
    assert q.id != p.id, "two creates returned the same id"


def test_get_returns_what_create_returned():
    api = S["api"]
    p = api.create(S["user"], name="Gettable", description="d", price=1.25, categories=["a"])
    got = api.call("GetProduct", id=p.id)
    expect_eq(got, p, "GetProduct reply")
    # Anyone may read: no token at all.
    expect_eq(api.call("GetProduct", id=p.id, token=None), p, "GetProduct without token")


def test_update_without_mask_replaces_only_non_empty_fields():
    api = S["api"]
    p = api.create(S["user"], name="Old", description="keep me", price=5.0,
                   categories=["c1", "c2"])
    u = api.call("UpdateProduct", token=S["user"], id=p.id, name="New")
    expect_eq(u.id, p.id, "id")
    expect_eq(u.name, "New", "name replaced")
    expect_eq(u.description, "keep me", "empty description keeps the stored one")
    expect_eq(u.price, 5.0, "zero price keeps the stored one")
    expect_eq(list(u.categories), ["c1", "c2"], "no categories keeps the stored ones")
    expect_eq(u.created_at, p.created_at, "created_at unchanged")
    assert ts_us(u.updated_at) > ts_us(p.updated_at), "updated_at did not move forward"
    u2 = api.call("UpdateProduct", token=S["user"], id=p.id, description="D2", price=7.5,
                  categories=["x"])
    expect_eq((u2.name, u2.description, u2.price, list(u2.categories)),
              ("New", "D2", 7.5, ["x"]), "second update")
    expect_eq(u2.created_at, p.created_at, "created_at unchanged after second update")
    assert ts_us(u2.updated_at) > ts_us(u.updated_at), "updated_at did not move forward"
    expect_eq(api.call("GetProduct", id=p.id), u2, "stored product after update")


def test_update_with_mask_clears_description_and_sets_price_zero():
    api = S["api"]
    p = api.create(S["user"], name="Masked", description="to be cleared", price=3.0,
                   categories=["k"])
    u = api.call("UpdateProduct", token=S["user"], id=p.id, name="ignored", description="",
                 price=0, update_mask=["description", "price"])
    expect_eq(u.name, "Masked", "name not in mask stays")
    expect_eq(u.description, "", "description cleared by mask")
    expect_eq(u.price, 0.0, "price set to 0 by mask")
    expect_eq(list(u.categories), ["k"], "categories not in mask stay")
    expect_eq(u.created_at, p.created_at, "created_at unchanged")
    assert ts_us(u.updated_at) > ts_us(p.updated_at), "updated_at did not move forward"
    # categories in the mask with none sent: cleared.
    u2 = api.call("UpdateProduct", token=S["user"], id=p.id, update_mask=["categories"])
    expect_eq(list(u2.categories), [], "categories cleared by mask")
    # A path named twice counts once.
    u3 = api.call("UpdateProduct", token=S["user"], id=p.id, name="Twice",
                  update_mask=["name", "name"])
    expect_eq(u3.name, "Twice", "path named twice")
    # A mask with no paths counts as no mask: the empty description keeps.
    api.call("UpdateProduct", token=S["user"], id=p.id, description="back")
    u4 = api.call("UpdateProduct", token=S["user"], id=p.id, name="NoPaths", update_mask=[])
    expect_eq((u4.name, u4.description), ("NoPaths", "back"), "empty mask = no mask")
    expect_eq(api.call("GetProduct", id=p.id), u4, "stored product after masked updates")


def test_update_mask_result_must_still_validate():
    api = S["api"]
    p = api.create(S["user"], name="Valid")
    expect_code("INVALID_ARGUMENT", lambda: api.call(
        "UpdateProduct", token=S["user"], id=p.id, name="", update_mask=["name"]),
        "mask clearing the name")
    expect_eq(api.call("GetProduct", id=p.id).name, "Valid", "name after refused update")


def test_update_mask_unknown_path_is_invalid_argument_even_for_unknown_id():
    api = S["api"]
    p = api.create(S["user"], name="Paths")
    for path in ("id", "created_at", "nope", "Name", ""):
        expect_code("INVALID_ARGUMENT", lambda: api.call(
            "UpdateProduct", token=S["user"], id=p.id, name="x", update_mask=[path]),
            "mask path %r on a known id" % path)
    unknown = "00000000-0000-4000-8000-000000000000"
    expect_code("INVALID_ARGUMENT", lambda: api.call(
        "UpdateProduct", token=S["user"], id=unknown, update_mask=["bogus"]),
        "bad mask path on an unknown id")
    expect_code("NOT_FOUND", lambda: api.call(
        "UpdateProduct", token=S["user"], id=unknown, name="n", update_mask=["name"]),
        "good mask on an unknown id")
    expect_code("NOT_FOUND", lambda: api.call(
        "UpdateProduct", token=S["user"], id=unknown, name="n"), "no mask, unknown id")


def test_delete_then_get_and_delete_again_are_not_found():
    api = S["api"]
    p = api.create(S["user"], name="Doomed")
    r = api.call("DeleteProduct", token=S["admin"], id=p.id)
    expect_eq(r.ByteSize(), 0, "DeleteProduct answers an empty message")
    expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=p.id), "get after delete")
    expect_code("NOT_FOUND", lambda: api.call("DeleteProduct", token=S["admin"], id=p.id),
                "delete twice")
    expect_code("NOT_FOUND", lambda: api.call("UpdateProduct", token=S["user"], id=p.id,
                                              name="zombie"), "update after delete")


def fresh_server_with(n, **create_kw):
    srv = h.Server().start()
    api = h.Api(srv)
    tok = h.make_token(srv.secret, role="user")
    made = [api.create(tok, name="p%03d" % i, price=float(i), **create_kw) for i in range(n)]
    return srv, api, tok, made


def list_all(api, page_size, flt=""):
    """Pages through ListProducts; returns (pages, total_sizes)."""
    pages, totals, token = [], [], ""
    for _ in range(1000):
        r = api.call("ListProducts", page_size=page_size, page_token=token, filter=flt)
        pages.append(list(r.products))
        totals.append(r.total_size)
        token = r.next_page_token
        if not token:
            return pages, totals
    raise AssertionError("paging did not end")


def order_key(p):
    return (p.created_at.seconds, p.created_at.nanos, p.id)


def test_list_paging_25_by_7_gives_each_product_once_in_order():
    srv, api, tok, made = fresh_server_with(25)
    try:
        pages, totals = list_all(api, 7)
        expect_eq([len(p) for p in pages], [7, 7, 7, 4], "page sizes")
        expect_eq(totals, [25] * 4, "total_size on every page")
        ids = [p.id for page in pages for p in page]
        expect_eq(len(set(ids)), 25, "distinct products listed")
        expect_eq(set(ids), {p.id for p in made}, "listed ids")
        flat = [p for page in pages for p in page]
        expect_eq([p.id for p in flat], [p.id for p in sorted(flat, key=order_key)],
                  "order by created_at, then id")
        # Listed products are the stored ones, field for field.
        by_id = {p.id: p for p in made}
        for p in flat:
            expect_eq(p, by_id[p.id], "listed product")
        # page_size 0 means 10.
        r = api.call("ListProducts", page_size=0)
        expect_eq(len(r.products), 10, "page_size 0 -> 10")
        assert r.next_page_token, "more pages after the first 10 of 25"
        expect_eq([p.id for p in r.products], ids[:10], "first page of 10")
        # Exactly fits: last page token empty.
        r = api.call("ListProducts", page_size=25)
        expect_eq((len(r.products), r.next_page_token), (25, ""), "page_size 25 of 25")
    finally:
        srv.cleanup()


def test_list_page_size_over_100_is_100():
    srv, api, tok, made = fresh_server_with(105)
    try:
        for size in (101, 1000, 2 ** 31 - 1):
            r = api.call("ListProducts", page_size=size)
            expect_eq(len(r.products), 100, "page_size %d -> 100" % size)
            expect_eq(r.total_size, 105, "total_size")
            assert r.next_page_token, "a next page token after 100 of 105"
            r2 = api.call("ListProducts", page_size=size, page_token=r.next_page_token)
            expect_eq((len(r2.products), r2.next_page_token), (5, ""), "second page")
        r = api.call("ListProducts", page_size=100)
        expect_eq(len(r.products), 100, "page_size 100")
    finally:
        srv.cleanup()


def test_list_negative_page_size_is_invalid_argument():
    api = S["api"]
    for size in (-1, -100, -2 ** 31):
        expect_code("INVALID_ARGUMENT", lambda: api.call("ListProducts", page_size=size),
                    "page_size %d" % size)


def test_list_paging_survives_creates_and_deletes_between_pages():
    srv, api, tok, made = fresh_server_with(20)
    admin = h.make_token(srv.secret, role="admin")
    try:
        r1 = api.call("ListProducts", page_size=5)
        first = [p.id for p in r1.products]
        all_ids = [p.id for p in list_all(api, 100)[0][0]]
        # Delete one already listed and one not yet listed; create new ones.
        api.call("DeleteProduct", token=admin, id=first[0])
        api.call("DeleteProduct", token=admin, id=all_ids[12])
        newer = [api.create(tok, name="late%d" % i).id for i in range(3)]
        seen = list(first)
        token = r1.next_page_token
        while token:
            r = api.call("ListProducts", page_size=5, page_token=token)
            seen += [p.id for p in r.products]
            token = r.next_page_token
        expect_eq(len(seen), len(set(seen)), "no product listed twice")
        throughout = set(all_ids) - {first[0], all_ids[12]}
        missing = throughout - set(seen)
        assert not missing, "skipped products that existed throughout: %s" % missing
        assert all_ids[12] not in seen, "a product deleted before its page was listed"
        assert set(newer) <= set(seen), "products created later (sorted last) were not listed"
    finally:
        srv.cleanup()


def test_list_bad_page_tokens_are_invalid_argument():
    api = S["api"]
    for i in range(12):
        api.create(S["user"], name="tok%d" % i)
    r = api.call("ListProducts", page_size=3)
    tok = r.next_page_token
    assert tok, "expected a next_page_token"
    # The token works as issued.
    api.call("ListProducts", page_size=3, page_token=tok)
    flipped = tok[:-2] + ("A" if tok[-2] != "A" else "B") + tok[-1]
    middle = len(tok) // 2
    flipped_mid = tok[:middle] + ("x" if tok[middle] != "x" else "y") + tok[middle + 1:]
    for bad in (flipped, flipped_mid, tok[:-1], tok + "A", "garbage", "A" * 40, "=",
                "\u00e9t\u00e9", tok[1:]):
        expect_code("INVALID_ARGUMENT",
                    lambda: api.call("ListProducts", page_size=3, page_token=bad),
                    "tampered page token %r" % bad[:60])
    # A token from another server (another secret) was not issued here.
    other, oapi, otok, _ = fresh_server_with(5)
    try:
        foreign = oapi.call("ListProducts", page_size=2).next_page_token
        assert foreign, "expected a token from the other server"
    finally:
        other.cleanup()
    expect_code("INVALID_ARGUMENT",
                lambda: api.call("ListProducts", page_size=2, page_token=foreign),
                "page token of another server")


def test_list_page_token_reused_with_another_filter_is_invalid_argument():
    api = S["api"]
    for i in range(6):
        api.create(S["user"], name="ftok%d" % i, price=100.0 + i)
    r = api.call("ListProducts", page_size=2, filter='name : "ftok"')
    assert r.next_page_token, "expected a next_page_token for the filtered list"
    api.call("ListProducts", page_size=2, filter='name : "ftok"', page_token=r.next_page_token)
    for other in ('name : "zzz"', "", "price > 1"):
        expect_code("INVALID_ARGUMENT", lambda: api.call(
            "ListProducts", page_size=2, filter=other, page_token=r.next_page_token),
            "filter %r with a token issued for another filter" % other)
    r0 = api.call("ListProducts", page_size=2)
    expect_code("INVALID_ARGUMENT", lambda: api.call(
        "ListProducts", page_size=2, filter='name : "ftok"', page_token=r0.next_page_token),
        "unfiltered token used with a filter")


def test_list_filter_name_substring_and_others():
    srv, api, tok, _ = fresh_server_with(0)
    try:
        a = api.create(tok, name="Xylophone", description="music", price=50, categories=["toys"])
        b = api.create(tok, name="boX", description="cardboard", price=2.5,
                       categories=["home", "toys"])
        c = api.create(tok, name="Chair", description="sit on it", price=80, categories=["home"])

        def ids(flt, size=10):
            pages, totals = list_all(api, size, flt)
            got = [p.id for page in pages for p in page]
            expect_eq(totals[0], len(got), "total_size for %r" % flt)
            return got

        expect_eq(ids('name : "x"'), [a.id, b.id], 'name : "x" (case-insensitive substring)')
        expect_eq(ids('name:"X"'), [a.id, b.id], 'name:"X" without spaces')
        expect_eq(ids('name = "boX"'), [b.id], "exact name")
        expect_eq(ids('name = "box"'), [], "= is exact (case-sensitive)")
        expect_eq(ids('name != "boX"'), [a.id, c.id], "name !=")
        expect_eq(ids("price > 10"), [a.id, c.id], "price > 10")
        expect_eq(ids("price <= 2.5"), [b.id], "price <= 2.5")
        expect_eq(ids('categories : "toys"'), [a.id, b.id], "categories has")
        expect_eq(ids('categories : "to"'), [], "categories : is element equality")
        expect_eq(ids('categories : "home" AND price < 10'), [b.id], "AND")
        expect_eq(ids('name = "Chair" OR description : "MUSIC"'), [a.id, c.id], "OR")
        expect_eq(ids('NOT categories : "home"'), [a.id], "NOT")
        expect_eq(ids("   "), [a.id, b.id, c.id], "whitespace-only filter is empty")
        expect_eq(ids('created_at >= "2000-01-01T00:00:00Z"'), [a.id, b.id, c.id], "created_at")
        expect_eq(ids('name : "x"', size=1), [a.id, b.id], "filtered paging by 1")
        for bad in ('name ~ "x"', "nosuch = 1", 'price = "x"', "name : ", "(price > 1",
                    "price > 1 and price < 2", 'name : "x" AND', "x" * 1025):
            expect_code("INVALID_ARGUMENT", lambda: api.call("ListProducts", filter=bad),
                        "bad filter %r" % bad[:40])
        # The message names the byte offset of the problem.
        for bad, pos in (('price > 1 AND bogus = 2', 14), ('name ~ "x"', 5),
                         ('price >= 1 AND name = 17', 22)):
            d = expect_code("INVALID_ARGUMENT", lambda: api.call("ListProducts", filter=bad),
                            "bad filter %r" % bad)
            assert str(pos) in (d or ""), "message for %r does not name offset %d: %r" % (
                bad, pos, d)
        # A NUL byte too, inside a string or between tokens.
        for bad, pos in (('name = "a\x00b"', 9), ('price > 10 \x00', 11)):
            d = expect_code("INVALID_ARGUMENT", lambda: api.call("ListProducts", filter=bad),
                            "bad filter %r" % bad)
            want = "field 'filter' contains a NUL byte at offset %d" % pos
            assert d == want, "message for %r: %r, wanted %r" % (bad, d, want)
    finally:
        srv.cleanup()


def test_server_exits_zero_on_sigterm():
    S["api"].close()
    expect_eq(S["srv"].stop(), 0, "exit status after SIGTERM")
    S["srv"].cleanup()


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_create_returns_uuid_v4_and_equal_timestamps,
            test_get_returns_what_create_returned,
            test_update_without_mask_replaces_only_non_empty_fields,
            test_update_with_mask_clears_description_and_sets_price_zero,
            test_update_mask_result_must_still_validate,
            test_update_mask_unknown_path_is_invalid_argument_even_for_unknown_id,
            test_delete_then_get_and_delete_again_are_not_found,
            test_list_paging_25_by_7_gives_each_product_once_in_order,
            test_list_page_size_over_100_is_100,
            test_list_negative_page_size_is_invalid_argument,
            test_list_paging_survives_creates_and_deletes_between_pages,
            test_list_bad_page_tokens_are_invalid_argument,
            test_list_page_token_reused_with_another_filter_is_invalid_argument,
            test_list_filter_name_substring_and_others,
            test_server_exits_zero_on_sigterm,
        ])
    finally:
        S["srv"].cleanup()
