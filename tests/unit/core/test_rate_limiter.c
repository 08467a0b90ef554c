/* Tests for src/core/rate_limiter.c: the token-bucket arithmetic under an
 * injected clock (fractional rates, bursts, refill after a long idle time, a
 * clock that steps backwards), the caller table (buckets per caller and per
 * limit, least-recently-seen eviction, memory bounded under a flood of
 * distinct callers, every thread at once) and client addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/rate_limiter.h"

#define S 1000000000LL /* one second in ns */
#define MS 1000000LL

static void test_a_bucket_starts_full_and_allows_its_burst(void **state) {
  (void)state;
  rl_rate r = {.rate = 2, .burst = 5};
  rl_bucket b;
  int64_t t = 1000 * S, wait = 0;
  rl_bucket_init(&b, &r, t);
  for (int i = 0; i < 5; i++) assert_true(rl_bucket_take(&b, &r, t, &wait));
  assert_false(rl_bucket_take(&b, &r, t, &wait));
  assert_int_equal(wait, 500); /* one token at 2/s */
  /* Refused calls take nothing: still 500 ms from the same instant. */
  assert_false(rl_bucket_take(&b, &r, t, &wait));
  assert_int_equal(wait, 500);
  /* The wait shrinks as time passes, and is over exactly at 500 ms. */
  assert_false(rl_bucket_take(&b, &r, t + 499 * MS, &wait));
  assert_int_equal(wait, 1);
  assert_true(rl_bucket_take(&b, &r, t + 500 * MS, &wait));
  assert_false(rl_bucket_take(&b, &r, t + 500 * MS, &wait));
}

static void test_fractional_rates(void **state) {
  (void)state;
  rl_rate r = {.rate = 0.5, .burst = 1}; /* one call every 2 s */
  rl_bucket b;
  int64_t t = 0, wait = 0;
  rl_bucket_init(&b, &r, t);
  assert_true(rl_bucket_take(&b, &r, t, &wait));
  assert_false(rl_bucket_take(&b, &r, t, &wait));
  assert_int_equal(wait, 2000);
  assert_false(rl_bucket_take(&b, &r, t + 1500 * MS, &wait));
  assert_int_equal(wait, 500);
  assert_true(rl_bucket_take(&b, &r, t + 2 * S, &wait));
  /* 1/3 per second: the wait is rounded up to a whole millisecond. */
  rl_rate third = {.rate = 1.0 / 3, .burst = 1};
  rl_bucket_init(&b, &third, 0);
  assert_true(rl_bucket_take(&b, &third, 0, &wait));
  assert_false(rl_bucket_take(&b, &third, 1 * MS, &wait));
  assert_int_equal(wait, 2999); /* 3000 ms - 1 ms, rounded up */
  /* A fast rate never advertises 0 ms. */
  rl_rate fast = {.rate = 1e6, .burst = 1};
  rl_bucket_init(&b, &fast, 0);
  assert_true(rl_bucket_take(&b, &fast, 0, &wait));
  assert_false(rl_bucket_take(&b, &fast, 0, &wait));
  assert_int_equal(wait, 1);
  /* Tokens accumulate in fractions: 4 x 250 ms at 1/s is one token. */
  rl_rate one = {.rate = 1, .burst = 1};
  rl_bucket_init(&b, &one, 0);
  assert_true(rl_bucket_take(&b, &one, 0, &wait));
  for (int i = 1; i < 4; i++) assert_false(rl_bucket_take(&b, &one, i * 250 * MS, &wait));
  assert_true(rl_bucket_take(&b, &one, 1000 * MS, &wait));
}

static void test_refill_after_a_long_idle_stops_at_the_burst(void **state) {
  (void)state;
  rl_rate r = {.rate = 10, .burst = 3};
  rl_bucket b;
  int64_t wait;
  rl_bucket_init(&b, &r, 0);
  for (int i = 0; i < 3; i++) assert_true(rl_bucket_take(&b, &r, 0, &wait));
  int64_t later = 30LL * 24 * 3600 * S; /* a month idle */
  for (int i = 0; i < 3; i++) assert_true(rl_bucket_take(&b, &r, later, &wait));
  assert_false(rl_bucket_take(&b, &r, later, &wait));
  assert_int_equal(wait, 100);
  assert_true(b.tokens >= 0 && b.tokens < 1);
}

