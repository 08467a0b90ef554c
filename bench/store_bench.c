/* store_bench: measures the store backends directly (no gRPC).
 *
 *   1. SQLite CreateProduct throughput with W concurrent writer threads
 *      (default 16), with and without group commit.
 *   2. ListProducts latency on N products (default 1,000,000): the first
 *      page against the 1,000th and the last pages (keyset: all equal), next
 *      to what OFFSET would cost, and a filtered page (its total scans).
 *   3. GetProduct latency by random id.
 *   Memory and SQLite side by side for 2 and 3.
 *
 * Build (after the core library; not part of the default build):
 *   cmake --build build --target product_store
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Ibuild/layers/store -Ibuild/layers/core bench/store_bench.c \
 *      build/libproduct_store.a build/libproduct_core.a \
 *      $(pkg-config --libs sqlite3 openssl libpq libprotobuf-c) -lpthread -lm -o build/store_bench
 * Run:
 *   build/store_bench [--dir DIR] [--products N] [--writers W] [--seconds S] [--skip-writes]
 * DIR must be on a real disk (fsync is what group commit saves); default: a
 * fresh directory under /tmp, removed at the end. About a minute in all with
 * the defaults; 1M products need ~0.4 GB of RAM for the memory backend. */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "store/filter.h"
#include "store/store.h"
#include "store/store_sqlite.h"

#define BASE_US INT64_C(1700000000000000)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_id(uint64_t n, char out[PRODUCT_ID_LEN + 1]) {
  snprintf(out, PRODUCT_ID_LEN + 1, "00000000-0000-4000-8000-%012" PRIx64,
           n & UINT64_C(0xffffffffffff));
}

static store *open_or_die(const char *spec, bool group_commit) {
  store *s = NULL;
  char err[256];
  store_options opt = {.pool_size = 4, .group_commit = group_commit};
  if (store_open(spec, &opt, &s, err, sizeof(err)) != 0) {
    fprintf(stderr, "store_bench: %s\n", err);
    exit(1);
  }
  return s;
}

static void remove_db(const char *path) {
  char p[600];
  const char *suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
    unlink(p);
  }
}

/* ------------------------------------------------------------- writes --- */

typedef struct writer {
  store *s;
  unsigned index;
  double deadline;
  uint64_t done;
  double latency_sum;
  int errors;
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  char *cats[] = {"bench", "tools"};
  for (uint64_t k = 0; now_s() < w->deadline; k++) {
    product p = {.name = "Bench product", .description = "created by store_bench",
                 .price = 9.99, .categories = cats, .n_categories = 2};
    make_id((uint64_t)w->index << 40 | k, p.id);
    double t0 = now_s();
    p.created_us = p.updated_us = BASE_US + (int64_t)(t0 * 1e6);
    if (store_create(w->s, &p) != STORE_OK) w->errors++;
    w->latency_sum += now_s() - t0;
    w->done++;
  }
  return NULL;
}

static void bench_writes(const char *dir, unsigned n_writers, double seconds, bool group) {
  char path[512], spec[600];
  snprintf(path, sizeof(path), "%s/writes-%d.db", dir, group);
  snprintf(spec, sizeof(spec), "sqlite:%s", path);
  remove_db(path);
  store *s = open_or_die(spec, group);
  writer *ws = calloc(n_writers, sizeof(*ws));
  pthread_t *ts = calloc(n_writers, sizeof(*ts));
  if (!ws || !ts) exit(1);
  double t0 = now_s();
  for (unsigned i = 0; i < n_writers; i++) {
    ws[i] = (writer){.s = s, .index = i, .deadline = t0 + seconds};
    pthread_create(&ts[i], NULL, writer_main, &ws[i]);
  }
  uint64_t total = 0;
  double lat = 0;
  int errors = 0;
  for (unsigned i = 0; i < n_writers; i++) {
    pthread_join(ts[i], NULL);
    total += ws[i].done;
    lat += ws[i].latency_sum;
    errors += ws[i].errors;
  }
  double elapsed = now_s() - t0;
  store_sqlite_stats st = {0};
  store_sqlite_get_stats(s, &st);
  printf("sqlite create, %2u writers, group commit %-3s: %8.0f creates/s  mean latency %7.2f ms"
         "  %6" PRIu64 " commits (%.1f writes/commit, largest %" PRIu64 ")%s\n",
         n_writers, group ? "on" : "off", (double)total / elapsed, 1e3 * lat / (double)total,
         st.transactions, st.transactions ? (double)st.writes / (double)st.transactions : 0.0,
         st.largest_batch, errors ? "  ERRORS" : "");
  store_destroy(s);
  remove_db(path);
  free(ws);
  free(ts);
}

