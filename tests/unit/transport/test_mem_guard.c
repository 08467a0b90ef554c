/* Tests for src/transport/mem_guard.c: the shedding decision with its
 * hysteresis, RSS sampling, and the thread flipping the flag and health. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <time.h>

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

static atomic_int g_pressure;
static void count_pressure(void *ctx) { atomic_fetch_add((atomic_int *)ctx, 1); }

static void test_thread_sets_the_flag_and_health(void **state) {
  (void)state;
  static const char *const services[] = {"product.ProductService"};
  health_state *h = health_state_create(services, 1);
  assert_non_null(h);
  /* A limit any process is over: 1 byte. */
  mem_guard *g = mem_guard_start(1, h, 10, count_pressure, &g_pressure);
  assert_non_null(g);
  assert_true(wait_shedding(g, true));
  assert_int_equal(health_get(h, "product.ProductService", 22), HEALTH_NOT_SERVING);
  assert_int_equal(health_get(h, "", 0), HEALTH_SERVING); /* liveness stays */
  for (int i = 0; i < 6000 && atomic_load(&g_pressure) == 0; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_true(atomic_load(&g_pressure) >= 1); /* asked to close the costliest connection */
  mem_guard_stop(g);
  atomic_store(&g_pressure, 0);
  health_set_overloaded(h, false);
  assert_int_equal(health_get(h, "product.ProductService", 22), HEALTH_SERVING);

  /* A limit no test process reaches: never sheds, over samples that were
   * really taken (waited for by count, bounded at about 60 s). */
  g = mem_guard_start((int64_t)1 << 50, h, 10, count_pressure, &g_pressure);
  assert_non_null(g);
  for (int i = 0; i < 6000 && mem_guard_samples(g) < 3; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_true(mem_guard_samples(g) >= 3);
  assert_false(mem_guard_shedding(g));
  mem_guard_stop(g);
  assert_int_equal(atomic_load(&g_pressure), 0);
  assert_false(mem_guard_shedding(NULL));
  mem_guard_stop(NULL);
  health_state_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decide_sheds_above_and_recovers_below_ninety_percent),
      cmocka_unit_test(test_rss_is_sampled),
      cmocka_unit_test(test_thread_sets_the_flag_and_health),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
