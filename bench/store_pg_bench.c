/* store_pg_bench: the three backends side by side under 16 concurrent
 * clients (threads calling the store directly: no gRPC, no network but
 * PostgreSQL's own):
 *
 *   1. CreateProduct throughput (each client creates as fast as it can),
 *      without and then with a request id (each call a new one: the cost of
 *      recording it in the insert's transaction);
 *   2. GetProduct latency by random id over what phase 1 created;
 *   3. ListProducts latency: a page of 10 at a random cursor (keyset), the
 *      unfiltered total included, and a filtered page (price < 100).
 *
 * Build (after the core library; not part of the default build):
 *   cmake --build build --target product_store
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Ibuild/layers/store -Ibuild/layers/core $(pkg-config --cflags libpq) \
 *      bench/store_pg_bench.c \
 *      build/libproduct_store.a build/libproduct_core.a $(pkg-config --libs grpc libprotobuf-c openssl libjwt \
 *      jansson sqlite3 libpq libmicrohttpd) -lpthread -lm -o build/store_pg_bench
 * Run (bench/store_pg_bench.sh does all of it with a throw-away PostgreSQL):
 *   build/store_pg_bench [--pg DSN] [--dir DIR] [--clients N] [--seconds S]
 *                        [--create-rounds R]  (R create / create+rid pairs, alternating)
 * Without --pg the PostgreSQL rows are skipped. The database must be empty
 * (it is where the products go). Not a test: nothing here asserts a time. */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/arena.h"
#include "store/filter.h"
#include "store/store.h"
#include "store/store_sqlite.h"

/* Under valgrind --tool=callgrind each phase is dumped on its own
 * (callgrind.out.N, "desc: Trigger: Client Request: LABEL PHASE"): summary
 * divided by the phase's ops is instructions per call, a figure that does
 * not move with the load of the machine. Without valgrind: no-ops. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_DUMP_STATS_AT
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#define BASE_US INT64_C(1700000000000000)
#define MAX_SAMPLES 400000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A bijective 64-bit mix (splitmix64's finaliser). */
static uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

/* Id number n as a version-4 UUID whose leading bits look random, as the
 * service's uuid_v4 ids (and clients' request ids) are: each insert lands
 * at a random place in an index keyed by it, not at one end. The last
 * group is n itself, so distinct n give distinct ids. */
static void make_uuid(uint64_t n, uint64_t salt, char out[PRODUCT_ID_LEN + 1]) {
  uint64_t h = mix64(n ^ salt);
  snprintf(out, PRODUCT_ID_LEN + 1, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-8%03" PRIx64
           "-%012" PRIx64, h >> 32, (h >> 16) & 0xffff, (h >> 4) & 0xfff, h & 0xf,
           n & UINT64_C(0xffffffffffff));
}

static void make_id(uint64_t n, char out[PRODUCT_ID_LEN + 1]) { make_uuid(n, 0, out); }

typedef enum phase {
  PHASE_CREATE,
  PHASE_GET,
  PHASE_LIST,
  PHASE_LIST_FILTERED,
  PHASE_CREATE_ONCE,
} phase;

typedef struct client {
  store *s;
  phase ph;
  unsigned index;
  double deadline;
  uint64_t n_products; /* products that exist (read phases) */
  uint64_t *created;   /* ids created by this client: (index << 40) | k */
  uint64_t n_created, cap_created;
  uint64_t seq; /* creates so far: ids stay unique across repeated phases */
  double *lat;         /* seconds per call */
  size_t n_lat;
  int errors;
} client;

static const char *phase_name[] = {"create", "get", "list page", "list filtered",
                                   "create+rid"};

/* The window the create phase's created_us values fall in (list cursors). */
static int64_t g_min_us = INT64_MAX, g_max_us = INT64_MIN;
static unsigned g_rounds = 1; /* --create-rounds: create/create+rid pairs */
/* PostgreSQL's WAL position (a connection of the bench's own): WAL bytes
 * per write, a per-call cost that load elsewhere does not move. */
static PGconn *g_pg_probe;

static int64_t wal_lsn(void) {
  if (!g_pg_probe) return -1;
  PGresult *r = PQexec(g_pg_probe, "SELECT pg_current_wal_lsn() - '0/0'");
  int64_t v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                  ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                  : -1;
  PQclear(r);
  return v;
}