static void test_a_clock_stepping_back_adds_nothing_and_is_not_credited_twice(void **state) {
  (void)state;
  rl_rate r = {.rate = 1, .burst = 2};
  rl_bucket b;
  int64_t wait;
  int64_t t = 100 * S;
  rl_bucket_init(&b, &r, t);
  assert_true(rl_bucket_take(&b, &r, t, &wait));
  assert_true(rl_bucket_take(&b, &r, t, &wait));
  /* Ten seconds back: nothing is added, and the wait is still one token. */
  assert_false(rl_bucket_take(&b, &r, t - 10 * S, &wait));
  assert_int_equal(wait, 1000);
  /* Forward again to t + 1 s: exactly the one second since t is credited,
   * not the eleven since the step back. */
  assert_true(rl_bucket_take(&b, &r, t + 1 * S, &wait));
  assert_false(rl_bucket_take(&b, &r, t + 1 * S, &wait));
}

/* Over many rates and instants: a client that waits exactly the advertised
 * time finds its token, and one that comes a millisecond earlier does not
 * (the wait is not padded). */
static void test_waiting_the_advertised_time_always_finds_a_token(void **state) {
  (void)state;
  static const double rates[] = {0.001, 0.1, 1.0 / 3, 0.5, 1, 2.5, 7, 10, 333, 1000, 12345.6};
  uint64_t x = 88172645463325252ULL; /* xorshift: the same instants every run */
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
    rl_rate r = {.rate = rates[i], .burst = 3};
    for (int round = 0; round < 2000; round++) {
      rl_bucket b;
      int64_t t = 0, wait = 0;
      rl_bucket_init(&b, &r, t);
      while (rl_bucket_take(&b, &r, t, &wait)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* Calls come at least twice as fast as tokens: the loop ends. */
        t += (int64_t)(x % (uint64_t)(0.5e9 / r.rate));
      }
      rl_bucket copy = b;
      if (wait > 1) {
        int64_t early = 0;
        assert_false(rl_bucket_take(&copy, &r, t + (wait - 1) * MS, &early));
      }
      if (!rl_bucket_take(&b, &r, t + wait * MS, &wait))
        fail_msg("rate %g: refused after waiting the advertised time", r.rate);
    }
  }
}

static void test_charge_never_goes_below_zero(void **state) {
  (void)state;
  rl_rate r = {.rate = 1, .burst = 2};
  rl_bucket b;
  int64_t wait;
  rl_bucket_init(&b, &r, 0);
  for (int i = 0; i < 10; i++) rl_bucket_charge(&b, &r, 0);
  assert_true(b.tokens == 0);
  assert_false(rl_bucket_has(&b, &r, 0, &wait));
  assert_int_equal(wait, 1000);
  assert_true(rl_bucket_has(&b, &r, 1 * S, &wait)); /* has() takes nothing */
  assert_true(rl_bucket_has(&b, &r, 1 * S, &wait));
}

static rate_limiter *limiter(double read, double read_burst, double auth, size_t keys) {
  rl_rate rates[RL_LIMIT_COUNT] = {
      [RL_READ] = {read, read_burst}, [RL_WRITE] = {0, 0}, [RL_AUTH_FAILURE] = {auth, 2}};
  rate_limiter *rl = rate_limiter_create(rates, keys);
  assert_non_null(rl);
  return rl;
}

