/* What only the SQLite backend has: a file that outlives the process,
 * schema versions and migrations, group commit, durability under kill -9.
 * Shared behaviour is in test_store_behaviour.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "store/store.h"
#include "store/store_sqlite.h"

typedef struct fixture {
  char dir[64];
  char path[128];
  char spec[160];
  arena *a;
} fixture;

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof(*fx));
  if (!fx) return -1;
  snprintf(fx->dir, sizeof(fx->dir), "/tmp/store-sqlite-XXXXXX");
  if (!mkdtemp(fx->dir)) return -1;
  snprintf(fx->path, sizeof(fx->path), "%s/products.db", fx->dir);
  snprintf(fx->spec, sizeof(fx->spec), "sqlite:%s", fx->path);
  fx->a = arena_create(1 << 14);
  *state = fx;
  return fx->a ? 0 : -1;
}

static int teardown(void **state) {
  fixture *fx = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fx->dir);
  arena_destroy(fx->a);
  free(fx);
  return 0;
}

static store *open_store(fixture *fx, bool group_commit) {
  store *s = NULL;
  char err[256];
  store_options opt = {.pool_size = 2, .group_commit = group_commit};
  if (store_open(fx->spec, &opt, &s, err, sizeof(err)) != 0) fail_msg("store_open: %s", err);
  return s;
}

static product make_product(unsigned n, const char *name) {
  product p = {.name = (char *)name, .description = "d", .price = 2,
               .created_us = 1000 + n, .updated_us = 1000 + n};
  snprintf(p.id, sizeof(p.id), "00000000-0000-4000-8000-%012u", n);
  return p;
}

static int64_t total(store *s, arena *a) {
  store_list_result r;
  assert_int_equal(store_list(s, NULL, NULL, 1, a, &r), STORE_OK);
  return r.total;
}

/* Runs SQL on the file directly; returns the first column of the first row. */
static int64_t query_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void exec_sql(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("sql: %s", msg);
  sqlite3_close(db);
}

