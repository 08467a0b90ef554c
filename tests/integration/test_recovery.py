"""The panic path (product-server(8) "Statuses for bad input": a fault inside a
handler returns INTERNAL with a generic message; the server keeps serving).
Needs a test build (-DPRODUCT_TEST_FAULTS=ON): the x-test-fault metadata
makes the FAULT_POINT of that name panic on purpose. Under the ASan build a
clean exit also proves that the abandoned calls leaked nothing.

Store faults: every backend (memory, SQLite, PostgreSQL via pgtemp.py) has a
fault point before and after each of its five ops; each one is driven on
each backend, and the store must then hold exactly what was committed: a
write faulted before the store is not there, one faulted after its commit is
there (the caller was told INTERNAL, the row exists), both as the same
server answers and after a restart on the same data."""

import os
import re
import uuid
import shutil
import tempfile

import harness as h
import pgtemp
from harness import expect_code, expect_eq

S = {}


def fault_points():
    """FAULT_POINT names compiled into the server, from the source."""
    names = set()
    for root in ("src", "interceptors", "auth"):
        for dirpath, _, files in os.walk(os.path.join(h.SRC, root)):
            for f in files:
                if f.endswith(".c"):
                    with open(os.path.join(dirpath, f), errors="replace") as fh:
                        names |= set(re.findall(r'FAULT_POINT\("([^"]+)"\)', fh.read()))
    return names


def setup():
    srv = S["srv"] = h.Server().start()
    S["api"] = h.Api(srv)
    S["user"] = h.make_token(srv.secret, sub="rec-user", role="user")
    S["admin"] = h.make_token(srv.secret, sub="rec-admin", role="admin")
    S["pid"] = S["api"].create(S["user"], name="survivor").id


def fault(name):
    return [("x-test-fault", name)]


def check_internal(details, name):
    assert details, "no status message"
    assert "test fault" not in details and name not in details, (
        "the status message leaks the fault detail: %r" % details)


def json_text(l):
    return " ".join(str(v) for v in l.values())


def total():
    return S["api"].call("ListProducts", page_size=1).total_size


def test_handler_fault_in_get_product_is_internal_and_logged():
    api = S["api"]
    d = expect_code("INTERNAL", lambda: api.call("GetProduct", id=S["pid"],
                                                 metadata=fault("handler")), "handler fault")
    check_internal(d, "handler")
    line = S["srv"].wait_log(lambda l: l.get("code") == "INTERNAL" and
                             l.get("method", "").endswith("GetProduct"))
    expect_eq(line.get("level"), "error", "level of the fault line")
    assert "handler" in json_text(line) and "test fault" in json_text(line), (
        "the fault detail is not in the log line: %r" % line)
    # and a fault line of its own, without a method key (product-server(8) "Logs")
    own = S["srv"].wait_log(lambda l: "method" not in l and l.get("level") == "error" and
                            l.get("rpc", "").endswith("GetProduct"))
    assert "test fault" in own.get("fault", ""), own
    expect_eq(api.call("GetProduct", id=S["pid"]).name, "survivor", "next call")


def test_create_fault_is_internal_and_stores_nothing():
    api = S["api"]
    before = total()
    d = expect_code("INTERNAL", lambda: api.call("CreateProduct", token=S["user"], name="ghost",
                                                 metadata=fault("create")), "create fault")
    check_internal(d, "create")
    line = S["srv"].wait_log(lambda l: l.get("code") == "INTERNAL" and
                             l.get("method", "").endswith("CreateProduct"))
    expect_eq(line.get("level"), "error", "level of the fault line")
    expect_eq(line.get("sub"), "rec-user", "sub on the fault line")
    assert "create" in json_text(line), "the fault detail is not in the log: %r" % line
    expect_eq(total(), before, "products after a faulted create")
    p = api.create(S["user"], name="after the fault")
    expect_eq(api.call("GetProduct", id=p.id), p, "create + get after the fault")


