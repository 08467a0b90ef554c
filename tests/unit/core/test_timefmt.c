/* Tests for core/timefmt.c: RFC 3339 output for logs and the client's JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/timefmt.h"

static void us_epoch_prints_six_zero_digits(void **state) {
  (void)state;
  char buf[TIMEFMT_RFC3339_MAX];
  assert_int_equal(timefmt_rfc3339_us(0, buf, sizeof buf), 27);
  assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
}

static void us_known_instant_keeps_microseconds(void **state) {
  (void)state;
  char buf[TIMEFMT_RFC3339_MAX];
  /* 2026-11-25T07:00:00Z = 1795590000 */
  assert_int_equal(timefmt_rfc3339_us(INT64_C(1795590000123456), buf, sizeof buf), 27);
  assert_string_equal(buf, "2026-11-25T07:00:00.123456Z");
}

static void us_before_epoch_floors_to_previous_second(void **state) {
  (void)state;
  char buf[TIMEFMT_RFC3339_MAX];
  assert_int_equal(timefmt_rfc3339_us(-1, buf, sizeof buf), 27);
  assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
  assert_int_equal(timefmt_rfc3339_us(-1000000, buf, sizeof buf), 27);
  assert_string_equal(buf, "1969-12-31T23:59:59.000000Z");
}

static void us_leap_day_and_century_rules(void **state) {
  (void)state;
  char buf[TIMEFMT_RFC3339_MAX];
  /* 2024-02-29T12:34:56Z = 1709210096; 2000-02-29 = 951782400; 2100-03-01 = 4107542400 */
  timefmt_rfc3339_us(INT64_C(1709210096) * 1000000, buf, sizeof buf);
  assert_string_equal(buf, "2024-02-29T12:34:56.000000Z");
  timefmt_rfc3339_us(INT64_C(951782400) * 1000000, buf, sizeof buf);
  assert_string_equal(buf, "2000-02-29T00:00:00.000000Z");
  timefmt_rfc3339_us(INT64_C(4107542400) * 1000000, buf, sizeof buf);
  assert_string_equal(buf, "2100-03-01T00:00:00.000000Z");
}

static void range_is_year_1_to_9999(void **state) {
  (void)state;
  char buf[TIMEFMT_RFC3339_MAX];
  assert_int_equal(timefmt_rfc3339_ts(INT64_C(-62135596800), 0, buf, sizeof buf), 20);
  assert_string_equal(buf, "0001-01-01T00:00:00Z");
  assert_int_equal(timefmt_rfc3339_ts(INT64_C(253402300799), 999999999, buf, sizeof buf), 30);
  assert_string_equal(buf, "9999-12-31T23:59:59.999999999Z");
  assert_int_equal(timefmt_rfc3339_ts(INT64_C(-62135596801), 0, buf, sizeof buf), -1);
  assert_string_equal(buf, "");
  assert_int_equal(timefmt_rfc3339_ts(INT64_C(253402300800), 0, buf, sizeof buf), -1);
  assert_int_equal(timefmt_rfc3339_us(INT64_MAX, buf, sizeof buf), -1);
  assert_int_equal(timefmt_rfc3339_us(INT64_MIN, buf, sizeof buf), -1);
}

static void ts_uses_fewest_of_0_3_6_9_digits(void **state) {
  (void)state;
  char buf[TIMEFMT_RFC3339_MAX];
  const int64_t s = INT64_C(1795590000);
  assert_int_equal(timefmt_rfc3339_ts(s, 0, buf, sizeof buf), 20);
  assert_string_equal(buf, "2026-11-25T07:00:00Z");
  timefmt_rfc3339_ts(s, 120000000, buf, sizeof buf);
  assert_string_equal(buf, "2026-11-25T07:00:00.120Z");
  timefmt_rfc3339_ts(s, 123456000, buf, sizeof buf);
  assert_string_equal(buf, "2026-11-25T07:00:00.123456Z");
  timefmt_rfc3339_ts(s, 1000, buf, sizeof buf);
  assert_string_equal(buf, "2026-11-25T07:00:00.000001Z");
  timefmt_rfc3339_ts(s, 123456789, buf, sizeof buf);
  assert_string_equal(buf, "2026-11-25T07:00:00.123456789Z");
  timefmt_rfc3339_ts(s, 1, buf, sizeof buf);
  assert_string_equal(buf, "2026-11-25T07:00:00.000000001Z");
}

static void ts_rejects_nanos_outside_one_second(void **state) {
  (void)state;
  char buf[TIMEFMT_RFC3339_MAX];
  assert_int_equal(timefmt_rfc3339_ts(0, -1, buf, sizeof buf), -1);
  assert_int_equal(timefmt_rfc3339_ts(0, 1000000000, buf, sizeof buf), -1);
  assert_string_equal(buf, "");
}

static void short_buffer_fails_without_overflow(void **state) {
  (void)state;
  char buf[40];
  memset(buf, 'x', sizeof buf);
  /* 27 characters need 28 bytes */
  assert_int_equal(timefmt_rfc3339_us(0, buf, 27), -1);
  assert_int_equal(buf[0], '\0');
  for (size_t i = 27; i < sizeof buf; i++)
    assert_int_equal(buf[i], 'x');
  assert_int_equal(timefmt_rfc3339_us(0, buf, 28), 27);
  assert_int_equal(timefmt_rfc3339_us(0, NULL, 0), -1);
  assert_int_equal(timefmt_rfc3339_us(0, buf, 0), -1);
}

/* The civil-date arithmetic must agree with the C library for every day of
 * a wide span (1900..2200), at a time of day that differs per step. */
static void agrees_with_gmtime_r_day_by_day(void **state) {
  (void)state;
  char got[TIMEFMT_RFC3339_MAX], want[96];
  const int64_t first = INT64_C(-2208988800); /* 1900-01-01 */
  const int64_t last = INT64_C(7258118400);   /* 2200-01-01 */
  unsigned step = 0;
  for (int64_t s = first; s < last; s += 86400, step++) {
    int64_t t = s + (int64_t)(step * 7919u % 86400u);
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(gmtime_r(&tt, &tm));
    snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.000042Z", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    assert_int_equal(timefmt_rfc3339_us(t * 1000000 + 42, got, sizeof got), 27);
    assert_string_equal(got, want);
  }
}

static void now_matches_time_within_two_seconds(void **state) {
  (void)state;
  int64_t before = (int64_t)time(NULL);
  int64_t now = timefmt_now_us() / 1000000;
  int64_t after = (int64_t)time(NULL);
  assert_true(now >= before - 1);
  assert_true(now <= after + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(us_epoch_prints_six_zero_digits),
      cmocka_unit_test(us_known_instant_keeps_microseconds),
      cmocka_unit_test(us_before_epoch_floors_to_previous_second),
      cmocka_unit_test(us_leap_day_and_century_rules),
      cmocka_unit_test(range_is_year_1_to_9999),
      cmocka_unit_test(ts_uses_fewest_of_0_3_6_9_digits),
      cmocka_unit_test(ts_rejects_nanos_outside_one_second),
      cmocka_unit_test(short_buffer_fails_without_overflow),
      cmocka_unit_test(agrees_with_gmtime_r_day_by_day),
      cmocka_unit_test(now_matches_time_within_two_seconds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
