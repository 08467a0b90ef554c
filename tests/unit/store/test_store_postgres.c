/* The PostgreSQL backend's own behaviour, beyond the shared suite
 * (test_store_behaviour.c): an unreachable server at open, schema
 * migration under concurrent starts, a newer schema refused, a version 1
 * database migrated forward (the maintained count), and pooled
 * connections that PostgreSQL dropped being replaced without a failed call.
 * The parts that need a server run when PRODUCT_TEST_PG_DSN names a
 * database the test may create schemas in (tests/integration/
 * test_store_postgres.py starts one and runs this). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/arena.h"
#include "store/store.h"

#ifdef PRODUCT_HAVE_POSTGRES
#include <libpq-fe.h>

#include "store/store_postgres.h"

static const char *dsn(void) {
  const char *d = getenv("PRODUCT_TEST_PG_DSN");
  return d && *d ? d : NULL;
}

static void skip_without_server(void) {
  if (!dsn()) {
    print_message("[ SKIPPED  ] PRODUCT_TEST_PG_DSN is not set\n");
    skip();
  }
}


static void exec_ok(PGconn *db, const char *sql) {
  PGresult *r = PQexec(db, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    print_error("%s: %s\n", sql, PQresultErrorMessage(r));
  assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
  PQclear(r);
}

static PGconn *admin(void) {
  PGconn *db = PQconnectdb(dsn());
  assert_int_equal(PQstatus(db), CONNECTION_OK);
  exec_ok(db, "SET client_min_messages = warning");
  return db;
}

static char *query_one(PGconn *db, const char *sql) {
  PGresult *r = PQexec(db, sql);
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  assert_int_equal(PQntuples(r), 1);
  char *v = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

/* A fresh schema, and the test DSN with search_path pointing into it. */
static void fresh_schema(PGconn *db, const char *schema, char *spec, size_t n) {
  char sql[256];
  snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
  exec_ok(db, sql);
  snprintf(spec, n, "%s%soptions=-csearch_path%%3D%s", dsn(), strchr(dsn(), '?') ? "&" : "?",
           schema);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- no server --- */

/* A loopback listener that never accepts: connects complete in the kernel
 * and then nothing answers, as with a hung server. *port gets its port. */
static int silent_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 64), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

/* A server that accepts connections and never answers: the open waits one
 * connect timeout (2 s) and the store starts unhealthy. Then every call
 * fails at once: one that tried to connect would wait a connect timeout
 * itself, so five of them would take at least 10 s however fast the
 * machine is. The bound (8 s) sits below that, far above a fast failure. */
static void an_unreachable_server_opens_unhealthy_and_calls_are_unavailable(void **state) {
  (void)state;
  int port;
  int fd = silent_listener(&port);
  char uri[128];
  snprintf(uri, sizeof uri,
           "postgres://nobody@127.0.0.1:%d/products?sslmode=disable&connect_timeout=2", port);
  store *s = NULL;
  char err[256] = "";
  store_options opt = {.pool_size = 2};
  assert_int_equal(store_open(uri, &opt, &s, err, sizeof err), 0);
  assert_non_null(s);
  assert_false(store_healthy(s));
  arena *a = arena_create(4096);
  product p = {.id = "00000000-0000-4000-8000-000000000001", .name = "x", .description = ""};
  product out;
  product_patch patch = {.fields = PATCH_NAME, .name = "y", .updated_us = 1};
  store_list_result r;
  double t0 = now_s();
  assert_int_equal(store_create(s, &p), STORE_UNAVAILABLE);
  assert_int_equal(store_get(s, p.id, a, &out), STORE_UNAVAILABLE);
  assert_int_equal(store_update(s, p.id, &patch, a, &out), STORE_UNAVAILABLE);
  assert_int_equal(store_remove(s, p.id), STORE_UNAVAILABLE);
  assert_int_equal(store_list(s, NULL, NULL, 10, a, &r), STORE_UNAVAILABLE);
  double took = now_s() - t0;
  assert_false(store_healthy(s));
  store_destroy(s);
  arena_destroy(a);
  close(fd);
  if (took >= 8.0) fail_msg("calls waited %.1f s: no fail-fast", took);
}

/* A refused port (nothing listens) is unhealthy too, and its calls are
 * UNAVAILABLE. */
