"""The panic path (product-server(8) "Statuses for bad input": a fault inside a
handler returns INTERNAL with a generic message; the server keeps serving).
Needs a test build (-DPRODUCT_TEST_FAULTS=ON): the x-test-fault metadata
makes the FAULT_POINT of that name panic on purpose. Under the ASan build a
clean exit also proves that the abandoned calls leaked nothing."""

import os
import re

import harness as h
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


def test_every_store_fault_point_is_internal():
    api = S["api"]
    names = fault_points()
    assert {"handler", "create"} <= names, "fault points found: %s" % sorted(names)
    calls = {
        "store.get": lambda md: api.call("GetProduct", id=S["pid"], metadata=md),
        "store.create": lambda md: api.call("CreateProduct", token=S["user"], name="s",
                                            metadata=md),
        "store.update": lambda md: api.call("UpdateProduct", token=S["user"], id=S["pid"],
                                            description="s", metadata=md),
        "store.remove": lambda md: api.call("DeleteProduct", token=S["admin"], id=S["pid"],
                                            metadata=md),
        "store.delete": lambda md: api.call("DeleteProduct", token=S["admin"], id=S["pid"],
                                            metadata=md),
        "store.list": lambda md: api.call("ListProducts", metadata=md),
    }
    untested = sorted(n for n in names - {"handler", "create"} if n not in calls)
    if untested:
        print("     fault points without a test here: %s" % untested)
    for name in sorted(names & set(calls)):
        d = expect_code("INTERNAL", lambda: calls[name](fault(name)), "fault %s" % name)
        check_internal(d, name)
    expect_eq(api.call("GetProduct", id=S["pid"]).name, "survivor",
              "the product after store faults")


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
            test_every_store_fault_point_is_internal,
            test_50_faults_in_a_row_then_normal_calls_work,
            test_server_exits_zero,
        ])
    finally:
        S["srv"].cleanup()