/* -------------------------------------------------------------- reads --- */

/* Product i has created_us BASE_US + i and id make_id(i). */
static void populate_memory(store *s, uint64_t n) {
  char *cats[] = {"bench"};
  for (uint64_t i = 0; i < n; i++) {
    product p = {.name = "Bench product", .description = "seeded by store_bench",
                 .price = (double)(i % 1000), .categories = cats, .n_categories = 1,
                 .created_us = BASE_US + (int64_t)i, .updated_us = BASE_US + (int64_t)i};
    make_id(i, p.id);
    if (store_create(s, &p) != STORE_OK) exit(1);
  }
}

/* Bulk-loads the same rows straight into a fresh SQLite file (one
 * transaction; CreateProduct one by one would take an hour of fsyncs). The
 * store has created the schema; this writes its tables (schema v2). */
static void populate_sqlite(const char *path, uint64_t n) {
  sqlite3 *db;
  sqlite3_stmt *p, *c;
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      /* A rollback journal and a big cache for the load: a 1M-row WAL
       * transaction spills and crawls. The store turns WAL back on. */
      sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF;"
                       " PRAGMA cache_size=-262144; BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO products VALUES (?1, ?2, ?3, ?4, ?5, ?5)", -1, &p,
                         NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO product_categories VALUES (?1, 0, 'bench')", -1, &c,
                         NULL) != SQLITE_OK) {
    fprintf(stderr, "store_bench: bulk load: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
  for (uint64_t i = 0; i < n; i++) {
    char id[PRODUCT_ID_LEN + 1];
    make_id(i, id);
    sqlite3_bind_text(p, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(p, 2, "Bench product", -1, SQLITE_STATIC);
    sqlite3_bind_text(p, 3, "seeded by store_bench", -1, SQLITE_STATIC);
    sqlite3_bind_double(p, 4, (double)(i % 1000));
    sqlite3_bind_int64(p, 5, BASE_US + (int64_t)i);
    sqlite3_bind_text(c, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(p) != SQLITE_DONE || sqlite3_step(c) != SQLITE_DONE) exit(1);
    sqlite3_reset(p);
    sqlite3_reset(c);
  }
  sqlite3_finalize(p);
  sqlite3_finalize(c);
  if (sqlite3_exec(db, "COMMIT; PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
    exit(1);
  sqlite3_close(db);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *backend, const char *what, double *lat, size_t n) {
  qsort(lat, n, sizeof(double), cmp_double);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += lat[i];
  printf("%-7s %-40s mean %8.1f us  p50 %8.1f us  p99 %8.1f us\n", backend, what,
         1e6 * sum / (double)n, 1e6 * lat[n / 2], 1e6 * lat[n * 99 / 100]);
}

/* Latency of the page that starts after product `after` (-1: first page). */
static void bench_page(store *s, const char *backend, const char *what, int64_t after,
                       const filter *f, size_t reps) {
  double *lat = calloc(reps, sizeof(double));
  arena *a = arena_create(1 << 16);
  if (!lat || !a) exit(1);
  store_cursor cur = {.created_us = BASE_US + after};
  make_id((uint64_t)(after < 0 ? 0 : after), cur.id);
  for (size_t r = 0; r < reps; r++) {
    store_list_result out;
    double t0 = now_s();
    if (store_list(s, f, after < 0 ? NULL : &cur, 10, a, &out) != STORE_OK || out.n == 0) {
      fprintf(stderr, "store_bench: list failed\n");
      exit(1);
    }
    lat[r] = now_s() - t0;
    arena_reset(a);
  }
  report(backend, what, lat, reps);
  arena_destroy(a);
  free(lat);
}

static void bench_gets(store *s, const char *backend, uint64_t n, size_t reps) {
  double *lat = calloc(reps, sizeof(double));
  arena *a = arena_create(4096);
  unsigned seed = 42;
  if (!lat || !a) exit(1);
  for (size_t r = 0; r < reps; r++) {
    char id[PRODUCT_ID_LEN + 1];
    product p;
    make_id(((uint64_t)rand_r(&seed) << 16 ^ (uint64_t)rand_r(&seed)) % n, id);
    double t0 = now_s();
    if (store_get(s, id, a, &p) != STORE_OK) exit(1);
    lat[r] = now_s() - t0;
    arena_reset(a);
  }
  report(backend, "GetProduct (random id)", lat, reps);
  arena_destroy(a);
  free(lat);
}

/* What a page at OFFSET would cost on the same file, for contrast. */
static void bench_offset(const char *path, int64_t offset, size_t reps) {
  sqlite3 *db;
  sqlite3_stmt *st;
  double *lat = calloc(reps, sizeof(double));
  if (!lat || sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT id, name FROM products ORDER BY created_us, id"
                             " LIMIT 10 OFFSET ?1", -1, &st, NULL) != SQLITE_OK)
    exit(1);
  for (size_t r = 0; r < reps; r++) {
    double t0 = now_s();
    sqlite3_bind_int64(st, 1, offset);
    while (sqlite3_step(st) == SQLITE_ROW) {
    }
    sqlite3_reset(st);
    lat[r] = now_s() - t0;
  }
  char what[64];
  snprintf(what, sizeof(what), "(raw SQL, OFFSET %" PRId64 ", not used)", offset);
  report("sqlite", what, lat, reps);
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(lat);
}

static void bench_reads(store *s, const char *backend, uint64_t n, const char *path) {
  char what[64];
  int64_t last = (int64_t)n - 11;
  bench_page(s, backend, "ListProducts page 1 (10 items)", -1, NULL, 2000);
  bench_page(s, backend, "ListProducts page 1,000", 9989, NULL, 2000);
  snprintf(what, sizeof(what), "ListProducts last page (%" PRIu64 ")", n / 10);
  bench_page(s, backend, what, last, NULL, 2000);
  if (path) {
    bench_offset(path, 9990, 200);
    bench_offset(path, last + 1, 5);
  }
  arena *a = arena_create(4096);
  filter *f = NULL;
  char err[128];
  const char *text = "price < 10";
  if (!a || filter_parse(text, strlen(text), a, &f, err, sizeof(err)) != 0) exit(1);
  bench_page(s, backend, "ListProducts page 1, filter price < 10", -1, f, 5);
  arena_destroy(a);
  bench_gets(s, backend, n, 20000);
}

int main(int argc, char **argv) {
  const char *dir_opt = NULL;
  uint64_t n = 1000000;
  unsigned writers = 16;
  double seconds = 4;
  bool skip_writes = false;
  static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                       {"products", required_argument, NULL, 'n'},
                                       {"writers", required_argument, NULL, 'w'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"skip-writes", no_argument, NULL, 'x'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'd': dir_opt = optarg; break;
    case 'n': n = strtoull(optarg, NULL, 10); break;
    case 'w': writers = (unsigned)strtoul(optarg, NULL, 10); break;
    case 's': seconds = strtod(optarg, NULL); break;
    case 'x': skip_writes = true; break;
    default:
      printf("usage: store_bench [--dir DIR] [--products N] [--writers W] [--seconds S]"
             " [--skip-writes]\n");
      return c == 'h' ? 0 : 2;
    }
  }
  if (n < 20000 || writers == 0 || seconds <= 0) {
    fprintf(stderr, "store_bench: need --products >= 20000, --writers >= 1, --seconds > 0\n");
    return 2;
  }
  char dir[512];
  snprintf(dir, sizeof(dir), "%s", dir_opt ? dir_opt : "/tmp/store-bench-XXXXXX");
  if (!dir_opt && !mkdtemp(dir)) return 1;

  if (!skip_writes) {
    bench_writes(dir, writers, seconds, false);
    bench_writes(dir, writers, seconds, true);
  }

  double t0 = now_s();
  store *m = open_or_die("memory", true);
  populate_memory(m, n);
  printf("memory: %" PRIu64 " products loaded in %.1f s\n", n, now_s() - t0);
  bench_reads(m, "memory", n, NULL);
  store_destroy(m);

  char path[600], spec[620];
  snprintf(path, sizeof(path), "%s/reads.db", dir);
  snprintf(spec, sizeof(spec), "sqlite:%s", path);
  remove_db(path);
  store_destroy(open_or_die(spec, true)); /* creates the schema */
  t0 = now_s();
  populate_sqlite(path, n);
  printf("sqlite: %" PRIu64 " products bulk-loaded in %.1f s\n", n, now_s() - t0);
  store *s = open_or_die(spec, true);
  bench_reads(s, "sqlite", n, path);
  store_destroy(s);
  remove_db(path);
  if (!dir_opt) rmdir(dir);
  return 0;
}
