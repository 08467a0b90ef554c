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


# The only answers a create may get instead of OK, and only once the stop
# has begun: the server went away mid-call or refused a new one (UNAVAILABLE),
# or cancelled a call it was draining (CANCELLED). Such a call is not
# acknowledged and may or may not be stored. Any other failure (INTERNAL,
# UNKNOWN, DEADLINE_EXCEEDED...), or any failure before the stop, is an error.
AROUND_THE_STOP = ("UNAVAILABLE", "CANCELLED")


def _hammer(server, token, stop, stopping, acked, failed, errors):
    """Creates products as fast as it can until stop is set; records every
    id whose create returned OK, and every failed call (code, name, whether
    the stop had begun)."""
    grpc = h.grpc_mod()
    with h.Api(server) as api:
        n = 0
        while not stop.is_set():
            n += 1
            name = "durable-%d-%d" % (threading.get_ident(), n)
            try:
                p = api.create(token, name=name, price=float(n), categories=["d"])
            except grpc.RpcError as e:
                around = stopping.is_set()
                failed.append((e.code().name, name, around))
                if not around or e.code().name not in AROUND_THE_STOP:
                    errors.append("%s%s: %s" % (e.code().name, "" if around else
                                                " before the stop", e.details()))
                    return
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    return  # the server is gone: this writer is done
                continue
            acked.append(p.id)


# Creates acknowledged before the stop: enough to prove something, counted
# rather than hoped for after a fixed time (the writers keep going meanwhile).
MIN_ACKED = 40


def _load_until(server, token, stop_action):
    """Returns (stop_action's result, acknowledged ids, failed calls)."""
    stop, stopping = threading.Event(), threading.Event()
    acked, failed, errors = [], [], []
    threads = [threading.Thread(target=_hammer,
                                args=(server, token, stop, stopping, acked, failed, errors))
               for _ in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120 * h.SLOW
    while len(acked) < MIN_ACKED and not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not errors, "failed calls before the stop: %r" % errors[:5]
    stopping.set()
    code = stop_action()
    stop.set()
    for t in threads:
        t.join(timeout=30 * h.SLOW)
        assert not t.is_alive(), "a writer did not stop"
    assert not errors, "unexpected failures: %r" % errors[:5]
    # Each writer has at most one call in flight when the server goes, and
    # then makes at most one more (refused: UNAVAILABLE ends it); a
    # CANCELLED one continues, once more.
    assert len(failed) <= 2 * WRITERS, "%d failed calls around the stop: %r" % (
        len(failed), failed[:8])
    print("     failed calls around the stop: %s" % (
        ", ".join("%s x%d" % (c, sum(1 for f in failed if f[0] == c))
                  for c in sorted({f[0] for f in failed})) or "none"))
    return code, acked, failed


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
            code, acked, failed = _load_until(s1, token, lambda: s1.kill() or -9)
        else:
            code, acked, failed = _load_until(s1, token, lambda: s1.stop(signal.SIGTERM))
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
            # Stored without an OK: only the calls that failed around the stop
            # (each one at most once); never one that no call accounts for.
            extra = stored - set(acked)
            maybe = {name for _, name, _ in failed}
            strays = [n for n in (api.call("GetProduct", id=pid).name for pid in extra)
                      if n not in maybe]
            assert not strays, "stored, never acknowledged nor failed: %r" % strays[:3]
        assert len(extra) <= len(failed), "%d products stored without an OK, %d failed calls" % (
            len(extra), len(failed))
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