def test_fault_names_that_do_not_match_do_nothing():
    api = S["api"]
    expect_eq(api.call("GetProduct", id=S["pid"], metadata=fault("nonexistent")).name,
              "survivor", "an unknown fault name")
    expect_eq(api.call("GetProduct", id=S["pid"], metadata=fault("create")).name, "survivor",
              "a fault point the method does not pass")


# --------------------------------------------------------- store faults ---
# Every backend carries FAULT_POINT("store.<op>.before") on entry to each of
# its five ops and FAULT_POINT("store.<op>.after") once the op succeeded (for
# a write: committed). The table is derived from each backend's own source and
# must equal this set exactly: a backend that loses one, or a rename, fails
# here instead of shrinking the loop below.
STORE_OPS = ("get", "create", "update", "remove", "list")
STORE_FAULTS = frozenset("store.%s.%s" % (op, when) for op in STORE_OPS
                         for when in ("before", "after"))
BACKEND_SOURCES = {
    "memory": ("src/store/store_memory.c",),
    "sqlite": ("src/store/store_sqlite.c", "src/store/store_sqlite_writer.c"),
    "postgres": ("src/store/store_postgres_ops.c",),
}


def store_fault_points(backend, counts=None):
    names = set()
    for rel in BACKEND_SOURCES[backend]:
        with open(os.path.join(h.SRC, rel), errors="replace") as fh:
            found = re.findall(r'FAULT_POINT\("(store\.[^"]+)"\)', fh.read())
        names |= set(found)
        if counts is not None:
            for n in found:
                counts[n] = counts.get(n, 0) + 1
    return names


def test_every_backend_has_exactly_the_store_fault_points():
    expect_eq(len(STORE_FAULTS), 10, "store fault names expected")
    for backend in h.each(BACKEND_SOURCES, "backends"):
        counts = {}
        expect_eq(sorted(store_fault_points(backend, counts)), sorted(STORE_FAULTS),
                  "store fault points in the %s backend" % backend)
        # Two creates per backend (plain, and with a request id), one of each other op.
        expect_eq(counts, {n: 2 if ".create." in n else 1 for n in STORE_FAULTS},
                  "store fault points per name in the %s backend" % backend)
    # And none elsewhere (a wrapper in store.c would fire for every backend
    # and hide a backend that lost its own).
    elsewhere = {n for n in fault_points() if n.startswith("store.")}
    expect_eq(elsewhere, set(STORE_FAULTS), "store.* fault points in the whole source")


def by_name(api, name):
    """Every product named exactly name (a fresh name per case)."""
    r = api.call("ListProducts", page_size=100, filter='name = "%s"' % name)
    expect_eq(r.total_size, len(r.products), "total of %r" % name)
    return list(r.products)


