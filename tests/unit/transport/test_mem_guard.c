/* Tests for src/transport/mem_guard.c: the shedding decision with its
 * hysteresis, RSS sampling, and the worker (a core/periodic one) flipping
 * the flag and telling its owner through on_shed, once per change. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/health.h"
#include "transport/mem_guard.h"

#define MI (1LL << 20)

static void test_decide_sheds_above_and_recovers_below_ninety_percent(void **state) {
  (void)state;
  assert_false(mem_guard_decide(false, 100 * MI, 0)); /* no limit: never */
  assert_false(mem_guard_decide(true, 100 * MI, 0));
  assert_false(mem_guard_decide(false, 100 * MI, 100 * MI)); /* at the limit: not yet */
  assert_true(mem_guard_decide(false, 100 * MI + 1, 100 * MI));
  assert_true(mem_guard_decide(true, 95 * MI, 100 * MI)); /* still shedding at 95% */
  assert_true(mem_guard_decide(true, 90 * MI, 100 * MI));
  assert_false(mem_guard_decide(true, 89 * MI, 100 * MI));
  assert_false(mem_guard_decide(false, 95 * MI, 100 * MI));
  assert_false(mem_guard_decide(true, -1, 100 * MI)); /* unreadable RSS: serve */
}

static void test_rss_is_sampled(void **state) {
  (void)state;
  int64_t rss = mem_guard_rss();
  assert_true(rss > 0);
  assert_true(rss < (int64_t)64 << 30);
}

/* Polls the flag for up to about 60 s, a hang guard (the thread samples
 * every 10 ms here). */
static bool wait_shedding(const mem_guard *g, bool want) {
  for (int i = 0; i < 6000; i++) {
    if (mem_guard_shedding(g) == want) return true;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return false;
}


/* What a test's owner sees: on_shed calls (the last value), and the
 * health it holds as the app does. */
typedef struct owner {
  health_state *health;
  atomic_int pressure;
  atomic_int shed_on, shed_off;
} owner;

static void owner_shed(void *ctx, bool shedding) {
  owner *o = ctx;
  atomic_fetch_add(shedding ? &o->shed_on : &o->shed_off, 1);
  if (o->health) health_set_overloaded(o->health, shedding);
}

static void owner_pressure(void *ctx) { atomic_fetch_add(&((owner *)ctx)->pressure, 1); }

static void wait_samples(const mem_guard *g, long long n) {
  for (int i = 0; i < 6000 && mem_guard_samples(g) < n; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_true(mem_guard_samples(g) >= n);
}

static void test_thread_sets_the_flag_and_tells_the_owner(void **state) {
  (void)state;
  static const char *const services[] = {"product.ProductService"};
  owner o = {.health = health_state_create(services, 1)};
  assert_non_null(o.health);
  /* A limit any process is over: 1 byte. */
  mem_guard_options opt = {.limit_bytes = 1, .interval_ms = 10, .on_shed = owner_shed,
                           .pressure = owner_pressure, .ctx = &o};
  mem_guard *g = mem_guard_start(&opt);
  assert_non_null(g);
  assert_true(wait_shedding(g, true));
  /* The flag is set before the owner is told; wait (bounded) for the call. */
  for (int i = 0; i < 6000 && atomic_load(&o.shed_on) == 0; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(health_get(o.health, "product.ProductService", 22), HEALTH_NOT_SERVING);
  assert_int_equal(health_get(o.health, "", 0), HEALTH_SERVING); /* liveness stays */
  for (int i = 0; i < 6000 && atomic_load(&o.pressure) == 0; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_true(atomic_load(&o.pressure) >= 1); /* asked to close the costliest connection */
  /* Told once per change, not once per sample. */
  wait_samples(g, mem_guard_samples(g) + 5);
  mem_guard_stop(g);
  assert_int_equal(atomic_load(&o.shed_on), 1);
  assert_int_equal(atomic_load(&o.shed_off), 0);
  health_set_overloaded(o.health, false);
  assert_int_equal(health_get(o.health, "product.ProductService", 22), HEALTH_SERVING);

  /* A limit no test process reaches: never sheds, over samples that were
   * really taken (waited for by count, bounded at about 60 s). */
  atomic_store(&o.pressure, 0);
  opt.limit_bytes = (int64_t)1 << 50;
  g = mem_guard_start(&opt);
  assert_non_null(g);
  wait_samples(g, 3);
  assert_false(mem_guard_shedding(g));
  mem_guard_stop(g);
  assert_int_equal(atomic_load(&o.pressure), 0);
  assert_int_equal(atomic_load(&o.shed_on), 1);
  assert_int_equal(atomic_load(&o.shed_off), 0);
  assert_false(mem_guard_shedding(NULL));
  assert_null(mem_guard_start(NULL));
  mem_guard_stop(NULL);
  health_state_destroy(o.health);
}

/* No owner at all (on_shed and pressure NULL): the flag alone. */
static void test_no_callbacks_still_sheds(void **state) {
  (void)state;
  mem_guard_options opt = {.limit_bytes = 1, .interval_ms = 10};
  mem_guard *g = mem_guard_start(&opt);
  assert_non_null(g);
  assert_true(wait_shedding(g, true));
  mem_guard_stop(g);
}

/* The samples run on a core/periodic worker, named: the process's thread
 * list shows "mem-guard" while it runs and not after it stops. */
static int threads_named(const char *name) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = '\0';
    fclose(f);
    if (strcmp(comm, name) == 0) n++;
  }
  closedir(d);
  return n;
}

static void test_runs_on_a_named_periodic_worker(void **state) {
  (void)state;
  mem_guard_options opt = {.limit_bytes = (int64_t)1 << 50, .interval_ms = 10};
  mem_guard *g = mem_guard_start(&opt);
  assert_non_null(g);
  wait_samples(g, 1); /* the thread has run (and named itself) */
  assert_int_equal(threads_named("mem-guard"), 1);
  mem_guard_stop(g);
  assert_int_equal(threads_named("mem-guard"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decide_sheds_above_and_recovers_below_ninety_percent),
      cmocka_unit_test(test_rss_is_sampled),
      cmocka_unit_test(test_thread_sets_the_flag_and_tells_the_owner),
      cmocka_unit_test(test_no_callbacks_still_sheds),
      cmocka_unit_test(test_runs_on_a_named_periodic_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
