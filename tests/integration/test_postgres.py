"""Replicas on one PostgreSQL (product-server(8) "PostgreSQL"): two product-servers
with --store postgres://... on the same database, started on a throw-away
cluster (pgtemp.py). What one writes the other reads at once; a list pages
on from one replica to the other with no duplicate and no gap; updates
through both lose nothing and an update racing a delete never brings the
product back. Then PostgreSQL is killed under load (as `pg_ctl stop -m
immediate`): calls get UNAVAILABLE, the servers stay up, health says
product.ProductService NOT_SERVING (service "" SERVING), a server started
meanwhile starts anyway, and all serve again once PostgreSQL is back on the
same port. A PostgreSQL that hangs (SIGSTOP) gives UNAVAILABLE, not a hang. Skips only when the PostgreSQL binaries are not installed."""

import collections
import secrets
import threading
import time

import harness as h
import pgtemp
from harness import expect_code, expect_eq

S = {}


def status(name):
    return S["hpb"].HealthCheckResponse.ServingStatus.Value(name)


def setup():
    pg = S["pg"] = pgtemp.PgTemp().start()
    S["password"] = "pw-" + secrets.token_hex(8)
    # Trust auth: the password is never asked for, but it is in the URI, so
    # the logs can be checked for it.
    S["dsn"] = pg.create_database("replicas").replace(
        "postgres://%s@" % pgtemp.SUPERUSER,
        "postgres://%s:%s@" % (pgtemp.SUPERUSER, S["password"]))
    S["secret"] = secrets.token_hex(24)  # shared: page tokens cross replicas
    S["a"] = h.Server(store=S["dsn"], secret=S["secret"]).start()
    # The second replica reaches the same database through the Unix socket.
    S["b"] = h.Server(store=pg.socket_dsn("replicas"), secret=S["secret"]).start()
    S["api_a"], S["api_b"] = h.Api(S["a"]), h.Api(S["b"])
    S["hpb"] = S["api_a"].health_pb
    S["user"] = h.make_token(S["secret"], sub="alice")
    S["admin"] = h.make_token(S["secret"], sub="root", role="admin")


def ts_us(t):
    return t.seconds * 1000000 + t.nanos // 1000


def test_start_up_line_shows_the_store_with_the_password_redacted():
    line = S["a"].wait_log(lambda l: "store" in l and "method" not in l
                           and str(l["store"]).startswith("postgres://"))
    if S["password"] in line["store"] or "<redacted>" not in line["store"]:
        raise AssertionError("store not redacted: %r" % line["store"])
    for srv in (S["a"], S["b"]):
        if S["password"] in srv.stderr():
            raise AssertionError("the database password is in the log")


def test_a_product_created_on_one_replica_is_read_on_the_other_at_once():
    a, b = S["api_a"], S["api_b"]
    for src, dst in ((a, b), (b, a)):
        p = src.create(S["user"], name="shared", description="d", price=2.5,
                       categories=["x", "y"])
        got = dst.call("GetProduct", id=p.id)
        expect_eq((got.name, got.description, got.price, list(got.categories)),
                  ("shared", "d", 2.5, ["x", "y"]), "read on the other replica")
        expect_eq(ts_us(got.created_at), ts_us(p.created_at), "created_at (microseconds)")
        upd = dst.call("UpdateProduct", token=S["user"], id=p.id, name="renamed",
                       update_mask=["name"])
        expect_eq(src.call("GetProduct", id=p.id).name, "renamed", "update seen back")
        if ts_us(upd.updated_at) <= ts_us(p.updated_at):
            raise AssertionError("updated_at did not move forward")
        dst.call("DeleteProduct", token=S["admin"], id=p.id)
        expect_code("NOT_FOUND", lambda: src.call("GetProduct", id=p.id), "deleted on the other")