def drive_store_fault(srv, api, user, admin, backend, name):
    """One store fault: INTERNAL with the generic message, the detail in the
    log only, and the store as the fault left it: a write that the backend
    committed before the fault is there (and only once), one faulted before
    the write is not."""
    op, when = name.split(".")[1:]
    tag = "%s-%s" % (backend, name)
    victim = api.create(user, name="victim " + tag, description="before", price=2.5,
                        categories=["a", "b"])
    total_before = api.call("ListProducts", page_size=1).total_size
    md = fault(name)
    calls = {
        "get": lambda: api.call("GetProduct", id=victim.id, metadata=md),
        "create": lambda: api.call("CreateProduct", token=user, name="made " + tag,
                                   description="d", price=3.0, metadata=md),
        "update": lambda: api.call("UpdateProduct", token=user, id=victim.id,
                                   description="after", update_mask=["description"],
                                   metadata=md),
        "remove": lambda: api.call("DeleteProduct", token=admin, id=victim.id, metadata=md),
        "list": lambda: api.call("ListProducts", page_size=10, metadata=md),
    }
    d = expect_code("INTERNAL", calls[op], "fault %s on %s" % (name, backend))
    expect_eq(d, "internal error", "status message of %s on %s" % (name, backend))
    check_internal(d, name)
    method = {"get": "GetProduct", "create": "CreateProduct", "update": "UpdateProduct",
              "remove": "DeleteProduct", "list": "ListProducts"}[op]
    want = "test fault '%s'" % name
    srv.wait_log(lambda l: "method" not in l and l.get("level") == "error" and
                 l.get("rpc", "").endswith(method) and want in l.get("fault", ""))
    srv.wait_log(lambda l: l.get("code") == "INTERNAL" and l.get("level") == "error" and
                 l.get("method", "").endswith(method))

    # The store, as seen by the next calls on the same server.
    committed = when == "after"
    if op == "create":
        made = by_name(api, "made " + tag)
        expect_eq(len(made), 1 if committed else 0, "products stored by %s" % name)
        if made:
            got = api.call("GetProduct", id=made[0].id)
            expect_eq(got, made[0], "get of the product %s stored" % name)
            expect_eq((got.description, got.price), ("d", 3.0), "its fields")
        expect_eq(api.call("ListProducts", page_size=1).total_size,
                  total_before + (1 if committed else 0), "total after %s" % name)
        # The same fault on a create with a request id (each backend's own
        # create_once path), then its retry: the product the faulted call
        # committed, or the one the retry makes; exactly one either way.
        rid = str(uuid.uuid4())
        again = lambda extra: api.call("CreateProduct", token=user, name="rid " + tag,
                                       description="d", price=3.0, request_id=rid, **extra)
        d = expect_code("INTERNAL", lambda: again({"metadata": md}),
                        "fault %s on %s, with a request id" % (name, backend))
        expect_eq(d, "internal error", "status message of %s with a request id" % name)
        made = by_name(api, "rid " + tag)
        expect_eq(len(made), 1 if committed else 0, "products stored by %s with a request id" % name)
        retried = again({})
        if made:
            expect_eq(retried, made[0], "the retry's answer: the product %s committed" % name)
        expect_eq(by_name(api, "rid " + tag), [retried], "products after the retry of %s" % name)
        total_before += 1
    elif op == "update":
        got = api.call("GetProduct", id=victim.id)
        expect_eq(got.description, "after" if committed else "before",
                  "description after %s" % name)
        expect_eq((got.name, got.price, list(got.categories)),
                  (victim.name, victim.price, list(victim.categories)),
                  "fields the update did not touch")
        if committed:
            assert (got.updated_at.seconds, got.updated_at.nanos) > (
                victim.updated_at.seconds, victim.updated_at.nanos), "updated_at did not move"
        else:
            expect_eq(got, victim, "the product after %s" % name)
    elif op == "remove":
        if committed:
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=victim.id),
                        "get after %s" % name)
            expect_code("NOT_FOUND", lambda: api.call("DeleteProduct", token=admin,
                                                      id=victim.id), "delete again")
        else:
            expect_eq(api.call("GetProduct", id=victim.id), victim, "product after %s" % name)
        expect_eq(api.call("ListProducts", page_size=1).total_size,
                  total_before - (1 if committed else 0), "total after %s" % name)
    else:  # reads change nothing
        expect_eq(api.call("GetProduct", id=victim.id), victim, "product after %s" % name)
        expect_eq(api.call("ListProducts", page_size=1).total_size, total_before,
                  "total after %s" % name)
    # Still serving: the same call without the fault, and a fresh write.
    expect_eq(api.health_check("").status, 1, "health after %s" % name)
    p = api.create(user, name="after " + tag)
    expect_eq(api.call("GetProduct", id=p.id), p, "create + get after %s" % name)
    return victim


