"""The store suites on a real PostgreSQL: starts a throw-away cluster
(pgtemp.py), then runs the built unit programs with PRODUCT_TEST_PG_DSN set:
test_store_behaviour (the behaviour every backend shares, on its postgres
row) and test_store_postgres (open while unreachable, concurrent
migrations, a newer schema, dropped connections). Skips only when the
PostgreSQL server binaries are not installed."""

import os
import subprocess
import sys

import harness as h
import pgtemp

BUILD = os.environ.get("PRODUCT_BUILD_DIR") or os.path.join(h.SRC, "build")
PG = {}


def run_unit(name, dsn):
    exe = os.path.join(BUILD, "tests", name)
    if not os.access(exe, os.X_OK):
        raise AssertionError("%s is not built (PRODUCT_BUILD_DIR=%s)" % (exe, BUILD))
    env = dict(os.environ, PRODUCT_TEST_PG_DSN=dsn)
    p = subprocess.run([exe], env=env, capture_output=True, timeout=300 * h.SLOW)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise AssertionError("%s failed (exit %d):\n%s\n%s" % (
            name, p.returncode, out[-6000:], p.stderr.decode(errors="replace")[-3000:]))
    return out


def test_shared_behaviour_suite_passes_on_postgres():
    out = run_unit("test_store_behaviour", PG["pg"].create_database("behaviour"))
    # The postgres row ran (it is skipped, not failed, without a DSN).
    if "[ BACKEND  ] store_behaviour.postgres" not in out:
        raise AssertionError("the postgres row did not run:\n" + out[-3000:])
    if "SKIPPED" in out or "NOT HERE" in out:
        raise AssertionError("a backend or test was skipped:\n" + out[-3000:])


def test_postgres_backend_suite_passes():
    out = run_unit("test_store_postgres", PG["pg"].create_database("backend"))
    if "SKIPPED" in out or "NOT HERE" in out:
        raise AssertionError("tests were skipped although a DSN was given:\n" + out[-3000:])
    if "[==========] 5 test(s) run." not in out:
        raise AssertionError("the tests that need a server did not run:\n" + out[-3000:])


if __name__ == "__main__":
    if not pgtemp.find_bindir():
        h.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    PG["pg"] = pgtemp.PgTemp().start()
    try:
        h.main([test_shared_behaviour_suite_passes_on_postgres,
                test_postgres_backend_suite_passes])
    finally:
        PG["pg"].cleanup()
        sys.stdout.flush()
