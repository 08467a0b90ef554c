"""Concurrent load and shutdown under load (product-server(8) "product-server":
on SIGTERM the server stops accepting calls, lets calls in flight finish and
exits 0). 8 client threads make mixed calls with every reply checked; then
SIGTERM arrives in the middle of such a load: every call either succeeds
(with a correct reply) or gets UNAVAILABLE/CANCELLED, never INTERNAL or a
hang, and the server exits 0 within the drain time."""

import random
import threading
import time

import harness as h
from harness import expect_eq

THREADS = 8
CALLS = 500 if not h.SANITIZE else 150
# Seconds (scaled by SLOW in harness.Api): a hang fails the call. Far above
# what a call takes on a loaded machine, so DEADLINE_EXCEEDED means a hang.
CALL_TIMEOUT = 30
DRAIN_S = 10
# What the process may take beyond the drain to exit (the drain is the
# contract; this is only the time to close down, generous for a loaded machine).
EXIT_SLACK_S = 5


class Worker:
    """One client thread: its own channel, its own products, a model of
    what the server must answer."""

    def __init__(self, srv, seed, user, admin):
        self.api = h.Api(srv)
        self.rng = random.Random(seed)
        self.user, self.admin = user, admin
        self.seed = seed
        self.mine = {}  # id -> Product as last returned
        self.deleted = []
        self.errors = []
        self.codes = {}
        self.calls = 0
        self.tolerant = False  # after shutdown starts: only the status is judged

    def note(self, code):
        self.codes[code.name] = self.codes.get(code.name, 0) + 1

    def fail(self, what):
        self.errors.append("thread %d: %s" % (self.seed, what))

    def call(self, expected, method, **kw):
        """One call; returns the reply when it is OK. A status other than
        expected is an error, except UNAVAILABLE/CANCELLED in tolerant mode."""
        grpc = h.grpc_mod()
        self.calls += 1
        code, details, r = h.status_of(
            lambda: self.api.call(method, timeout=CALL_TIMEOUT, **kw))
        self.note(code)
        if self.tolerant and code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return None
        if code.name != expected:
            self.fail("%s(%r): expected %s, got %s (%r)" % (
                method, {k: v for k, v in kw.items() if k != "token"}, expected, code.name,
                details))
            return None
        return r

    def step(self):
        rng = self.rng
        op = rng.choice(["create", "create", "get", "update", "update", "list", "delete",
                         "error"])
        if op == "create" or not self.mine:
            name = "t%d-%d" % (self.seed, self.calls)
            cats = ["c%d" % rng.randrange(3)] if rng.random() < 0.5 else []
            price = round(rng.uniform(0, 100), 2)
            p = self.call("OK", "CreateProduct", token=self.user, name=name, price=price,
                          categories=cats)
            if p is not None:
                if (p.name, p.price, list(p.categories)) != (name, price, cats):
                    self.fail("create reply %r" % p)
                if p.created_at != p.updated_at or not h.UUID4_RE.match(p.id):
                    self.fail("create reply %r" % p)
                self.mine[p.id] = p
        elif op == "get":
            pid = rng.choice(list(self.mine))
            p = self.call("OK", "GetProduct", id=pid)
            if p is not None and p != self.mine[pid]:
                self.fail("get %s: %r != %r" % (pid, p, self.mine[pid]))
        elif op == "update":
            pid = rng.choice(list(self.mine))
            old = self.mine[pid]
            if rng.random() < 0.5:
                desc = "d%d" % self.calls
                p = self.call("OK", "UpdateProduct", token=self.user, id=pid, description=desc)
                want = (old.name, desc, old.price)
            else:
                p = self.call("OK", "UpdateProduct", token=self.admin, id=pid, price=0,
                              update_mask=["price"])
                want = (old.name, old.description, 0.0)
            if p is not None:
                if (p.name, p.description, p.price) != want or p.created_at != old.created_at:
                    self.fail("update %s: %r, want %r" % (pid, p, want))
                self.mine[pid] = p
        elif op == "list":
            size = rng.randrange(0, 30)
            r = self.call("OK", "ListProducts", page_size=size)
            if r is not None:
                keys = [(p.created_at.seconds, p.created_at.nanos, p.id) for p in r.products]
                if len(r.products) > (size or 10) or keys != sorted(keys):
                    self.fail("list page_size %d: %d products, sorted=%s" % (
                        size, len(r.products), keys == sorted(keys)))
                if r.total_size < len(r.products):
                    self.fail("list total_size %d < %d listed" % (r.total_size, len(r.products)))
        elif op == "delete":
            pid = rng.choice(list(self.mine))
            r = self.call("OK", "DeleteProduct", token=self.admin, id=pid)
            if r is not None:
                del self.mine[pid]
                self.deleted.append(pid)
                self.call("NOT_FOUND", "GetProduct", id=pid)
        else:
            kind = rng.randrange(4)
            if kind == 0:
                self.call("PERMISSION_DENIED", "DeleteProduct", token=self.user,
                          id=rng.choice(list(self.mine)))
            elif kind == 1:
                self.call("UNAUTHENTICATED", "CreateProduct", name="nope")
            elif kind == 2:
                self.call("INVALID_ARGUMENT", "CreateProduct", token=self.user, name="")
            else:
                self.call("NOT_FOUND", "GetProduct",
                          id=self.deleted[-1] if self.deleted else "no-such-id")