def store_faults_on(backend, spec):
    """Drives every store fault point on one backend; a durable backend is
    then restarted on the same data, which must hold exactly what the
    answers after each fault showed."""
    names = store_fault_points(backend)
    expect_eq(names, set(STORE_FAULTS), "fault points of %s" % backend)
    srv = h.Server(store=spec).start()
    victims = {}
    driven = 0
    try:
        with h.Api(srv) as api:
            user = h.make_token(srv.secret, sub="store-user", role="user")
            admin = h.make_token(srv.secret, sub="store-admin", role="admin")
            for name in h.each(sorted(names), "store fault points of " + backend):
                victims[name] = drive_store_fault(srv, api, user, admin, backend, name)
                driven += 1
            before_stop = {p.id: p for p in api.call("ListProducts", page_size=1000).products}
        expect_eq(driven, len(STORE_FAULTS), "store faults driven on " + backend)
        expect_eq(srv.stop(), 0, "exit status of the %s server after the faults" % backend)
        internal = [l for l in srv.call_lines() if l.get("code") == "INTERNAL"]
        # One per fault, and one more for each create fault with a request id.
        expect_eq(len(internal), len(STORE_FAULTS) + 2, "INTERNAL call lines on " + backend)
    finally:
        srv.cleanup()
    if backend == "memory":
        return
    again = h.Server(store=spec).start()
    try:
        with h.Api(again) as api:
            after = {p.id: p for p in api.call("ListProducts", page_size=1000).products}
            expect_eq(sorted(after), sorted(before_stop), "ids after a restart on " + backend)
            for pid in h.each(sorted(after), "products after the restart"):
                expect_eq(after[pid], before_stop[pid], "product after the restart")
            expect_code("NOT_FOUND", lambda: api.call(
                "GetProduct", id=victims["store.remove.after"].id), "a removed product")
        expect_eq(again.stop(), 0, "exit status after the restart")
    finally:
        again.cleanup()


def test_store_faults_on_memory():
    store_faults_on("memory", "memory")


def test_store_faults_on_sqlite():
    d = tempfile.mkdtemp(prefix="product-rec-sqlite-")
    try:
        store_faults_on("sqlite", "sqlite:" + os.path.join(d, "products.db"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_store_faults_on_postgres():
    if not pgtemp.find_bindir():
        h.skip_case("PostgreSQL server binaries (initdb, postgres) are not installed")
    pg = pgtemp.PgTemp().start()
    try:
        store_faults_on("postgres", pg.create_database("recovery"))
    finally:
        pg.cleanup()


def test_50_faults_in_a_row_then_normal_calls_work():
    api = S["api"]
    for i in range(50):
        name, call = (("handler", lambda: api.call("GetProduct", id=S["pid"],
                                                   metadata=fault("handler")))
                      if i % 2 else
                      ("create", lambda: api.call("CreateProduct", token=S["user"],
                                                  name="g%d" % i, metadata=fault("create"))))
        check_internal(expect_code("INTERNAL", call, "fault %d" % i), name)
    for i in range(20):
        p = api.create(S["user"], name="ok%d" % i)
        expect_eq(api.call("GetProduct", id=p.id), p, "normal call %d" % i)
    r = api.call("ListProducts", page_size=100, filter='name : "g"')
    expect_eq(r.total_size, 0, "products stored by faulted creates")
    expect_eq(api.health_check("").status, 1, "health after 50 faults")


def test_server_exits_zero():
    S["api"].close()
    expect_eq(S["srv"].stop(), 0, "exit status after SIGTERM")
    internal = [l for l in S["srv"].call_lines() if l.get("code") == "INTERNAL"]
    assert len(internal) >= 52, "only %d INTERNAL lines logged" % len(internal)
    for l in internal:
        expect_eq(l.get("level"), "error", "level of an INTERNAL line")


if __name__ == "__main__":
    if not h.TEST_FAULTS:
        h.skip("PRODUCT_TEST_FAULTS is not set: the server has no fault points "
               "(configure with -DPRODUCT_TEST_FAULTS=ON)", build=True)
    setup()
    try:
        h.main([
            test_handler_fault_in_get_product_is_internal_and_logged,
            test_create_fault_is_internal_and_stores_nothing,
            test_fault_names_that_do_not_match_do_nothing,
            test_50_faults_in_a_row_then_normal_calls_work,
            test_server_exits_zero,
            test_every_backend_has_exactly_the_store_fault_points,
            test_store_faults_on_memory,
            test_store_faults_on_sqlite,
            test_store_faults_on_postgres,
        ])
    finally:
        S["srv"].cleanup()