static void reopening_keeps_every_write(void **state) {
  fixture *fx = *state;
  store *s = open_store(fx, true);
  char *cats[] = {"b", "a"};
  for (unsigned i = 0; i < 5; i++) {
    product p = make_product(i, "p");
    p.categories = cats;
    p.n_categories = 2;
    assert_int_equal(store_create(s, &p), STORE_OK);
  }
  product out, q = make_product(1, "x");
  product_patch patch = {.fields = PATCH_NAME, .name = "renamed", .updated_us = 9999};
  assert_int_equal(store_update(s, q.id, &patch, fx->a, &out), STORE_OK);
  assert_int_equal(store_remove(s, make_product(3, "x").id), STORE_OK);
  store_destroy(s);

  s = open_store(fx, true);
  assert_int_equal(total(s, fx->a), 4);
  product got;
  assert_int_equal(store_get(s, q.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, "renamed");
  assert_int_equal(got.updated_us, 9999);
  assert_int_equal(got.n_categories, 2);
  assert_string_equal(got.categories[0], "b");
  assert_int_equal(store_get(s, make_product(3, "x").id, fx->a, &got), STORE_NOT_FOUND);
  store_destroy(s);
}

static void new_file_is_at_the_current_schema_version(void **state) {
  fixture *fx = *state;
  store_destroy(open_store(fx, true));
  assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM schema_version"), 1);
  assert_int_equal(query_int(fx->path, "SELECT version FROM schema_version"),
                   STORE_SQLITE_SCHEMA_VERSION);
  /* WAL is a property of the file. */
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void reopening_does_not_run_migrations_again(void **state) {
  fixture *fx = *state;
  store *s = open_store(fx, true);
  product p = make_product(1, "p");
  assert_int_equal(store_create(s, &p), STORE_OK);
  store_destroy(s);
  for (int i = 0; i < 3; i++) {
    s = open_store(fx, true);
    assert_int_equal(total(s, fx->a), 1);
    store_destroy(s);
  }
  assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM schema_version"), 1);
  assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM product_count"), 1);
  assert_int_equal(query_int(fx->path, "SELECT n FROM product_count"), 1);
}

/* Version 1 as released (migrations are append-only, so this never changes). */
static const char V1_SCHEMA[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (1);"
    "CREATE TABLE products (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL,"
    " description TEXT NOT NULL, price REAL NOT NULL, created_us INTEGER NOT NULL,"
    " updated_us INTEGER NOT NULL);"
    "CREATE INDEX products_by_created ON products (created_us, id);"
    "CREATE TABLE product_categories (product_id TEXT NOT NULL, position INTEGER NOT NULL,"
    " value TEXT NOT NULL, PRIMARY KEY (product_id, position)) WITHOUT ROWID;"
    "CREATE INDEX product_categories_by_value ON product_categories (value, product_id);"
    "INSERT INTO products VALUES ('a', 'A', '', 1, 1, 1), ('b', 'B', '', 2, 2, 2),"
    " ('c', 'C', '', 3, 3, 3);"
    "INSERT INTO product_categories VALUES ('b', 0, 'x');";

static void version_1_file_is_migrated_forward_with_its_data(void **state) {
  fixture *fx = *state;
  exec_sql(fx->path, V1_SCHEMA);
  store *s = open_store(fx, true);
  assert_int_equal(query_int(fx->path, "SELECT version FROM schema_version"),
                   STORE_SQLITE_SCHEMA_VERSION);
  assert_int_equal(total(s, fx->a), 3); /* the new count starts from the old rows */
  product got;
  assert_int_equal(store_get(s, "b", fx->a, &got), STORE_OK);
  assert_int_equal(got.n_categories, 1);
  product p = make_product(1, "new");
  assert_int_equal(store_create(s, &p), STORE_OK);
  assert_int_equal(store_remove(s, "a"), STORE_OK);
  assert_int_equal(total(s, fx->a), 3);
  store_destroy(s);
}

/* Version 2 as released: version 1 and the maintained count. */
static const char V2_STEP[] =
    "CREATE TABLE product_count (n INTEGER NOT NULL);"
    "INSERT INTO product_count (n) SELECT COUNT(*) FROM products;"
    "CREATE TRIGGER products_count_insert AFTER INSERT ON products"
    "  BEGIN UPDATE product_count SET n = n + 1; END;"
    "CREATE TRIGGER products_count_delete AFTER DELETE ON products"
    "  BEGIN UPDATE product_count SET n = n - 1; END;"
    "UPDATE schema_version SET version = 2;";

static int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A file at version 2 (the schema before request ids) gains the request-id
 * table and keeps its products; their etags work at once. */
static void version_2_file_gains_request_ids_and_keeps_its_data(void **state) {
  fixture *fx = *state;
  exec_sql(fx->path, V1_SCHEMA);
  exec_sql(fx->path, V2_STEP);
  store *s = open_store(fx, true);
  assert_int_equal(query_int(fx->path, "SELECT version FROM schema_version"),
                   STORE_SQLITE_SCHEMA_VERSION);
  assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM product_requests"), 0);
  assert_int_equal(total(s, fx->a), 3);
  product out;
  product_patch stale = {.fields = PATCH_NAME, .name = "B2", .updated_us = 10,
                         .if_match = true, .match_updated_us = 1};
  assert_int_equal(store_update(s, "b", &stale, fx->a, &out), STORE_CONFLICT);
  product_patch current = stale;
  current.match_updated_us = 2;
  assert_int_equal(store_update(s, "b", &current, fx->a, &out), STORE_OK);
  product p = make_product(1, "new");
  store_request req = {.caller = "alice", .id = "6f1c0a4e-0000-4000-8000-000000000001",
                       .fingerprint = "fp", .now_us = wall_us()};
  assert_int_equal(store_create_once(s, &p, &req, fx->a, &out), STORE_OK);
  assert_int_equal(total(s, fx->a), 4);
  store_destroy(s);
}

/* The request id and its product commit together: a process killed right
 * after its create returned leaves both, and the retry in the next process
 * gets the first product and creates nothing. */
static void request_id_survives_kill_9_with_its_product(void **state) {
  fixture *fx = *state;
  int fds[2];
  store_request req = {.caller = "alice", .id = "6f1c0a4e-0000-4000-8000-0000000000ff",
                       .fingerprint = "fp", .now_us = wall_us()};
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    store *s = NULL;
    char err[256];
    arena *a = arena_create(4096);
    if (!a || store_open(fx->spec, NULL, &s, err, sizeof(err)) != 0) _exit(3);
    product p = make_product(1, "first"), out;
    if (store_create_once(s, &p, &req, a, &out) != STORE_OK) _exit(4);
    if (write(fds[1], "k", 1) != 1) _exit(5);
    raise(SIGKILL);
    _exit(6);
  }
  close(fds[1]);
  char c = 0;
  assert_int_equal(read(fds[0], &c, 1), 1);
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  store *s = open_store(fx, true);
  product retry = make_product(2, "first"), out;
  req.now_us += 1000000;
  assert_int_equal(store_create_once(s, &retry, &req, fx->a, &out), STORE_OK);
  assert_string_equal(out.id, make_product(1, "x").id);
  assert_int_equal(total(s, fx->a), 1);
  store_destroy(s);
}

/* Expired request ids are deleted by the writer in the background; live
 * ones stay. Bounded wait (a hang guard), no sleep-and-hope: the purge
 * count is what is awaited. */
static void expired_request_ids_are_purged_in_the_background(void **state) {
  fixture *fx = *state;
  store *s = open_store(fx, true);
  /* Counted from here: the writer may purge whenever it is idle, also
   * between the creates below (the ids are expired as they go in). */
  store_sqlite_stats st;
  assert_int_equal(store_sqlite_get_stats(s, &st), 0);
  uint64_t before = st.purged;
  int64_t now = wall_us();
  product out;
  for (unsigned i = 0; i < 300; i++) { /* more than one purge chunk */
    char id[40];
    snprintf(id, sizeof id, "6f1c0a4e-0000-4000-8000-%012u", i);
    store_request old = {.caller = "alice", .id = id, .fingerprint = "fp",
                         .now_us = now - STORE_REQUEST_WINDOW_US - 1000000};
    product p = make_product(100 + i, "old");
    assert_int_equal(store_create_once(s, &p, &old, fx->a, &out), STORE_OK);
    arena_reset(fx->a);
  }
  store_request live = {.caller = "alice", .id = "6f1c0a4e-0000-4000-8000-999999999999",
                        .fingerprint = "fp", .now_us = now};
  product p = make_product(1, "live");
  assert_int_equal(store_create_once(s, &p, &live, fx->a, &out), STORE_OK);
  assert_int_equal(store_sqlite_purge_soon(s), 0);
  assert_int_equal(store_sqlite_get_stats(s, &st), 0);
  for (int i = 0; i < 30000 && st.purged < before + 300; i++) { /* hang guard: 30 s */
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    assert_int_equal(store_sqlite_get_stats(s, &st), 0);
  }
  assert_int_equal(st.purged, before + 300);
  store_destroy(s);
  assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM product_requests"), 1);
  /* The products they created stay. */
  s = open_store(fx, true);
  assert_int_equal(total(s, fx->a), 301);
  store_destroy(s);
}

static void file_from_a_newer_build_is_refused(void **state) {
  fixture *fx = *state;
  store_destroy(open_store(fx, true));
  exec_sql(fx->path, "UPDATE schema_version SET version = 99");
  store *s = NULL;
  char err[256] = "";
  assert_int_not_equal(store_open(fx->spec, NULL, &s, err, sizeof(err)), 0);
  assert_null(s);
  assert_non_null(strstr(err, "newer"));
  assert_int_equal(query_int(fx->path, "SELECT version FROM schema_version"), 99);
}

static void missing_directories_are_created_private(void **state) {
  fixture *fx = *state;
  snprintf(fx->spec, sizeof(fx->spec), "sqlite:%s/a/b/c/p.db", fx->dir);
  store_destroy(open_store(fx, true));
  char path[160];
  struct stat st;
  snprintf(path, sizeof(path), "%s/a/b/c", fx->dir);
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 077, 0);
  snprintf(path, sizeof(path), "%s/a/b/c/p.db", fx->dir);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 077, 0);
}