static void test_callers_and_limits_have_their_own_buckets(void **state) {
  (void)state;
  rate_limiter *rl = limiter(1, 2, 1, 100);
  int64_t wait = 0;
  assert_true(rate_limiter_on(rl, RL_READ));
  assert_false(rate_limiter_on(rl, RL_WRITE));
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "alice", 0, &wait));
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "alice", 0, &wait));
  assert_false(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "alice", 0, &wait));
  assert_int_equal(wait, 1000);
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "bob", 0, &wait));
  /* A sub and an address with the same text are different callers. */
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_ADDR, "alice", 0, &wait));
  /* An off limit always allows. */
  for (int i = 0; i < 100; i++)
    assert_true(rate_limiter_take(rl, RL_WRITE, RL_CALLER_SUB, "alice", 0, &wait));
  /* The auth-failure bucket of an address is apart from its read bucket. */
  assert_true(rate_limiter_has(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, "alice", 0, &wait));
  rate_limiter_charge(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, "10.0.0.1", 0);
  rate_limiter_charge(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, "10.0.0.1", 0);
  assert_false(rate_limiter_has(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, "10.0.0.1", 0, &wait));
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_ADDR, "10.0.0.1", 0, &wait));
  /* has() on an unknown caller: full, and nothing is added. */
  size_t n = rate_limiter_keys(rl);
  assert_true(rate_limiter_has(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, "10.9.9.9", 0, &wait));
  assert_int_equal(rate_limiter_keys(rl), n);
  /* Long subs (stored as a digest) stay apart when they differ at the end. */
  char a[300], b[300];
  memset(a, 'x', sizeof a - 1);
  a[sizeof a - 1] = '\0';
  memcpy(b, a, sizeof b);
  b[sizeof b - 2] = 'y';
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, a, 0, &wait));
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, a, 0, &wait));
  assert_false(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, a, 0, &wait));
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, b, 0, &wait));
  rate_limiter_destroy(rl);
}

static void test_the_least_recently_seen_caller_is_forgotten_first(void **state) {
  (void)state;
  rate_limiter *rl = limiter(1, 1, 0, 1); /* one caller at a time */
  int64_t wait;
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "a", 0, &wait));
  assert_false(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "a", 0, &wait));
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "b", 0, &wait)); /* a forgotten */
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "a", 0, &wait)); /* back full */
  assert_int_equal(rate_limiter_keys(rl), 1);
  rate_limiter_destroy(rl);

  /* A caller seen between every two newcomers is never the oldest: a flood
   * of new callers cannot push it out (and refill its bucket). */
  rl = limiter(1, 1, 0, 64);
  char name[32];
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "keeper", 0, &wait));
  for (int i = 0; i < 100000; i++) {
    snprintf(name, sizeof name, "flood-%d", i);
    rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, name, 0, &wait);
    assert_false(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "keeper", 0, &wait));
  }
  /* And one not seen since is forgotten: flood-0 comes back full. */
  assert_true(rate_limiter_take(rl, RL_READ, RL_CALLER_SUB, "flood-0", 0, &wait));
  assert_int_equal(rate_limiter_keys(rl), 64);
  rate_limiter_destroy(rl);
}

