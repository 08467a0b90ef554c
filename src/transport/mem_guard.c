/* See mem_guard.h. */
#include "transport/mem_guard.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

/* Trim when RSS grew this much since the last trim, at most once a second;
 * and, while RSS stays that far above its value at start, once a second as
 * long as trims give memory back, else every ten seconds. */
#define TRIM_STEP_BYTES ((int64_t)4 << 20)
#define TRIM_MIN_GAIN_BYTES ((int64_t)1 << 20)
#define TRIM_PERIOD_NS 1000000000LL
#define TRIM_BACKOFF_NS 10000000000LL

struct mem_guard {
  int64_t limit;
  health_state *health;
  int interval_ms;
  atomic_bool shedding;
  atomic_llong samples; /* ticks taken, for tests that wait for a decision */
  mem_guard_pressure_fn pressure;
  void *pressure_ctx;
  int64_t last_pressure_ns;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC */
  bool stopping;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mem_guard_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long long size, resident;
  int n = fscanf(f, "%lld %lld", &size, &resident);
  fclose(f);
  if (n != 2) return -1;
  return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

bool mem_guard_decide(bool shedding, int64_t rss, int64_t limit) {
  if (limit <= 0 || rss < 0) return false;
  if (shedding) return rss >= limit / 10 * 9;
  return rss > limit;
}

bool mem_guard_shedding(const mem_guard *g) {
  return g && atomic_load_explicit(&g->shedding, memory_order_relaxed);
}

long long mem_guard_samples(const mem_guard *g) { return g ? atomic_load(&g->samples) : 0; }

typedef struct trim_state {
  int64_t base;    /* RSS at start */
  int64_t floor;   /* RSS after the last trim */
  int64_t last_ns; /* when it ran */
  int64_t wait_ns; /* before the next trim not caused by growth */
} trim_state;

static int64_t maybe_trim(trim_state *t, int64_t rss, bool force) {
  int64_t now = now_ns();
  if (rss < t->floor) t->floor = rss;
  int64_t since = now - t->last_ns;
  bool grew = rss >= t->floor + TRIM_STEP_BYTES && since >= TRIM_PERIOD_NS;
  bool high = rss >= t->base + TRIM_STEP_BYTES && since >= t->wait_ns;
  if (!force && !grew && !high) return rss;
  malloc_trim(0);
  int64_t after = mem_guard_rss();
  if (after < 0) after = rss;
  t->wait_ns = rss - after >= TRIM_MIN_GAIN_BYTES ? TRIM_PERIOD_NS : TRIM_BACKOFF_NS;
  t->last_ns = now;
  t->floor = after;
  return after;
}

static void set_shedding(mem_guard *g, bool on, int64_t rss) {
  atomic_store_explicit(&g->shedding, on, memory_order_relaxed);
  if (g->health) health_set_overloaded(g->health, on);
  log_line l;
  log_line_begin(&l, on ? LOG_WARN : LOG_INFO,
                 on ? "over the memory limit: refusing new calls" : "under the memory limit again: serving");
  log_line_int(&l, "rss_bytes", rss);
  log_line_int(&l, "memory_limit_bytes", g->limit);
  log_line_emit(&l);
}

static void tick(mem_guard *g, trim_state *t) {
  int64_t rss = mem_guard_rss();
  if (rss < 0) return;
  bool was = atomic_load_explicit(&g->shedding, memory_order_relaxed);
  bool want = mem_guard_decide(was, rss, g->limit);
  /* Before deciding to shed, or to keep shedding, give back what is free. */
  if (want) rss = maybe_trim(t, rss, !was);
  else rss = maybe_trim(t, rss, false);
  want = mem_guard_decide(was, rss, g->limit);
  if (want != was) set_shedding(g, want, rss);
  atomic_fetch_add(&g->samples, 1); /* a decision made (and in force) */
  int64_t now = now_ns();
  if (want && g->pressure && now - g->last_pressure_ns >= TRIM_PERIOD_NS) {
    g->last_pressure_ns = now;
    g->pressure(g->pressure_ctx);
  }
}

static void *guard_main(void *arg) {
  mem_guard *g = arg;
  int64_t rss = mem_guard_rss();
  trim_state t = {.base = rss, .floor = rss, .last_ns = now_ns(), .wait_ns = TRIM_PERIOD_NS};
  pthread_mutex_lock(&g->mu);
  while (!g->stopping) {
    pthread_mutex_unlock(&g->mu);
    tick(g, &t);
    pthread_mutex_lock(&g->mu);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = until.tv_nsec + (long long)g->interval_ms * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    while (!g->stopping && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0) {
    }
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

mem_guard *mem_guard_start(int64_t limit_bytes, health_state *h, int interval_ms,
                           mem_guard_pressure_fn pressure, void *ctx) {
  mem_guard *g = calloc(1, sizeof(*g));
  if (!g) return NULL;
  g->pressure = pressure;
  g->pressure_ctx = ctx;
  g->limit = limit_bytes > 0 ? limit_bytes : 0;
  g->health = h;
  g->interval_ms = interval_ms > 0 ? interval_ms : MEM_GUARD_INTERVAL_MS;
  atomic_init(&g->shedding, false);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&g->mu, NULL);
  if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return NULL;
  }
  return g;
}

void mem_guard_stop(mem_guard *g) {
  if (!g) return;
  pthread_mutex_lock(&g->mu);
  g->stopping = true;
  pthread_cond_signal(&g->cv);
  pthread_mutex_unlock(&g->mu);
  pthread_join(g->thread, NULL);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
  free(g);
}