static void a_refused_port_opens_unhealthy(void **state) {
  (void)state;
  store *s = NULL;
  char err[256] = "";
  store_options opt = {.pool_size = 2};
  assert_int_equal(store_open("postgres://nobody@127.0.0.1:1/products?sslmode=disable", &opt, &s,
                              err, sizeof err),
                   0);
  assert_non_null(s);
  assert_false(store_healthy(s));
  product p = {.id = "00000000-0000-4000-8000-000000000001", .name = "x", .description = ""};
  assert_int_equal(store_create(s, &p), STORE_UNAVAILABLE);
  store_destroy(s);
}

/* ------------------------------------------------------------ with server --- */

typedef struct opener {
  const char *spec;
  store *s;
  int rc;
  char err[256];
} opener;

static void *open_main(void *arg) {
  opener *o = arg;
  store_options opt = {.pool_size = 2};
  o->rc = store_open(o->spec, &opt, &o->s, o->err, sizeof o->err);
  return NULL;
}

static void replicas_starting_together_migrate_once(void **state) {
  (void)state;
  skip_without_server();
  PGconn *db = admin();
  char spec[1024];
  fresh_schema(db, "unit_race", spec, sizeof spec);
  enum { N = 6 };
  opener o[N];
  pthread_t t[N];
  for (int i = 0; i < N; i++) {
    o[i] = (opener){.spec = spec};
    assert_int_equal(pthread_create(&t[i], NULL, open_main, &o[i]), 0);
  }
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < N; i++) {
    if (o[i].rc != 0) print_error("open %d: %s\n", i, o[i].err);
    assert_int_equal(o[i].rc, 0);
    assert_true(store_healthy(o[i].s));
  }
  /* What one replica writes, the others read. */
  arena *a = arena_create(4096);
  product p = {.id = "00000000-0000-4000-8000-000000000007", .name = "shared",
               .description = "", .created_us = 5, .updated_us = 5};
  assert_int_equal(store_create(o[0].s, &p), STORE_OK);
  product got;
  assert_int_equal(store_get(o[N - 1].s, p.id, a, &got), STORE_OK);
  assert_string_equal(got.name, "shared");
  for (int i = 0; i < N; i++) store_destroy(o[i].s);
  arena_destroy(a);
  char *v = query_one(db, "SELECT string_agg(version::text, ',') FROM unit_race.schema_version");
  char want[16];
  snprintf(want, sizeof want, "%d", STORE_POSTGRES_SCHEMA_VERSION);
  assert_string_equal(v, want);
  free(v);
  exec_ok(db, "DROP SCHEMA unit_race CASCADE");
  PQfinish(db);
}

static void a_schema_newer_than_the_build_is_refused_at_open(void **state) {
  (void)state;
  skip_without_server();
  PGconn *db = admin();
  char spec[1024];
  fresh_schema(db, "unit_newer", spec, sizeof spec);
  exec_ok(db, "CREATE TABLE unit_newer.schema_version (version INTEGER NOT NULL);"
              "INSERT INTO unit_newer.schema_version VALUES (999)");
  store *s = NULL;
  char err[256] = "";
  assert_int_not_equal(store_open(spec, NULL, &s, err, sizeof err), 0);
  assert_null(s);
  assert_non_null(strstr(err, "999"));
  exec_ok(db, "DROP SCHEMA unit_newer CASCADE");
  PQfinish(db);
}

static void a_version_1_database_migrates_forward_and_keeps_its_count(void **state) {
  (void)state;
  skip_without_server();
  PGconn *db = admin();
  char spec[1024];
  fresh_schema(db, "unit_forward", spec, sizeof spec);
  store *s = NULL;
  char err[256] = "";
  assert_int_equal(store_open(spec, NULL, &s, err, sizeof err), 0);
  store_destroy(s);
  /* Back to version 1 (no maintained count), with rows written meanwhile. */
  exec_ok(db, "SET search_path = unit_forward;"
              "DROP TRIGGER products_count ON products; DROP FUNCTION product_count_track();"
              "DROP TABLE product_count; DROP TABLE product_requests;"
              "UPDATE schema_version SET version = 1;"
              "INSERT INTO products SELECT '00000000-0000-4000-8000-' || lpad(i::text, 12, '0'),"
              " 'old', '', 1, i, i FROM generate_series(1, 7) AS i;"
              "RESET search_path");
  assert_int_equal(store_open(spec, NULL, &s, err, sizeof err), 0);
  arena *a = arena_create(4096);
  store_list_result r;
  assert_int_equal(store_list(s, NULL, NULL, 3, a, &r), STORE_OK);
  assert_int_equal(r.total, 7);
  assert_int_equal(r.n, 3);
  assert_true(r.more);
  assert_int_equal(store_remove(s, r.items[0].id), STORE_OK);
  assert_int_equal(store_list(s, NULL, NULL, 3, a, &r), STORE_OK);
  assert_int_equal(r.total, 6);
  store_destroy(s);
  arena_destroy(a);
  char *v = query_one(db, "SELECT version FROM unit_forward.schema_version");
  char want[16];
  snprintf(want, sizeof want, "%d", STORE_POSTGRES_SCHEMA_VERSION);
  assert_string_equal(v, want);
  free(v);
  exec_ok(db, "DROP SCHEMA unit_forward CASCADE");
  PQfinish(db);
}

