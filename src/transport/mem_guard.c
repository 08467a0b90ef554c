/* See mem_guard.h. */
#include "transport/mem_guard.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/periodic.h"

/* Trim when RSS grew this much since the last trim, at most once a second;
 * and, while RSS stays that far above its value at start, once a second as
 * long as trims give memory back, else every ten seconds. */
#define TRIM_STEP_BYTES ((int64_t)4 << 20)
#define TRIM_MIN_GAIN_BYTES ((int64_t)1 << 20)
#define TRIM_PERIOD_NS 1000000000LL
#define TRIM_BACKOFF_NS 10000000000LL

typedef struct trim_state {
  int64_t base;    /* RSS at start */
  int64_t floor;   /* RSS after the last trim */
  int64_t last_ns; /* when it ran */
  int64_t wait_ns; /* before the next trim not caused by growth */
} trim_state;

struct mem_guard {
  mem_guard_options opt;
  atomic_bool shedding;
  atomic_llong samples; /* ticks taken, for tests that wait for a decision */
  int64_t last_pressure_ns; /* the periodic's thread only */
  trim_state trim;          /* ditto */
  periodic *worker;
};

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

static int64_t maybe_trim(trim_state *t, int64_t rss, bool force) {
  int64_t now = clock_mono_ns();
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
  if (g->opt.on_shed) g->opt.on_shed(g->opt.ctx, on);
  log_line l;
  log_line_begin(&l, on ? LOG_WARN : LOG_INFO,
                 on ? "over the memory limit: refusing new calls" : "under the memory limit again: serving");
  log_line_int(&l, "rss_bytes", rss);
  log_line_int(&l, "memory_limit_bytes", g->opt.limit_bytes);
  log_line_emit(&l);
}

/* One sample, on the periodic's thread. */
static int64_t tick(periodic *p, void *arg) {
  (void)p;
  mem_guard *g = arg;
  trim_state *t = &g->trim;
  int64_t rss = mem_guard_rss();
  if (rss < 0) return PERIODIC_INTERVAL;
  bool was = atomic_load_explicit(&g->shedding, memory_order_relaxed);
  bool want = mem_guard_decide(was, rss, g->opt.limit_bytes);
  /* Before deciding to shed, or to keep shedding, give back what is free. */
  if (want) rss = maybe_trim(t, rss, !was);
  else rss = maybe_trim(t, rss, false);
  want = mem_guard_decide(was, rss, g->opt.limit_bytes);
  if (want != was) set_shedding(g, want, rss);
  atomic_fetch_add(&g->samples, 1); /* a decision made (and in force) */
  int64_t now = clock_mono_ns();
  if (want && g->opt.pressure && now - g->last_pressure_ns >= TRIM_PERIOD_NS) {
    g->last_pressure_ns = now;
    g->opt.pressure(g->opt.ctx);
  }
  return PERIODIC_INTERVAL;
}

mem_guard *mem_guard_start(const mem_guard_options *opt) {
  if (!opt) return NULL;
  mem_guard *g = calloc(1, sizeof(*g));
  if (!g) return NULL;
  g->opt = *opt;
  if (g->opt.limit_bytes < 0) g->opt.limit_bytes = 0;
  if (g->opt.interval_ms <= 0) g->opt.interval_ms = MEM_GUARD_INTERVAL_MS;
  atomic_init(&g->shedding, false);
  atomic_init(&g->samples, 0);
  int64_t rss = mem_guard_rss();
  g->trim = (trim_state){.base = rss, .floor = rss, .last_ns = clock_mono_ns(),
                         .wait_ns = TRIM_PERIOD_NS};
  periodic_options po = {
      .name = "mem-guard",
      .tick = tick,
      .arg = g,
      .interval_ms = g->opt.interval_ms,
  };
  if (periodic_start(&po, &g->worker) != 0) {
    free(g);
    return NULL;
  }
  return g;
}

void mem_guard_stop(mem_guard *g) {
  if (!g) return;
  periodic_stop(g->worker);
  free(g);
}
