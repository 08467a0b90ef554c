"""grpc.health.v1.Health over the wire (product-server(8) "The API"): Check and
Watch while serving, watchers cancelled by the client, and watchers at
shutdown: NOT_SERVING, then the stream ends with UNAVAILABLE."""

import threading
import time

import harness as h
from harness import expect_code, expect_eq

S = {}


def setup():
    S["srv"] = h.Server().start()
    S["api"] = h.Api(S["srv"])
    S["hpb"] = S["api"].health_pb


def status(name):
    return S["hpb"].HealthCheckResponse.ServingStatus.Value(name)


def test_check_serving_for_empty_and_product_service():
    api = S["api"]
    expect_eq(api.health_check("").status, status("SERVING"), 'Check("")')
    expect_eq(api.health_check("product.ProductService").status, status("SERVING"),
              'Check("product.ProductService")')


def test_check_unknown_service_is_not_found():
    api = S["api"]
    for name in ("nope", "product.productservice", "product.ProductService ", "grpc.health.v1.Health",
                 "x" * 2000):
        expect_code("NOT_FOUND", lambda: api.health_check(name), "Check(%r)" % name[:40])


def test_watch_streams_current_status():
    api = S["api"]
    for name in ("", "product.ProductService"):
        w = api.health_watch(name, timeout=30 * h.SLOW)
        try:
            first = next(w)
            expect_eq(first.status, status("SERVING"), "first Watch(%r) message" % name)
        finally:
            w.cancel()
        expect_code("CANCELLED", lambda: next(w), "Watch(%r) after cancel" % name)
    # The health protocol's answer for a service it does not know.
    w = api.health_watch("nope", timeout=30 * h.SLOW)
    try:
        expect_eq(next(w).status, status("SERVICE_UNKNOWN"), 'first Watch("nope") message')
    finally:
        w.cancel()


def test_20_watchers_cancelled_by_the_client_leave_the_server_healthy():
    api = S["api"]
    for round_ in range(2):
        watches = [api.health_watch("" if i % 2 else "product.ProductService",
                                    timeout=30 * h.SLOW) for i in range(20)]
        try:
            for i, w in enumerate(watches):
                expect_eq(next(w).status, status("SERVING"), "watcher %d first message" % i)
        finally:
            for w in watches:
                w.cancel()
        for i, w in enumerate(watches):
            expect_code("CANCELLED", lambda: next(w), "watcher %d after cancel" % i)
        expect_eq(api.health_check("").status, status("SERVING"), "Check after cancelled watchers")
    # Watchers that were never read from, closed with their channel.
    ch = h.Api(S["srv"])
    lazy = [ch.health_watch("", timeout=30 * h.SLOW) for _ in range(5)]
    ch.close()
    for w in lazy:
        expect_code("CANCELLED", lambda: next(w), "watcher on a closed channel")
    expect_eq(api.health_check("product.ProductService").status, status("SERVING"),
              "Check after a closed channel")
    # ProductService works too.
    expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="none"), "GetProduct")


def watch_until_end(api, name, started, out):
    """Collects every status of a Watch stream and the code it ends with."""
    grpc = h.grpc_mod()
    msgs = []
    try:
        # A deadline far beyond the test's waits: a stream that ends at all
        # before it was ended by the server (UNAVAILABLE), not by the clock.
        for m in api.health_watch(name, timeout=600):
            msgs.append(m.status)
            if len(msgs) == 1:
                started.release()
        out.append((name, msgs, grpc.StatusCode.OK, "stream ended with OK"))
    except grpc.RpcError as e:
        if not msgs:
            started.release()
        out.append((name, msgs, e.code(), e.details()))


def test_sigterm_watchers_see_not_serving_then_unavailable_and_exit_zero():
    srv, api = S["srv"], S["api"]
    started = threading.Semaphore(0)
    out = []
    names = ["", "product.ProductService"] * 3
    threads = [threading.Thread(target=watch_until_end, args=(api, n, started, out))
               for n in names]
    for t in threads:
        t.start()
    for _ in threads:
        assert started.acquire(timeout=10 * h.SLOW), "a watcher got no first message"
    t0 = time.monotonic()
    srv.proc.send_signal(15)
    for t in threads:
        t.join(timeout=max(1, t0 + 120 * h.SLOW - time.monotonic()))
        assert not t.is_alive(), "a Watch stream did not end after SIGTERM"
    ended = time.monotonic() - t0
    grpc = h.grpc_mod()
    for name, msgs, code, details in out:
        expect_eq(msgs, [status("SERVING"), status("NOT_SERVING")],
                  "statuses seen by Watch(%r)" % name)
        expect_eq(code, grpc.StatusCode.UNAVAILABLE, "Watch(%r) end (%r)" % (name, details))
    print("     watch streams ended %.1fs after SIGTERM" % ended)
    api.close()
    expect_eq(srv.stop(), 0, "exit status after SIGTERM")


if __name__ == "__main__":
    setup()
    try:
        h.main([
            test_check_serving_for_empty_and_product_service,
            test_check_unknown_service_is_not_found,
            test_watch_streams_current_status,
            test_20_watchers_cancelled_by_the_client_leave_the_server_healthy,
            test_sigterm_watchers_see_not_serving_then_unavailable_and_exit_zero,
        ])
    finally:
        S["srv"].cleanup()