/* Today's schema before request ids (version 2), as released: migrations
 * 1 and 2 verbatim, with products in it. */
static const char PG_V2_SCHEMA[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (2);"
    "CREATE TABLE products ("
    "  id TEXT COLLATE \"C\" NOT NULL PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  price DOUBLE PRECISION NOT NULL,"
    "  created_us BIGINT NOT NULL,"
    "  updated_us BIGINT NOT NULL);"
    "CREATE INDEX products_by_created ON products (created_us, id);"
    "CREATE TABLE product_categories ("
    "  product_id TEXT COLLATE \"C\" NOT NULL REFERENCES products (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  value TEXT COLLATE \"C\" NOT NULL,"
    "  PRIMARY KEY (product_id, position));"
    "CREATE INDEX product_categories_by_value ON product_categories (value, product_id);"
    "CREATE TABLE product_count (shard INTEGER NOT NULL PRIMARY KEY, n BIGINT NOT NULL);"
    "INSERT INTO product_count (shard, n) SELECT s, 0 FROM generate_series(0, 63) AS s;"
    "CREATE FUNCTION product_count_track() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  UPDATE product_count SET n = n + CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END"
    "   WHERE shard = pg_backend_pid() % 64;"
    "  RETURN NULL;"
    " END $$;"
    "CREATE TRIGGER products_count AFTER INSERT OR DELETE ON products"
    "  FOR EACH ROW EXECUTE FUNCTION product_count_track();"
    "INSERT INTO products SELECT '00000000-0000-4000-8000-' || lpad(i::text, 12, '0'),"
    " 'old', '', 1, i, i FROM generate_series(1, 5) AS i;"
    "INSERT INTO product_categories VALUES ('00000000-0000-4000-8000-000000000002', 0, 'x');";

static void *open_close_main(void *arg) {
  const char *spec = arg;
  store *s = NULL;
  char err[256];
  if (store_open(spec, NULL, &s, err, sizeof err) != 0) return (void *)1;
  store_destroy(s);
  return NULL;
}

/* A database at version 2 that two replicas open at once: migrated once to
 * the current version; its products keep their rows, count and categories,
 * their etags (from updated_us) work at once, and request ids work. */
static void a_version_2_database_gains_request_ids_and_keeps_its_products(void **state) {
  (void)state;
  skip_without_server();
  PGconn *db = admin();
  char spec[1024];
  fresh_schema(db, "unit_v2", spec, sizeof spec);
  exec_ok(db, "SET search_path = unit_v2");
  exec_ok(db, PG_V2_SCHEMA);
  exec_ok(db, "RESET search_path");
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, open_close_main, spec), 0);
  for (int i = 0; i < 2; i++) {
    void *rc = NULL;
    pthread_join(t[i], &rc);
    assert_null(rc);
  }
  char *v = query_one(db, "SELECT string_agg(version::text, ',') FROM unit_v2.schema_version");
  char want[16];
  snprintf(want, sizeof want, "%d", STORE_POSTGRES_SCHEMA_VERSION);
  assert_string_equal(v, want);
  free(v);
  store *s = NULL;
  char err[256] = "";
  assert_int_equal(store_open(spec, NULL, &s, err, sizeof err), 0);
  arena *a = arena_create(4096);
  store_list_result r;
  assert_int_equal(store_list(s, NULL, NULL, 10, a, &r), STORE_OK);
  assert_int_equal(r.total, 5);
  assert_int_equal(r.items[1].n_categories, 1);
  product out;
  product_patch stale = {.fields = PATCH_NAME, .name = "n", .updated_us = 100, .if_match = true,
                         .match_updated_us = 1};
  assert_int_equal(store_update(s, r.items[1].id, &stale, a, &out), STORE_CONFLICT);
  product_patch current = stale;
  current.match_updated_us = 2;
  assert_int_equal(store_update(s, r.items[1].id, &current, a, &out), STORE_OK);
  assert_int_equal(out.n_categories, 1);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  store_request req = {.caller = "alice", .id = "6f1c0a4e-0000-4000-8000-000000000001",
                       .fingerprint = "fp",
                       .now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000};
  product p = {.name = "new", .description = "", .created_us = req.now_us,
               .updated_us = req.now_us};
  snprintf(p.id, sizeof p.id, "00000000-0000-4000-8000-000000000100");
  product first, again;
  assert_int_equal(store_create_once(s, &p, &req, a, &first), STORE_OK);
  snprintf(p.id, sizeof p.id, "00000000-0000-4000-8000-000000000101");
  assert_int_equal(store_create_once(s, &p, &req, a, &again), STORE_OK);
  assert_string_equal(again.id, first.id);
  assert_int_equal(store_list(s, NULL, NULL, 10, a, &r), STORE_OK);
  assert_int_equal(r.total, 6);
  store_destroy(s);
  arena_destroy(a);
  exec_ok(db, "DROP SCHEMA unit_v2 CASCADE");
  PQfinish(db);
}