static void flush_folds_the_wal_into_the_database(void **state) {
  fixture *fx = *state;
  store *s = open_store(fx, true);
  for (unsigned i = 0; i < 20; i++) {
    product p = make_product(i, "p");
    assert_int_equal(store_create(s, &p), STORE_OK);
  }
  char wal[160];
  struct stat st;
  snprintf(wal, sizeof(wal), "%s-wal", fx->path);
  assert_int_equal(stat(wal, &st), 0);
  assert_true(st.st_size > 0);
  assert_int_equal(store_flush(s), STORE_OK);
  assert_int_equal(stat(wal, &st), 0);
  assert_int_equal(st.st_size, 0);
  assert_int_equal(total(s, fx->a), 20);
  store_destroy(s);
}

/* ----------------------------------------------------------- group commit --- */

typedef struct creator {
  store *s;
  product p;
  store_status status;
} creator;

static void *creator_main(void *arg) {
  creator *c = arg;
  c->status = store_create(c->s, &c->p);
  return NULL;
}

static void wait_until_queued(store *s, size_t n) {
  store_sqlite_stats st;
  for (int i = 0; i < 60000; i++) { /* up to 60 s: the threads only have to enqueue */
    assert_int_equal(store_sqlite_get_stats(s, &st), 0);
    if (st.queued >= n) return;
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  }
  fail_msg("only %zu of %zu writes queued", st.queued, n);
}

/* Queues n creates behind a paused writer, releases it, and returns how many
 * transactions they took. ids from `first`; the one at `dup` (if < n) reuses
 * an existing id. */
