/* Tests for the rate-limit specs (src/config/config_rate_limit.c) and their
 * flags and variables in config.c: what is accepted, the defaults, and that
 * every refusal names the part of the spec that is wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config_fixture.h"

static void expect_spec(const char *spec, double rr, double rb, double wr, double wb) {
  config_rate r, w;
  char err[256];
  if (config_parse_rate_limit(spec, &r, &w, err, sizeof err) != 0)
    fail_msg("'%s' refused: %s", spec, err);
  if (r.rate != rr || r.burst != rb || w.rate != wr || w.burst != wb)
    fail_msg("'%s' gave read %g:%g write %g:%g", spec, r.rate, r.burst, w.rate, w.burst);
}

/* Refused, with a one-line message that contains `part`. */
static void expect_bad_spec(const char *spec, const char *part) {
  config_rate r, w;
  char err[256] = "";
  if (config_parse_rate_limit(spec, &r, &w, err, sizeof err) == 0)
    fail_msg("'%s' accepted", spec);
  if (!strstr(err, part)) fail_msg("'%s': '%s' does not name '%s'", spec, err, part);
  assert_null(strchr(err, '\n'));
}

static void expect_bad_rate(const char *spec, const char *part) {
  config_rate r;
  char err[256] = "";
  if (config_parse_rate(spec, &r, err, sizeof err) == 0) fail_msg("'%s' accepted", spec);
  if (!strstr(err, part)) fail_msg("'%s': '%s' does not name '%s'", spec, err, part);
}

static void test_specs_by_class(void **state) {
  (void)state;
  expect_spec("off", 0, 0, 0, 0);
  expect_spec("read=100/s:200,write=10/s:20", 100, 200, 10, 20);
  expect_spec("write=10/s", 0, 0, 10, 10); /* BURST defaults to RATE */
  expect_spec("read=0.5/s", 0.5, 1, 0, 0); /* ... but at least 1: a call needs one */
  expect_spec("read=2.5/s:7", 2.5, 7, 0, 0);
  expect_spec("write=1/s:1,read=3/s", 3, 3, 1, 1); /* any order */
  config_rate r;
  char err[256];
  assert_int_equal(config_parse_rate("10/s:100", &r, err, sizeof err), 0);
  assert_true(r.rate == 10 && r.burst == 100);
  assert_int_equal(config_parse_rate("off", &r, err, sizeof err), 0);
  assert_true(r.rate == 0);
  assert_int_equal(config_parse_rate(".25/s", &r, err, sizeof err), 0);
  assert_true(r.rate == 0.25 && r.burst == 1);
}

static void test_bad_specs_name_the_part(void **state) {
  (void)state;
  expect_bad_spec("", "empty");
  expect_bad_spec("read=10/s,wirte=5/s", "'wirte=5/s': unknown class 'wirte'");
  expect_bad_spec("reads=10/s", "unknown class 'reads'");
  expect_bad_spec("read=0/s", "'read=0/s': the rate must be above 0");
  expect_bad_spec("read=0.0/s", "'read=0.0/s'");
  expect_bad_spec("read=-1/s", "'read=-1/s': the rate must be above 0 (use off to turn the limit off)");
  expect_bad_spec("read=-x/s", "'read=-x/s': the rate '-x' is not a number");
  expect_bad_spec("write=ten/s", "the rate 'ten' is not a number");
  expect_bad_spec("write=1e3/s", "'1e3' is not a number");
  expect_bad_spec("write=inf/s", "'inf' is not a number");
  expect_bad_spec("write=nan/s", "'nan' is not a number");
  expect_bad_spec("read=./s", "'.' is not a number");
  expect_bad_spec("read=5", "'read=5': want RATE/s");
  expect_bad_spec("read=5/m", "'read=5/m': the rate is per second");
  expect_bad_spec("read=5/s:", "'read=5/s:'");
  expect_bad_spec("read=5/s:0", "'read=5/s:0': the burst must be at least 1");
  expect_bad_spec("read=5/s:-3", "'read=5/s:-3'");
  expect_bad_spec("read=5/s:1.5", "the burst '1.5' is not a whole number");
  expect_bad_spec("read=5/sx", "'read=5/sx'");
  expect_bad_spec("read", "'read': want read=RATE/s");
  expect_bad_spec("read=1/s,read=2/s", "read is given twice");
  expect_bad_spec("read=1/s,", "an empty part");
  expect_bad_spec(",read=1/s", "an empty part");
  expect_bad_spec("off,read=1/s", "unknown class 'off'");
  expect_bad_spec("read=2000000000/s", "at most");
  expect_bad_rate("0/s", "'0/s': the rate must be above 0");
  expect_bad_rate("10/s:0", "'10/s:0': the burst must be at least 1");
  expect_bad_rate("x", "'x'");
  expect_bad_rate("", "empty");
}

static void test_defaults_and_flags(void **state) {
  (void)state;
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_true(c->rate_limits.read.rate == 0 && c->rate_limits.write.rate == 0);
  assert_true(c->rate_limits.auth_failure.rate == 10 && c->rate_limits.auth_failure.burst == 100);
  assert_int_equal(c->rate_limits.keys, 100000);
  config_destroy(c);
  env_set("RATE_LIMIT", "read=5/s");
  env_set("AUTH_FAILURE_LIMIT", "off");
  env_set("RATE_LIMIT_KEYS", "64");
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_true(c->rate_limits.read.rate == 5 && c->rate_limits.auth_failure.rate == 0);
  assert_int_equal(c->rate_limits.keys, 64);
  config_destroy(c);
  /* The flag wins over the variable. */
  assert_int_equal(PARSE(&c, "--rate-limit", "write=1/s:3", "--auth-failure-limit", "2/s",
                         "--rate-limit-keys", "1"),
                   CONFIG_OK);
  assert_true(c->rate_limits.read.rate == 0 && c->rate_limits.write.burst == 3);
  assert_true(c->rate_limits.auth_failure.rate == 2 && c->rate_limits.auth_failure.burst == 2);
  assert_int_equal(c->rate_limits.keys, 1);
  config_destroy(c);
}

static void test_bad_flags_and_variables_are_refused_by_name(void **state) {
  (void)state;
  REFUSED("--rate-limit: 'read=0/s'", "--rate-limit", "read=0/s");
  REFUSED("--auth-failure-limit: '5/m'", "--auth-failure-limit", "5/m");
  REFUSED("--rate-limit-keys", "--rate-limit-keys", "0");
  REFUSED("--rate-limit-keys", "--rate-limit-keys", "many");
  REFUSED("needs a value", "--rate-limit");
  env_set("RATE_LIMIT", "wrte=1/s");
  REFUSED0("RATE_LIMIT: 'wrte=1/s': unknown class 'wrte'");
  env_unset("RATE_LIMIT");
  env_set("AUTH_FAILURE_LIMIT", "-1/s");
  REFUSED0("AUTH_FAILURE_LIMIT");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_specs_by_class),
      cmocka_unit_test(test_bad_specs_name_the_part),
      cmocka_unit_test_setup(test_defaults_and_flags, setup),
      cmocka_unit_test_setup(test_bad_flags_and_variables_are_refused_by_name, setup),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