static void connections_the_server_dropped_are_replaced_without_a_failed_call(void **state) {
  (void)state;
  skip_without_server();
  PGconn *db = admin();
  char spec[1024];
  fresh_schema(db, "unit_reconnect", spec, sizeof spec);
  store *s = NULL;
  char err[256] = "";
  store_options opt = {.pool_size = 3};
  assert_int_equal(store_open(spec, &opt, &s, err, sizeof err), 0);
  arena *a = arena_create(4096);
  product p = {.id = "00000000-0000-4000-8000-000000000009", .name = "kept",
               .description = "", .created_us = 1, .updated_us = 1};
  assert_int_equal(store_create(s, &p), STORE_OK);
  for (int round = 0; round < 3; round++) {
    /* Every backend of this store (and only those: our admin session is
     * not named product-service), and wait until they are gone. */
    char *n = query_one(db, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                            " WHERE application_name = 'product-service'"
                            " AND pid <> pg_backend_pid()");
    assert_true(strtol(n, NULL, 10) >= 1); /* at least the pooled one used last round */
    free(n);
    product got;
    for (int i = 0; i < 4; i++) {
      assert_int_equal(store_get(s, p.id, a, &got), STORE_OK);
      assert_string_equal(got.name, "kept");
    }
    store_list_result r;
    assert_int_equal(store_list(s, NULL, NULL, 10, a, &r), STORE_OK);
    assert_int_equal(r.total, 1);
    arena_reset(a);
  }
  store_destroy(s);
  arena_destroy(a);
  exec_ok(db, "DROP SCHEMA unit_reconnect CASCADE");
  PQfinish(db);
}

int main(void) {
  const struct CMUnitTest serverless[] = {
      cmocka_unit_test(an_unreachable_server_opens_unhealthy_and_calls_are_unavailable),
      cmocka_unit_test(a_refused_port_opens_unhealthy),
  };
  const struct CMUnitTest with_server[] = {
      cmocka_unit_test(replicas_starting_together_migrate_once),
      cmocka_unit_test(a_schema_newer_than_the_build_is_refused_at_open),
      cmocka_unit_test(a_version_1_database_migrates_forward_and_keeps_its_count),
      cmocka_unit_test(a_version_2_database_gains_request_ids_and_keeps_its_products),
      cmocka_unit_test(connections_the_server_dropped_are_replaced_without_a_failed_call),
  };
  int failed = cmocka_run_group_tests(serverless, NULL, NULL);
  if (!dsn()) {
    /* Not a skip: integration.test_store_postgres runs them with a server
     * and fails when this line is printed there. */
    print_message("[ NOT HERE ] %zu tests need PRODUCT_TEST_PG_DSN (run by "
                  "integration.test_store_postgres)\n",
                  sizeof(with_server) / sizeof(with_server[0]));
    return failed;
  }
  return failed + cmocka_run_group_tests(with_server, NULL, NULL);
}

#else /* no libpq: the backend is not built, and says so */

static void without_libpq_a_postgres_spec_fails_to_open_with_a_reason(void **state) {
  (void)state;
  store *s = NULL;
  char err[256] = "";
  assert_int_not_equal(store_open("postgres://db/products", NULL, &s, err, sizeof err), 0);
  assert_null(s);
  assert_true(err[0] != '\0');
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(without_libpq_a_postgres_spec_fails_to_open_with_a_reason),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