def test_a_list_pages_on_across_replicas_with_no_duplicate_or_gap():
    a, b = S["api_a"], S["api_b"]
    flt = 'name = "pager"'
    stable = set()
    for i in range(30):
        stable.add((a if i % 2 else b).create(S["user"], name="pager", price=i).id)
    seen, token, n_pages, churn = [], "", 0, []
    while True:
        api = a if n_pages % 2 == 0 else b
        page = api.call("ListProducts", page_size=4, page_token=token, filter=flt)
        seen += [p.id for p in page.products]
        n_pages += 1
        # Writes between pages, on both replicas: new products (after the
        # cursor or not) and deletes of products created meanwhile.
        churn.append(b.create(S["user"], name="pager").id)
        if len(churn) > 2:
            a.call("DeleteProduct", token=S["admin"], id=churn.pop(0))
        if not page.next_page_token:
            break
        token = page.next_page_token
    if len(seen) != len(set(seen)):
        raise AssertionError("a product was listed twice")
    missing = stable - set(seen)
    if missing:
        raise AssertionError("%d stable products were skipped" % len(missing))
    if n_pages < 8:
        raise AssertionError("only %d pages" % n_pages)
    for pid in stable | set(churn):
        a.call("DeleteProduct", token=S["admin"], id=pid)
    expect_eq(b.call("ListProducts", filter=flt).total_size, 0, "total after cleanup")