static void test_a_flood_of_distinct_callers_keeps_memory_bounded(void **state) {
  (void)state;
  const size_t keys = 1000;
  rate_limiter *rl = limiter(1, 1, 1, keys);
  char name[48];
  size_t at_bound = 0;
  for (int i = 0; i < 200000; i++) {
    snprintf(name, sizeof name, "2001:db8:%x:%x::/64", i >> 16, i & 0xffff);
    rate_limiter_charge(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, name, i);
    assert_true(rate_limiter_keys(rl) <= keys);
    if (i == 5000) at_bound = rate_limiter_bytes(rl);
  }
  assert_int_equal(rate_limiter_keys(rl), keys);
  /* Nothing grew after the bound was reached. */
  assert_int_equal(rate_limiter_bytes(rl), at_bound);
  assert_true(at_bound < keys * 200 + 64 * 1024);
  printf("# %zu callers: %zu bytes (%.0f per caller)\n", keys, at_bound,
         (double)at_bound / (double)keys);
  rate_limiter_destroy(rl);
  /* The default bound, measured for the documentation. */
  rl = limiter(1, 1, 1, 100000);
  for (int i = 0; i < 300000; i++) {
    snprintf(name, sizeof name, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    rate_limiter_charge(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, name, i);
  }
  assert_int_equal(rate_limiter_keys(rl), 100000);
  printf("# 100000 callers: %zu bytes\n", rate_limiter_bytes(rl));
  rate_limiter_destroy(rl);
}

typedef struct worker_arg {
  rate_limiter *rl;
  int id;
  int allowed;
} worker_arg;

static void *worker(void *p) {
  worker_arg *a = p;
  char name[32];
  int64_t wait;
  for (int i = 0; i < 20000; i++) {
    snprintf(name, sizeof name, "t%d-%d", a->id, i % 500);
    rate_limiter_take(a->rl, RL_READ, RL_CALLER_SUB, name, 0, &wait);
    if (rate_limiter_take(a->rl, RL_READ, RL_CALLER_SUB, "shared", 0, &wait)) a->allowed++;
  }
  return NULL;
}

static void test_threads_share_one_bucket_exactly(void **state) {
  (void)state;
  rate_limiter *rl = limiter(1, 100, 0, 256);
  pthread_t t[4];
  worker_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (worker_arg){.rl = rl, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
  }
  int total = 0;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    total += args[i].allowed;
  }
  /* The clock does not move: exactly the burst, whoever took it ("shared"
   * is seen between every two newcomers, so it is never evicted). */
  assert_int_equal(total, 100);
  assert_true(rate_limiter_keys(rl) <= 256);
  rate_limiter_destroy(rl);
}

static void expect_addr(const char *peer, const char *want) {
  char out[64];
  rl_peer_address(peer, out, sizeof out);
  if (strcmp(out, want) != 0) fail_msg("%s -> '%s', want '%s'", peer, out, want);
}

static void test_client_addresses(void **state) {
  (void)state;
  expect_addr("ipv4:127.0.0.1:40174", "127.0.0.1");
  expect_addr("ipv4:10.1.2.3:1", "10.1.2.3");
  expect_addr("ipv6:[2001:db8:1:2:3:4:5:6]:5000", "2001:db8:1:2::/64");
  expect_addr("ipv6:[2001:db8:1:2:ffff::1]:5001", "2001:db8:1:2::/64"); /* same /64 */
  expect_addr("ipv6:[::1]:5000", "::/64");
  expect_addr("ipv6:[fe80::1%25eth0]:5000", "fe80::/64");
  /* The 1.51 core writes the brackets percent-encoded: the port must not
   * make each connection a caller of its own. */
  expect_addr("ipv6:%5B2001:db8:1:2:3:4:5:6%5D:5000", "2001:db8:1:2::/64");
  expect_addr("ipv6:%5b::1%5d:5001", "::/64");
  expect_addr("ipv6:%5Bfe80::1%25eth0%5D:5000", "fe80::/64");
  expect_addr("unix:/tmp/sock", "unix");
  expect_addr("ipv6:[not-an-address]:1", "ipv6:[not-an-address]:1");
  expect_addr("", "");
  /* A buffer too small truncates (NUL-terminated), never overflows. */
  char small[6];
  memset(small, '#', sizeof small);
  rl_peer_address("ipv4:192.168.100.200:1", small, sizeof small);
  assert_string_equal(small, "192.1");
  rl_peer_address("ipv4:10.0.0.1:1", small, 1);
  assert_string_equal(small, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_bucket_starts_full_and_allows_its_burst),
      cmocka_unit_test(test_fractional_rates),
      cmocka_unit_test(test_refill_after_a_long_idle_stops_at_the_burst),
      cmocka_unit_test(test_a_clock_stepping_back_adds_nothing_and_is_not_credited_twice),
      cmocka_unit_test(test_waiting_the_advertised_time_always_finds_a_token),
      cmocka_unit_test(test_charge_never_goes_below_zero),
      cmocka_unit_test(test_callers_and_limits_have_their_own_buckets),
      cmocka_unit_test(test_the_least_recently_seen_caller_is_forgotten_first),
      cmocka_unit_test(test_a_flood_of_distinct_callers_keeps_memory_bounded),
      cmocka_unit_test(test_threads_share_one_bucket_exactly),
      cmocka_unit_test(test_client_addresses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