def run_workers(srv, n_calls=None, stop=None):
    user = h.make_token(srv.secret, sub="loader", role="user")
    admin = h.make_token(srv.secret, sub="boss", role="admin")
    workers = [Worker(srv, i, user, admin) for i in range(THREADS)]
    crashed = []

    def loop(w):
        try:
            while (n_calls is None or w.calls < n_calls) and not (stop and stop.is_set()):
                w.step()
        except Exception as e:  # noqa: BLE001 - a crash in the test itself
            crashed.append("thread %d crashed: %r" % (w.seed, e))

    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    return workers, threads, crashed


def test_8_threads_x_500_mixed_calls_every_reply_checked():
    with h.Server() as srv:
        t0 = time.monotonic()
        workers, threads, crashed = run_workers(srv, n_calls=CALLS)
        for t in threads:
            t.join(timeout=120 * h.SLOW)
        assert not any(t.is_alive() for t in threads), "a load thread hung"
        took = time.monotonic() - t0
        errors = crashed + [e for w in workers for e in w.errors]
        assert not errors, "%d bad replies, first: %s" % (len(errors), errors[:5])
        total = sum(w.calls for w in workers)
        assert total >= THREADS * CALLS, "only %d calls made" % total
        # The server's view matches: every thread's surviving products exist.
        api = h.Api(srv)
        listed, token = set(), ""
        while True:
            r = api.call("ListProducts", page_size=100, page_token=token)
            listed |= {p.id for p in r.products}
            token = r.next_page_token
            if not token:
                break
        for w in workers:
            missing = set(w.mine) - listed
            assert not missing, "thread %d: products missing from the list: %s" % (w.seed,
                                                                                 missing)
            gone = set(w.deleted) & listed
            assert not gone, "thread %d: deleted products still listed: %s" % (w.seed, gone)
        expect_eq(r.total_size, len(listed), "total_size after the load")
        for w in workers:
            w.api.close()
        api.close()
        internal = [l for l in srv.call_lines() if l.get("code") == "INTERNAL"]
        expect_eq(internal, [], "INTERNAL in the log")
        expect_eq(srv.stop(), 0, "exit status after SIGTERM")
        print("     %d calls in %.1fs" % (total, took))


def test_sigterm_under_load_exits_zero_and_calls_succeed_or_are_unavailable():
    with h.Server() as srv:
        stop = threading.Event()
        workers, threads, crashed = run_workers(srv, stop=stop)
        for w in workers:
            w.tolerant = True
        # Let the load build up: some calls done by every thread.
        deadline = time.monotonic() + 120 * h.SLOW
        while time.monotonic() < deadline and min(w.calls for w in workers) < 50:
            time.sleep(0.01)
        before = sum(w.calls for w in workers)
        assert before >= THREADS * 50, "load did not start (%d calls)" % before
        t0 = time.monotonic()
        srv.proc.send_signal(15)
        try:
            rc = srv.proc.wait(timeout=(DRAIN_S + 60) * h.SLOW)
        except Exception:  # noqa: BLE001
            stop.set()
            raise AssertionError("server did not exit within %ss of SIGTERM under load" %
                                 ((DRAIN_S + 60) * h.SLOW))
        took = time.monotonic() - t0
        # Some more calls against the stopped server, then stop the load.
        after_exit = sum(w.calls for w in workers)
        deadline = time.monotonic() + 60 * h.SLOW
        while time.monotonic() < deadline and sum(w.calls for w in workers) < after_exit + 16:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join(timeout=30 * h.SLOW)
        assert not any(t.is_alive() for t in threads), "a load thread hung after shutdown"
        expect_eq(rc, 0, "exit status after SIGTERM under load")
        assert took <= (DRAIN_S + EXIT_SLACK_S) * h.SLOW, "exit took %.1fs (drain is %ds)" % (
            took, DRAIN_S)
        errors = crashed + [e for w in workers for e in w.errors]
        assert not errors, "%d bad outcomes, first: %s" % (len(errors), errors[:5])
        codes = {}
        for w in workers:
            for k, v in w.codes.items():
                codes[k] = codes.get(k, 0) + v
        assert codes.get("UNAVAILABLE", 0) > 0, "no call saw the server go away: %s" % codes
        assert "INTERNAL" not in codes and "DEADLINE_EXCEEDED" not in codes, codes
        internal = [l for l in srv.call_lines() if l.get("code") == "INTERNAL"]
        expect_eq(internal, [], "INTERNAL in the log")
        for w in workers:
            w.api.close()
        print("     exit %.2fs after SIGTERM; %d calls before, codes %s" % (took, before, codes))


if __name__ == "__main__":
    h.main([
        test_8_threads_x_500_mixed_calls_every_reply_checked,
        test_sigterm_under_load_exits_zero_and_calls_succeed_or_are_unavailable,
    ])
