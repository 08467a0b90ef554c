"""Retry-safe writes on two replicas sharing one PostgreSQL (a throw-away
cluster, pgtemp.py): 8 CreateProduct calls with one request id spread over
both servers create exactly one product, and 8 UpdateProduct calls with one
etag over both apply exactly once, 50 rounds each, started by a barrier. A
request id used on one replica is answered by the other, and survives a
restart of both. Skips only when the PostgreSQL binaries are not installed."""

import secrets
import sys
import uuid

import harness as h
import pgtemp
import retry_races
from harness import expect_eq

S = {}


def setup():
    pg = S["pg"] = pgtemp.PgTemp().start()
    S["dsn"] = pg.create_database("retry")
    S["secret"] = secrets.token_hex(24)
    S["a"] = h.Server(store=S["dsn"], secret=S["secret"]).start()
    S["b"] = h.Server(store=pg.socket_dsn("retry"), secret=S["secret"]).start()
    S["apis"] = [h.Api(S["a"]), h.Api(S["b"])]
    S["user"] = h.make_token(S["secret"], sub="alice")


def test_a_request_id_used_on_one_replica_is_answered_by_the_other():
    a, b = S["apis"]
    rid = str(uuid.uuid4())
    first = a.call("CreateProduct", token=S["user"], name="cross-" + rid[:8], request_id=rid)
    expect_eq(b.call("CreateProduct", token=S["user"], name="cross-" + rid[:8], request_id=rid),
              first, "the retry on the other replica")
    h.expect_code("ALREADY_EXISTS", lambda: b.call("CreateProduct", token=S["user"],
                                                   name="other", request_id=rid), "other fields")
    # Both replicas restart (a new process each): the id is still known.
    for key in ("a", "b"):
        S[key].stop()
        S[key].cleanup()
    for api in S["apis"]:
        api.close()
    S["a"] = h.Server(store=S["dsn"], secret=S["secret"]).start()
    S["b"] = h.Server(store=S["pg"].socket_dsn("retry"), secret=S["secret"]).start()
    S["apis"] = [h.Api(S["a"]), h.Api(S["b"])]
    expect_eq(S["apis"][1].call("CreateProduct", token=S["user"], name="cross-" + rid[:8],
                                request_id=rid).id, first.id, "after a restart of both")


def test_races_on_two_replicas():
    n = retry_races.creates_with_one_request_id(S["apis"], S["user"], "pg")
    applied, aborted = retry_races.updates_with_one_etag(S["apis"], S["user"], "pg")
    print("  two PostgreSQL replicas: %d rounds x %d creates with one request id -> 1 product "
          "each; %d rounds x %d updates with one etag -> %d applied, %d ABORTED" % (
              n, retry_races.THREADS, applied, retry_races.THREADS, applied, aborted))
    rows = S["pg"].query("SELECT COUNT(*) FROM product_requests", db="retry")
    print("  product_requests rows: %s" % rows)


def cleanup():
    for api in S["apis"]:
        api.close()
    for key in ("a", "b"):
        expect_eq(S[key].stop(), 0, "server %s exit status" % key)
        S[key].cleanup()


if __name__ == "__main__":
    if not pgtemp.find_bindir():
        h.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    try:
        setup()
        h.main([test_a_request_id_used_on_one_replica_is_answered_by_the_other,
                test_races_on_two_replicas, cleanup])
    finally:
        S["pg"].cleanup()
        sys.stdout.flush()