def test_updates_of_different_fields_through_both_replicas_lose_nothing():
    a, b = S["api_a"], S["api_b"]
    p = a.create(S["user"], name="n-0", price=0)
    rounds, errors = 25, []

    def patch(api, field):
        last = 0
        for k in range(1, rounds + 1):
            fields = {"name": "n-%d" % k} if field == "name" else {"price": float(k)}
            try:
                r = api.call("UpdateProduct", token=S["user"], id=p.id, update_mask=[field],
                             **fields)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                return
            if ts_us(r.updated_at) <= last:
                errors.append("updated_at went back")
            last = ts_us(r.updated_at)

    ts = [threading.Thread(target=patch, args=(a, "name")),
          threading.Thread(target=patch, args=(b, "price"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise AssertionError(errors[:3])
    got = b.call("GetProduct", id=p.id)
    expect_eq((got.name, got.price), ("n-%d" % rounds, float(rounds)), "both updates kept")
    a.call("DeleteProduct", token=S["admin"], id=p.id)


RACE_ROUNDS = 8
MAX_UPDATES = 20000  # per round: a hang guard, far above what a round needs


def test_an_update_racing_a_delete_never_brings_the_product_back():
    """Per round, updates through replica b run back to back; once one of
    them has succeeded (an Event, not a sleep) the delete goes through
    replica a while they still run. Every round sees both outcomes (OK
    before the delete, NOT_FOUND after it), no update that started after the
    delete returned succeeds, and the product is gone from both replicas.
    That the delete really landed while an update was in flight (an update
    call whose span overlaps the delete call's) is counted, and must have
    happened in at least one round."""
    a, b = S["api_a"], S["api_b"]
    grpc = h.grpc_mod()
    ok, nf = grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND
    overlapped, totals = 0, collections.Counter()
    for round_ in range(RACE_ROUNDS):
        p = a.create(S["user"], name="victim")
        calls = []  # (start, end, code) of every update, in order
        first_ok = threading.Event()
        deleted = {}

        def updater():
            for k in range(MAX_UPDATES):
                t0 = time.monotonic()
                code = h.status_of(lambda: b.call("UpdateProduct", token=S["user"], id=p.id,
                                                  name="racing-%d" % k))[0]
                calls.append((t0, time.monotonic(), code))
                if code == ok:
                    first_ok.set()
                elif "end" in deleted and t0 > deleted["end"]:
                    return  # refused after the delete returned: the round is over

        t = threading.Thread(target=updater, daemon=True)
        t.start()
        if not first_ok.wait(60 * h.SLOW):
            raise AssertionError("round %d: no update succeeded: %r" % (round_, calls[:3]))
        deleted["start"] = time.monotonic()
        a.call("DeleteProduct", token=S["admin"], id=p.id)
        deleted["end"] = time.monotonic()
        t.join(120 * h.SLOW)
        if t.is_alive():
            raise AssertionError("round %d: the updates did not end" % round_)
        codes = collections.Counter(c[2] for c in calls)
        totals.update(codes)
        if set(codes) - {ok, nf}:
            raise AssertionError("round %d: unexpected codes %r" % (round_, codes))
        if not codes[ok] or not codes[nf]:
            raise AssertionError("round %d: not both outcomes: %r" % (round_, codes))
        late = [c for c in calls if c[0] > deleted["end"] and c[2] == ok]
        if late:
            raise AssertionError("round %d: %d updates that started after the delete "
                                 "returned succeeded" % (round_, len(late)))
        if any(c[0] < deleted["end"] and c[1] > deleted["start"] for c in calls):
            overlapped += 1
        for api in (a, b):
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=p.id), "after the race")
        flt = 'name : "racing" OR name = "victim"'
        expect_eq(a.call("ListProducts", filter=flt).total_size, 0, "listed after the race")
    print("  %d rounds: updates OK %d, NOT_FOUND %d; the delete overlapped an update in "
          "flight in %d rounds" % (RACE_ROUNDS, totals[ok], totals[nf], overlapped))
    if not overlapped:
        raise AssertionError("in %d rounds no update was in flight while the delete ran"
                             % RACE_ROUNDS)


def wait_for(pred, what, timeout=20):
    deadline = time.monotonic() + timeout * h.SLOW
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting until " + what)


def health_of(api, service):
    """The service's health status, or None when the check itself failed
    (a slow answer on a loaded machine is "not yet", never an error)."""
    r = h.status_of(lambda: api.health_check(service, timeout=10))[2]
    return None if r is None else r.status


def test_a_postgres_that_stops_answering_gives_unavailable_not_a_hang():
    """SIGSTOP: the sockets stay open and nothing answers. A call in flight
    ends UNAVAILABLE after the store's call timeout (10 s), later calls fail
    fast, health says NOT_SERVING, and all is well again after SIGCONT."""
    a = S["api_a"]
    keep = a.create(S["user"], name="patient")
    S["pg"].pause()
    try:
        # The client's deadline is far beyond the store's call timeout: a call
        # ended by that timeout is UNAVAILABLE, one that hangs DEADLINE_EXCEEDED.
        expect_code("UNAVAILABLE", lambda: a.call("GetProduct", id=keep.id, timeout=60),
                    "a call while PostgreSQL hangs")
        wait_for(lambda: health_of(a, "product.ProductService") ==
                 status("NOT_SERVING"), "product.ProductService is NOT_SERVING", timeout=15)
        expect_eq(a.health_check("").status, status("SERVING"), 'service ""')
        # Fail-fast: the client's deadline (8 s, not scaled) is below the
        # store's call timeout (10 s), so a call that waited for PostgreSQL
        # would end DEADLINE_EXCEEDED, whatever the machine's speed.
        expect_code("UNAVAILABLE", lambda: a.call("GetProduct", id=keep.id, timeout=8 / h.SLOW),
                    "a call once health says NOT_SERVING")
    finally:
        S["pg"].resume()
    wait_for(lambda: health_of(a, "product.ProductService") == status("SERVING"),
             "product.ProductService is SERVING again")
    expect_eq(a.call("GetProduct", id=keep.id).name, "patient", "after SIGCONT")
    a.call("DeleteProduct", token=S["admin"], id=keep.id)


def test_postgres_killed_under_load_gives_unavailable_then_recovers():
    grpc = h.grpc_mod()
    a, b = S["api_a"], S["api_b"]
    keep = a.create(S["user"], name="survivor", price=7)
    codes = collections.Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def load(api, i):
        while not stop.is_set():
            if i % 2:
                c = h.status_of(lambda: api.call("GetProduct", id=keep.id, timeout=60))[0]
            else:
                c = h.status_of(lambda: api.create(S["user"], name="load"))[0]
            with lock:
                codes[c] += 1

    threads = [threading.Thread(target=load, args=(api, i)) for i, api in enumerate((a, b) * 3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sum(codes.values()) >= 20, "the load is running")
        S["pg"].stop_immediate()
        wait_for(lambda: codes[grpc.StatusCode.UNAVAILABLE] >= 10, "calls get UNAVAILABLE")
        for srv, api in ((S["a"], a), (S["b"], b)):
            wait_for(lambda: health_of(api, "product.ProductService") == status("NOT_SERVING"),
                     "product.ProductService is NOT_SERVING")
            expect_eq(api.health_check("").status, status("SERVING"), 'service ""')
            expect_eq(srv.proc.poll(), None, "server still running")
        # A replica that starts while PostgreSQL is down starts anyway.
        c = h.Server(store=S["dsn"], secret=S["secret"]).start()
        S["c"] = c
        api_c = S["api_c"] = h.Api(c)
        wait_for(lambda: health_of(api_c, "product.ProductService") ==
                 status("NOT_SERVING"), "the new replica reports NOT_SERVING")
        expect_code("UNAVAILABLE", lambda: api_c.call("GetProduct", id=keep.id), "new replica")
        with lock:
            other = set(codes) - {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
        if other:
            raise AssertionError("codes besides OK and UNAVAILABLE: %r" % codes)

        S["pg"].start()  # same data, same port
        for api in (a, b, api_c):
            wait_for(lambda: health_of(api, "product.ProductService") ==
                     status("SERVING"), "product.ProductService is SERVING again")
            wait_for(lambda: h.status_of(lambda: api.call("GetProduct", id=keep.id))[0] ==
                     grpc.StatusCode.OK, "GetProduct answers again")
            expect_eq(api.call("GetProduct", id=keep.id).price, 7.0, "the data survived")
        with lock:
            before = codes[grpc.StatusCode.OK]
        wait_for(lambda: codes[grpc.StatusCode.OK] > before + 20, "the load succeeds again")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    with lock:
        other = set(codes) - {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
        print("     load outcomes: %s" % {c.name: n for c, n in codes.items()}, flush=True)
    if other:
        raise AssertionError("codes besides OK and UNAVAILABLE: %r" % codes)
    for srv in (S["a"], S["b"], S["c"]):
        lines = srv.log_lines()  # every line is JSON (no libpq notice on stderr)
        if not any("postgres does not answer" in str(l.get("msg", "")) for l in lines):
            raise AssertionError("no outage line in the log")
        if S["password"] in srv.stderr():
            raise AssertionError("the database password is in the log")
        expect_eq(srv.stop(), 0, "exit status after SIGTERM")


def test_a_malformed_store_spec_is_a_bad_flag_with_the_password_redacted():
    for spec in ("postgres://app:hunter2secret@db:notaport/products",
                 "postgresql://app:hunter2secret@db/products?sslmode",
                 "postgres://app:hunter2secret@db/pro ducts"):
        code, out, err = h.run_server_once("--store", spec, "--insecure",
                                           env={"JWT_SECRET": S["secret"]})
        expect_eq(code, 2, "exit status for %r" % spec)
        lines = [l for l in err.splitlines() if l.strip()]
        expect_eq(len(lines), 1, "stderr lines for %r" % spec)
        if "hunter2secret" in err:
            raise AssertionError("password printed: %r" % err)


def cleanup():
    for k in ("api_a", "api_b", "api_c"):
        if k in S:
            S[k].close()
    for k in ("a", "b", "c"):
        if k in S:
            S[k].cleanup()
    if "pg" in S:
        S["pg"].cleanup()


if __name__ == "__main__":
    if not pgtemp.find_bindir():
        h.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    try:
        setup()
        h.main([
            test_start_up_line_shows_the_store_with_the_password_redacted,
            test_a_product_created_on_one_replica_is_read_on_the_other_at_once,
            test_a_list_pages_on_across_replicas_with_no_duplicate_or_gap,
            test_updates_of_different_fields_through_both_replicas_lose_nothing,
            test_an_update_racing_a_delete_never_brings_the_product_back,
            test_a_malformed_store_spec_is_a_bad_flag_with_the_password_redacted,
            test_a_postgres_that_stops_answering_gives_unavailable_not_a_hang,
            test_postgres_killed_under_load_gives_unavailable_then_recovers,
        ])
    finally:
        cleanup()
