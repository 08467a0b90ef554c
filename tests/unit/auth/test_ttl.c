/* auth/ttl.c: mint-token's --ttl values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "auth/ttl.h"

static int64_t parsed(const char *s) {
  int64_t v = -42;
  assert_int_equal(ttl_parse(s, &v), 0);
  return v;
}

static void assert_rejected(const char *s) {
  int64_t v = -42;
  assert_int_not_equal(ttl_parse(s, &v), 0);
  assert_int_equal(v, -42); /* untouched on error */
}

static void test_units_scale_to_seconds(void **state) {
  (void)state;
  assert_int_equal(parsed("90s"), 90);
  assert_int_equal(parsed("15m"), 900);
  assert_int_equal(parsed("1h"), 3600);
  assert_int_equal(parsed("7d"), 604800);
}

static void test_plain_number_is_seconds(void **state) {
  (void)state;
  assert_int_equal(parsed("3600"), 3600);
  assert_int_equal(parsed("1"), 1);
  assert_int_equal(parsed("007"), 7);
}

static void test_maximum_is_ten_years(void **state) {
  (void)state;
  assert_int_equal(parsed("3650d"), TTL_MAX_SECONDS);
  assert_int_equal(parsed("315360000"), TTL_MAX_SECONDS);
  assert_rejected("3651d");
  assert_rejected("315360001");
}

static void test_garbage_is_rejected(void **state) {
  (void)state;
  const char *bad[] = {"",    "s",   "h",   "abc", "1x",   "1hh", "1h30m", "1.5h", "1,5h",
                       "1 h", " 1h", "1h ", "\t1", "1\n", "-1h", "+1h",   "1H",   "1S",
                       "0x10", "1e3", "1y", "1w", "1ms"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_rejected(bad[i]);
  int64_t v;
  assert_int_not_equal(ttl_parse(NULL, &v), 0);
  assert_int_not_equal(ttl_parse("1h", NULL), 0);
}

static void test_zero_is_rejected(void **state) {
  (void)state;
  assert_rejected("0");
  assert_rejected("0s");
  assert_rejected("0d");
  assert_rejected("000");
}

static void test_overflow_is_rejected(void **state) {
  (void)state;
  assert_rejected("9223372036854775807");  /* INT64_MAX: over the cap */
  assert_rejected("9223372036854775808");  /* INT64_MAX + 1: digits overflow */
  assert_rejected("99999999999999999999999999");
  assert_rejected("106751991167301d");     /* fits digits, overflows * 86400 */
  assert_rejected("153722867280912931m");  /* overflows * 60 */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_units_scale_to_seconds),
      cmocka_unit_test(test_plain_number_is_seconds),
      cmocka_unit_test(test_maximum_is_ten_years),
      cmocka_unit_test(test_garbage_is_rejected),
      cmocka_unit_test(test_zero_is_rejected),
      cmocka_unit_test(test_overflow_is_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