static uint64_t queued_creates(store *s, unsigned first, unsigned n, unsigned dup,
                               store_status *statuses) {
  creator c[16];
  pthread_t t[16];
  store_sqlite_stats before, after;
  assert_true(n <= 16);
  assert_int_equal(store_sqlite_get_stats(s, &before), 0);
  assert_int_equal(store_sqlite_set_paused(s, true), 0);
  for (unsigned i = 0; i < n; i++) {
    c[i] = (creator){.s = s, .p = make_product(i == dup ? 0 : first + i, "batch")};
    assert_int_equal(pthread_create(&t[i], NULL, creator_main, &c[i]), 0);
  }
  wait_until_queued(s, n);
  assert_int_equal(store_sqlite_set_paused(s, false), 0);
  for (unsigned i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    statuses[i] = c[i].status;
  }
  assert_int_equal(store_sqlite_get_stats(s, &after), 0);
  return after.transactions - before.transactions;
}

static void group_commit_puts_concurrent_writes_in_one_transaction(void **state) {
  fixture *fx = *state;
  store *s = open_store(fx, true);
  store_status st[16];
  assert_int_equal(queued_creates(s, 100, 12, 99, st), 1);
  for (int i = 0; i < 12; i++) assert_int_equal(st[i], STORE_OK);
  store_sqlite_stats stats;
  assert_int_equal(store_sqlite_get_stats(s, &stats), 0);
  assert_int_equal(stats.largest_batch, 12);
  assert_int_equal(total(s, fx->a), 12);
  store_destroy(s);
}

static void without_group_commit_each_write_is_its_own_transaction(void **state) {
  fixture *fx = *state;
  store *s = open_store(fx, false);
  store_status st[16];
  assert_int_equal(queued_creates(s, 100, 6, 99, st), 6);
  for (int i = 0; i < 6; i++) assert_int_equal(st[i], STORE_OK);
  assert_int_equal(total(s, fx->a), 6);
  store_destroy(s);
}

static void a_failing_write_does_not_undo_the_rest_of_its_batch(void **state) {
  fixture *fx = *state;
  store *s = open_store(fx, true);
  product p0 = make_product(0, "original");
  assert_int_equal(store_create(s, &p0), STORE_OK);
  store_status st[16];
  assert_int_equal(queued_creates(s, 200, 5, 2, st), 1); /* write 2 reuses id 0 */
  for (int i = 0; i < 5; i++) assert_int_equal(st[i] == STORE_OK, i != 2);
  assert_int_equal(total(s, fx->a), 5);
  product got;
  assert_int_equal(store_get(s, p0.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, "original");
  store_destroy(s);
}

/* ------------------------------------------------------------- durability --- */

static void write_that_returned_ok_survives_kill_9(void **state) {
  fixture *fx = *state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    store *s = NULL;
    char err[256];
    if (store_open(fx->spec, NULL, &s, err, sizeof(err)) != 0) _exit(3);
    for (unsigned i = 0; i < 10; i++) {
      product p = make_product(i, "durable");
      if (store_create(s, &p) != STORE_OK) _exit(4);
    }
    if (write(fds[1], "k", 1) != 1) _exit(5);
    raise(SIGKILL); /* no close, no checkpoint, no atexit */
    _exit(6);
  }
  close(fds[1]);
  char c = 0;
  assert_int_equal(read(fds[0], &c, 1), 1);
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  store *s = open_store(fx, true);
  assert_int_equal(total(s, fx->a), 10);
  product got;
  assert_int_equal(store_get(s, make_product(9, "x").id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, "durable");
  store_destroy(s);
}

static void commits_fsync_the_wal_synchronous_full(void **state) {
  /* The durability argument in store_sqlite.c: in WAL mode FULL fsyncs the
   * WAL at every commit (NORMAL would survive kill -9 but not a power cut,
   * which no test here can stage). */
  fixture *fx = *state;
  store *s = open_store(fx, true);
  store_sqlite_stats st;
  assert_int_equal(store_sqlite_get_stats(s, &st), 0);
  assert_int_equal(st.synchronous, 2); /* 2 = FULL */
  store_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(reopening_keeps_every_write, setup, teardown),
      cmocka_unit_test_setup_teardown(new_file_is_at_the_current_schema_version, setup, teardown),
      cmocka_unit_test_setup_teardown(reopening_does_not_run_migrations_again, setup, teardown),
      cmocka_unit_test_setup_teardown(version_1_file_is_migrated_forward_with_its_data, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(version_2_file_gains_request_ids_and_keeps_its_data, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(file_from_a_newer_build_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(missing_directories_are_created_private, setup, teardown),
      cmocka_unit_test_setup_teardown(flush_folds_the_wal_into_the_database, setup, teardown),
      cmocka_unit_test_setup_teardown(group_commit_puts_concurrent_writes_in_one_transaction,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(without_group_commit_each_write_is_its_own_transaction,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_failing_write_does_not_undo_the_rest_of_its_batch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(write_that_returned_ok_survives_kill_9, setup, teardown),
      cmocka_unit_test_setup_teardown(request_id_survives_kill_9_with_its_product, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(expired_request_ids_are_purged_in_the_background, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(commits_fsync_the_wal_synchronous_full, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
