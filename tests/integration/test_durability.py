"""Durability of the SQLite store over the wire: every create that returned
OK survives kill -9 of the server (and SIGTERM under load loses nothing);
pages stay consistent after a restart on the same file."""

import os
import shutil
import signal
import tempfile
import threading
import time

import harness as h

WRITERS = 4


def _hammer(server, token, stop, acked, errors):
    """Creates products as fast as it can until stop is set; records every
    id whose create returned OK."""
    grpc = h.grpc_mod()
    with h.Api(server) as api:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                p = api.create(token, name="durable-%d-%d" % (threading.get_ident(), n),
                               price=float(n), categories=["d"])
            except grpc.RpcError as e:
                # The server went away mid-call: not acknowledged, may or may
                # not be stored; both are fine.
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                    grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
                                    grpc.StatusCode.UNKNOWN):
                    errors.append(e.code())
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    return
                continue
            acked.append(p.id)


# Creates acknowledged before the stop: enough to prove something, counted
# rather than hoped for after a fixed time (the writers keep going meanwhile).
MIN_ACKED = 40


def _load_until(server, token, stop_action):
    stop = threading.Event()
    acked, errors = [], []
    threads = [threading.Thread(target=_hammer, args=(server, token, stop, acked, errors))
               for _ in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120 * h.SLOW
    while len(acked) < MIN_ACKED and not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    code = stop_action()
    stop.set()
    for t in threads:
        t.join(timeout=30 * h.SLOW)
        assert not t.is_alive(), "a writer did not stop"
    assert not errors, "unexpected status codes: %r" % errors[:5]
    return code, acked


def _all_ids(server):
    """Every stored id, by paging through ListProducts (page size 100)."""
    ids, token = [], ""
    with h.Api(server) as api:
        for _ in range(100000):
            r = api.call("ListProducts", page_size=100, page_token=token)
            ids.extend(p.id for p in r.products)
            token = r.next_page_token
            if not token:
                break
        total = r.total_size
    assert len(ids) == len(set(ids)), "a product was listed twice"
    assert total == len(ids), "total_size %d but %d listed" % (total, len(ids))
    return ids


def _run(sig):
    tmp = tempfile.mkdtemp(prefix="product-durable-")  # outlives both servers
    try:
        _run_in(sig, "sqlite:" + os.path.join(tmp, "data", "products.db"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_in(sig, db):
    secret = "d" * 40
    s1 = h.Server(store=db, secret=secret).start()
    try:
        token = h.make_token(secret, role="user")
        if sig == signal.SIGKILL:
            code, acked = _load_until(s1, token, lambda: s1.kill() or -9)
        else:
            code, acked = _load_until(s1, token, lambda: s1.stop(signal.SIGTERM))
            h.expect_eq(code, 0, "exit status after SIGTERM under load")
        assert len(acked) >= MIN_ACKED, "too few creates acknowledged (%d) to prove anything" % (
            len(acked))
    finally:
        s1.cleanup()
    s2 = h.Server(store=db, secret=secret).start()
    try:
        stored = set(_all_ids(s2))
        lost = [i for i in acked if i not in stored]
        assert not lost, "%d acknowledged creates lost after %s, e.g. %s" % (
            len(lost), "kill -9" if sig == signal.SIGKILL else "SIGTERM", lost[:3])
        with h.Api(s2) as api:  # and each one reads back whole
            p = api.call("GetProduct", id=acked[-1])
            h.expect_eq(list(p.categories), ["d"], "categories after restart")
        h.expect_eq(s2.stop(), 0, "exit status")
    finally:
        s2.cleanup()


def test_every_acknowledged_create_survives_kill_9():
    _run(signal.SIGKILL)


def test_sigterm_under_load_loses_nothing():
    _run(signal.SIGTERM)


if __name__ == "__main__":
    h.main([test_every_acknowledged_create_survives_kill_9,
            test_sigterm_under_load_loses_nothing])
