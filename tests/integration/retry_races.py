"""The races of the retry-safe writes contract, over the wire, shared by
test_retry_safe.py (one server) and test_retry_safe_postgres.py (two servers
on one PostgreSQL): per round, 8 threads released together by a barrier
(no sleeps) send CreateProduct with one request id, or UpdateProduct with
one etag, spread over the given APIs. Exactly one effect per round."""

import threading
import uuid

import harness as h
from harness import expect_eq

THREADS = 8
ROUNDS = 50


def _race(apis, fn):
    """Runs fn(api, k) in THREADS threads started by one barrier; returns
    [(status code, result)] in thread order."""
    barrier = threading.Barrier(THREADS)
    out = [None] * THREADS

    def worker(k):
        barrier.wait(timeout=60 * h.SLOW)
        code, _, res = h.status_of(lambda: fn(apis[k % len(apis)], k))
        out[k] = (code, res)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120 * h.SLOW)
        if t.is_alive():
            raise AssertionError("a racing call did not end")
    return out


def creates_with_one_request_id(apis, token, tag):
    """Every call answers OK with the same product, and one product exists."""
    grpc = h.grpc_mod()
    created = 0
    for round_ in range(ROUNDS):
        name = "race-%s-%d-%s" % (tag, round_, uuid.uuid4().hex[:8])
        rid = str(uuid.uuid4())
        out = _race(apis, lambda api, k: api.call("CreateProduct", token=token, name=name,
                                                  price=2.5, request_id=rid))
        codes = [c for c, _ in out]
        if any(c != grpc.StatusCode.OK for c in codes):
            raise AssertionError("round %d: codes %r" % (round_, codes))
        ids = {r.id for _, r in out}
        expect_eq(len(ids), 1, "round %d: distinct product ids returned" % round_)
        for api in apis:
            total = api.call("ListProducts", filter='name = "%s"' % name).total_size
            expect_eq(total, 1, "round %d: products named %s" % (round_, name))
        created += 1
    return created


def updates_with_one_etag(apis, token, tag):
    """One update applies, the other seven are ABORTED, and the product moved
    exactly once (its etag from the winner's reply)."""
    grpc = h.grpc_mod()
    applied = aborted = 0
    for round_ in range(ROUNDS):
        p = apis[0].call("CreateProduct", token=token, name="start-%s-%d" % (tag, round_))
        out = _race(apis, lambda api, k: api.call("UpdateProduct", token=token, id=p.id,
                                                  name="writer-%d" % k, etag=p.etag))
        ok = [r for c, r in out if c == grpc.StatusCode.OK]
        ab = [c for c, _ in out if c == grpc.StatusCode.ABORTED]
        if len(ok) != 1 or len(ab) != THREADS - 1:
            raise AssertionError("round %d: %d applied, %d ABORTED: %r" % (
                round_, len(ok), len(ab), [c for c, _ in out]))
        for api in apis:
            now = api.call("GetProduct", id=p.id)
            expect_eq((now.name, now.etag), (ok[0].name, ok[0].etag), "round %d: stored" % round_)
        applied += 1
        aborted += len(ab)
    return applied, aborted
