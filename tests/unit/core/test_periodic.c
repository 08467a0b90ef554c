/* Tests for core/periodic.c, the one periodic worker: the first tick runs
 * at once, a kick runs the next early, a tick's own wait is honoured, and
 * stop ends any wait (an interval of an hour, a tick asleep) at once, with
 * on_stop called before the join. Every wait here is bounded by a hang
 * guard, never by a speed budget: the intervals are far longer than any
 * test run, so a tick the test sees was run by a kick or by the tick's own
 * request, never by time passing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "core/periodic.h"

#define HOUR_MS (3600 * 1000)
#define HANG_GUARD_POLLS 60000 /* x 1 ms: a minute on a loaded machine */

typedef struct probe {
  atomic_int ticks;
  atomic_int stops;
  atomic_int slept_and_stopped;
  int64_t wait; /* what the tick asks for */
  bool sleep_in_tick;
  periodic *self;
} probe;

static int64_t tick(periodic *p, void *arg) {
  probe *pr = arg;
  atomic_fetch_add(&pr->ticks, 1);
  if (pr->sleep_in_tick && periodic_sleep(p, HOUR_MS)) atomic_fetch_add(&pr->slept_and_stopped, 1);
  return pr->wait;
}

static void on_stop(void *arg) {
  probe *pr = arg;
  atomic_fetch_add(&pr->stops, 1);
}

/* Polls until ticks reaches n; the guard only stops a hang. */
static void wait_ticks(probe *pr, int n) {
  struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000000};
  for (int i = 0; i < HANG_GUARD_POLLS && atomic_load(&pr->ticks) < n; i++) nanosleep(&ms, NULL);
  assert_true(atomic_load(&pr->ticks) >= n);
}

static periodic *start(probe *pr, int64_t min_gap_ms) {
  periodic_options o = {.name = "test-periodic",
                        .tick = tick,
                        .arg = pr,
                        .interval_ms = HOUR_MS,
                        .min_gap_ms = min_gap_ms,
                        .on_stop = on_stop};
  periodic *p = NULL;
  assert_int_equal(periodic_start(&o, &p), 0);
  assert_non_null(p);
  return p;
}

static void first_tick_runs_at_once_and_stop_ends_an_hour_wait(void **state) {
  (void)state;
  probe pr = {.wait = PERIODIC_INTERVAL};
  periodic *p = start(&pr, 0);
  wait_ticks(&pr, 1);
  assert_false(periodic_stopping(p));
  periodic_stop(p); /* would wait an hour if stop did not wake the thread */
  assert_int_equal(atomic_load(&pr.ticks), 1);
  assert_int_equal(atomic_load(&pr.stops), 1);
}

static void a_kick_runs_the_next_tick_early(void **state) {
  (void)state;
  probe pr = {.wait = PERIODIC_INTERVAL};
  periodic *p = start(&pr, 0);
  wait_ticks(&pr, 1);
  periodic_kick(p);
  wait_ticks(&pr, 2);
  periodic_kick(p);
  wait_ticks(&pr, 3);
  assert_true(periodic_ticks(p) >= 3);
  periodic_stop(p);
}

static void a_tick_asking_for_no_wait_runs_again(void **state) {
  (void)state;
  probe pr = {.wait = 0};
  periodic *p = start(&pr, 0);
  wait_ticks(&pr, 5); /* no kick: the tick's own "0 ms" brings the next */
  periodic_stop(p);
}

static void stop_wakes_a_tick_asleep_inside(void **state) {
  (void)state;
  probe pr = {.wait = PERIODIC_INTERVAL, .sleep_in_tick = true};
  periodic *p = start(&pr, 0);
  wait_ticks(&pr, 1);
  periodic_stop(p); /* the tick sleeps an hour; stop must end that sleep */
  assert_int_equal(atomic_load(&pr.slept_and_stopped), 1);
  assert_int_equal(atomic_load(&pr.ticks), 1);
}

static void bad_options_start_nothing(void **state) {
  (void)state;
  probe pr = {0};
  periodic *p = (periodic *)&pr;
  periodic_options no_tick = {.interval_ms = 10, .arg = &pr};
  assert_int_not_equal(periodic_start(&no_tick, &p), 0);
  assert_null(p);
  periodic_options no_interval = {.tick = tick, .arg = &pr};
  assert_int_not_equal(periodic_start(&no_interval, &p), 0);
  assert_null(p);
  periodic_stop(NULL); /* a no-op */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(first_tick_runs_at_once_and_stop_ends_an_hour_wait),
      cmocka_unit_test(a_kick_runs_the_next_tick_early),
      cmocka_unit_test(a_tick_asking_for_no_wait_runs_again),
      cmocka_unit_test(stop_wakes_a_tick_asleep_inside),
      cmocka_unit_test(bad_options_start_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