static void *client_main(void *arg) {
  client *c = arg;
  arena *a = arena_create(1 << 16);
  unsigned seed = 1234 + c->index;
  char *cats[] = {"bench", "tools"};
  for (uint64_t k = 0; a && now_s() < c->deadline; k++) {
    filter *f = NULL;
    char err[128];
    if (c->ph == PHASE_LIST_FILTERED && filter_parse("price < 100", 11, a, &f, err, sizeof err))
      c->errors++;
    double t0 = now_s();
    store_status st = STORE_OK;
    if (c->ph == PHASE_CREATE) {
      product p = {.name = "Bench product", .description = "created by store_pg_bench",
                   .price = (double)(k % 1000), .categories = cats, .n_categories = 2};
      uint64_t n = (uint64_t)c->index << 40 | c->seq++;
      make_id(n, p.id);
      p.created_us = p.updated_us = BASE_US + (int64_t)(t0 * 1e6);
      st = store_create(c->s, &p);
      if (st == STORE_OK && c->n_created < c->cap_created) c->created[c->n_created++] = n;
    } else if (c->ph == PHASE_CREATE_ONCE) {
      /* As the service calls it: a new request id per call, a 128-bit hex
       * fingerprint, the call's clock. */
      product p = {.name = "Bench product", .description = "created by store_pg_bench",
                   .price = (double)(k % 1000), .categories = cats, .n_categories = 2};
      uint64_t n = (uint64_t)c->index << 40 | UINT64_C(1) << 39 | c->seq;
      make_id(n, p.id);
      p.created_us = p.updated_us = BASE_US + (int64_t)(t0 * 1e6);
      char rid[PRODUCT_ID_LEN + 1];
      make_uuid(n, UINT64_C(0x5bd1e9955bd1e995), rid);
      c->seq++;
      store_request req = {.caller = "bench", .id = rid,
                           .fingerprint = "3f1c0a4e9b0d4e7aa1b2c3d4e5f60718",
                           .now_us = p.created_us};
      product out;
      st = store_create_once(c->s, &p, &req, a, &out);
    } else if (c->ph == PHASE_GET) {
      char id[PRODUCT_ID_LEN + 1];
      make_id(c->created[(uint64_t)rand_r(&seed) % c->n_created], id);
      product p;
      st = store_get(c->s, id, a, &p);
    } else {
      /* A page at a random point of the catalog (a quarter from the start). */
      int64_t span = g_max_us > g_min_us ? g_max_us - g_min_us : 1;
      store_cursor cur = {.created_us = g_min_us + (int64_t)((uint64_t)rand_r(&seed) % (uint64_t)span)};
      make_id(0, cur.id);
      store_list_result r;
      st = store_list(c->s, f, (rand_r(&seed) % 4) ? &cur : NULL, 10, a, &r);
    }
    double dt = now_s() - t0;
    if (st != STORE_OK) c->errors++;
    if (c->n_lat < MAX_SAMPLES) c->lat[c->n_lat++] = dt;
    arena_reset(a);
  }
  arena_destroy(a);
  return NULL;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* Runs one phase with n clients; prints a line; returns the clients (the
 * create phase's ids feed the read phases). */
static double run_phase(const char *label, store *s, phase ph, client *cs, unsigned n,
                        double seconds) {
  pthread_t *ts = calloc(n, sizeof(*ts));
  bool writes = ph == PHASE_CREATE || ph == PHASE_CREATE_ONCE;
  bool pg = writes && strcmp(label, "postgres") == 0;
  store_sqlite_stats sq0 = {0}, sq1 = {0};
  bool sq = writes && store_sqlite_get_stats(s, &sq0) == 0;
  int64_t wal0 = pg ? wal_lsn() : -1;
  CALLGRIND_ZERO_STATS;
  double t0 = now_s();
  for (unsigned i = 0; i < n; i++) {
    cs[i].s = s;
    cs[i].ph = ph;
    cs[i].index = i;
    cs[i].deadline = t0 + seconds;
    cs[i].n_lat = 0;
    cs[i].errors = 0;
    pthread_create(&ts[i], NULL, client_main, &cs[i]);
  }
  size_t total = 0;
  int errors = 0;
  for (unsigned i = 0; i < n; i++) {
    pthread_join(ts[i], NULL);
    total += cs[i].n_lat;
    errors += cs[i].errors;
  }
  double elapsed = now_s() - t0;
  char tag[64];
  snprintf(tag, sizeof tag, "%s %s", label, phase_name[ph]);
  CALLGRIND_DUMP_STATS_AT(tag);
  int64_t wal1 = pg ? wal_lsn() : -1;
  char extra[96] = "";
  if (pg && wal0 >= 0 && wal1 >= wal0 && total)
    snprintf(extra, sizeof extra, "   WAL %.0f B/op", (double)(wal1 - wal0) / (double)total);
  if (sq && store_sqlite_get_stats(s, &sq1) == 0 && sq1.transactions > sq0.transactions)
    snprintf(extra, sizeof extra, "   %.1f writes/commit",
             (double)(sq1.writes - sq0.writes) / (double)(sq1.transactions - sq0.transactions));
  double *all = malloc((total ? total : 1) * sizeof(double));
  size_t k = 0;
  for (unsigned i = 0; i < n; i++)
    for (size_t j = 0; j < cs[i].n_lat; j++) all[k++] = cs[i].lat[j];
  qsort(all, total, sizeof(double), cmp_double);
  double p50 = total ? all[total / 2] : 0, p99 = total ? all[total * 99 / 100] : 0;
  printf("%-9s %-14s %9.0f ops/s   p50 %7.3f ms   p99 %7.3f ms   n %zu%s%s\n", label,
         phase_name[ph], (double)total / elapsed, p50 * 1e3, p99 * 1e3, total, extra,
         errors ? "   ERRORS" : "");
  fflush(stdout);
  free(all);
  free(ts);
  return (double)total / elapsed;
}

static int cmp_ratio(const void *x, const void *y) { return cmp_double(x, y); }

/* Create without and with a request id, alternating (so that load from
 * elsewhere and the growing table hit both alike), `rounds` pairs; prints
 * the median ratio of their throughputs. */
static void compare_creates(const char *label, store *s, client *cs, unsigned n, double seconds,
                            unsigned rounds) {
  double ratio[64];
  if (rounds > 64) rounds = 64;
  for (unsigned r = 0; r < rounds; r++) {
    double plain = run_phase(label, s, PHASE_CREATE, cs, n, seconds);
    double rid = run_phase(label, s, PHASE_CREATE_ONCE, cs, n, seconds);
    ratio[r] = plain > 0 ? rid / plain : 0;
  }
  qsort(ratio, rounds, sizeof(double), cmp_ratio);
  printf("%-9s create+rid / create: median %.3f of %u pairs (min %.3f, max %.3f)\n", label,
         ratio[rounds / 2], rounds, ratio[0], ratio[rounds - 1]);
}

static void bench_backend(const char *label, const char *spec, unsigned n, double seconds) {
  store *s = NULL;
  char err[256];
  store_options opt = {.pool_size = (int)n, .group_commit = true};
  if (store_open(spec, &opt, &s, err, sizeof err) != 0 || !store_healthy(s)) {
    fprintf(stderr, "store_pg_bench: %s: %s\n", label, err[0] ? err : "not healthy");
    store_destroy(s);
    return;
  }
  client *cs = calloc(n, sizeof(*cs));
  for (unsigned i = 0; i < n; i++) {
    cs[i].cap_created = MAX_SAMPLES;
    cs[i].created = malloc(MAX_SAMPLES * sizeof(uint64_t));
    cs[i].lat = malloc(MAX_SAMPLES * sizeof(double));
  }
  double t_create = now_s();
  compare_creates(label, s, cs, n, seconds, g_rounds);
  g_min_us = BASE_US + (int64_t)(t_create * 1e6);
  g_max_us = BASE_US + (int64_t)(now_s() * 1e6);
  /* Every client reads from every client's products. */
  uint64_t all_n = 0;
  for (unsigned i = 0; i < n; i++) all_n += cs[i].n_created;
  uint64_t *all = malloc((all_n ? all_n : 1) * sizeof(uint64_t)), k = 0;
  for (unsigned i = 0; i < n; i++)
    for (uint64_t j = 0; j < cs[i].n_created; j++) all[k++] = cs[i].created[j];
  for (unsigned i = 0; i < n; i++) {
    free(cs[i].created);
    cs[i].created = all;
    cs[i].n_created = all_n;
  }
  if (all_n) {
    run_phase(label, s, PHASE_GET, cs, n, seconds);
    run_phase(label, s, PHASE_LIST, cs, n, seconds);
    run_phase(label, s, PHASE_LIST_FILTERED, cs, n, seconds);
  }
  printf("%-9s (%" PRIu64 " products)\n", label, all_n);
  for (unsigned i = 0; i < n; i++) free(cs[i].lat);
  free(all);
  free(cs);
  store_destroy(s);
}

int main(int argc, char **argv) {
  const char *pg = NULL, *dir = NULL;
  unsigned clients = 16;
  double seconds = 5;
  static const struct option opts[] = {{"pg", required_argument, NULL, 'p'},
                                       {"dir", required_argument, NULL, 'd'},
                                       {"clients", required_argument, NULL, 'c'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"create-rounds", required_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'p': pg = optarg; break;
    case 'd': dir = optarg; break;
    case 'c': clients = (unsigned)strtoul(optarg, NULL, 10); break;
    case 's': seconds = strtod(optarg, NULL); break;
    case 'r': g_rounds = (unsigned)strtoul(optarg, NULL, 10); break;
    default:
      fprintf(stderr, "usage: store_pg_bench [--pg DSN] [--dir DIR] [--clients N] [--seconds S]"
                      " [--create-rounds R]\n");
      return 2;
    }
  }
  if (clients < 1 || clients > 256 || seconds <= 0 || g_rounds < 1) return 2;
  char tmp[] = "/tmp/store-pg-bench-XXXXXX", spec[600];
  if (!dir && !(dir = mkdtemp(tmp))) return 1;
  printf("%u concurrent clients, %.0f s per phase\n", clients, seconds);
  bench_backend("memory", "memory", clients, seconds);
  snprintf(spec, sizeof spec, "sqlite:%s/bench.db", dir);
  bench_backend("sqlite", spec, clients, seconds);
  if (pg) {
    g_pg_probe = PQconnectdb(pg);
    if (PQstatus(g_pg_probe) != CONNECTION_OK) {
      PQfinish(g_pg_probe);
      g_pg_probe = NULL;
    }
    bench_backend("postgres", pg, clients, seconds);
    PQfinish(g_pg_probe);
  }
  else
    printf("postgres  skipped (no --pg DSN)\n");
  char path[600];
  const char *suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/bench.db%s", dir, suffix[i]);
    unlink(path);
  }
  if (dir == tmp) rmdir(tmp);
  return 0;
}
