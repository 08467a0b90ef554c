/* Tests for the connection and memory limits of the config module
 * (src/config/config_limits.c and their flags in config.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config_fixture.h"

static void expect_bytes(const char *text, int64_t want) {
  int64_t v = -7;
  if (config_parse_bytes(text, &v) != 0) fail_msg("'%s' refused", text);
  if (v != want) fail_msg("'%s' gave %lld, want %lld", text, (long long)v, (long long)want);
}

static void expect_bad_bytes(const char *text) {
  int64_t v = 0;
  if (config_parse_bytes(text, &v) == 0) fail_msg("'%s' accepted as %lld", text, (long long)v);
}

static void test_byte_sizes_take_binary_units(void **state) {
  (void)state;
  expect_bytes("0", 0);
  expect_bytes("65536", 65536);
  expect_bytes("64Ki", 65536);
  expect_bytes("64k", 65536);
  expect_bytes("64KiB", 65536);
  expect_bytes("512Mi", 512LL << 20);
  expect_bytes("512M", 512LL << 20);
  expect_bytes("2Gi", 2LL << 30);
  expect_bytes("1T", 1LL << 40);
  expect_bytes("7b", 7);
  expect_bad_bytes("");
  expect_bad_bytes("-1");
  expect_bad_bytes("+1");
  expect_bad_bytes(" 1");
  expect_bad_bytes("1 Mi");
  expect_bad_bytes("1.5Mi");
  expect_bad_bytes("Mi");
  expect_bad_bytes("1Pi");
  expect_bad_bytes("1Xi");
  expect_bad_bytes("99999999999999999999");
  expect_bad_bytes("9223372036854775807Ki"); /* overflows on the shift */
}

static void test_memory_default_comes_from_the_cgroup(void **state) {
  (void)state;
  /* v2 first, then v1; "max" and v1's huge "unlimited" mean no limit. */
  assert_int_equal(config_memory_limit_from_cgroup("536870912\n", NULL, 85), 536870912 / 100 * 85);
  assert_int_equal(config_memory_limit_from_cgroup("max\n", "268435456\n", 80), 268435456 / 100 * 80);
  assert_int_equal(config_memory_limit_from_cgroup(NULL, "268435456\n", 85), 268435456 / 100 * 85);
  assert_int_equal(config_memory_limit_from_cgroup("max\n", NULL, 85), 0);
  assert_int_equal(config_memory_limit_from_cgroup(NULL, "9223372036854771712\n", 85), 0);
  assert_int_equal(config_memory_limit_from_cgroup(NULL, NULL, 85), 0);
  assert_int_equal(config_memory_limit_from_cgroup("garbage", "0\n", 85), 0);
}

static void test_defaults_are_the_edge_settings(void **state) {
  (void)state;
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_int_equal(c->limits.max_concurrent_streams, 100);
  assert_int_equal(c->limits.stream_window_bytes, 65536);
  assert_int_equal(c->limits.max_header_list_bytes, 256 << 10);
  assert_int_equal(c->limits.handshake_timeout_ms, 10000);
  assert_int_equal(c->limits.max_connection_idle_ms, 300000);
  assert_int_equal(c->limits.max_connection_age_ms, 0);
  assert_int_equal(c->limits.ping_min_interval_ms, 300000);
  assert_int_equal(c->limits.max_ping_strikes, 2);
  assert_int_equal(c->limits.rapid_reset_per_s, 200);
  assert_int_equal(c->limits.h2_continuations, 128);
  assert_int_equal(c->limits.h2_pings_per_s, 1000);
  assert_int_equal(c->limits.h2_settings_per_s, 100);
  assert_int_equal(c->limits.h2_empty_data_per_s, 1000);
  assert_int_equal(c->limits.h2_rst_per_s, 1000);
  assert_int_equal(c->limits.memory_limit_bytes, CONFIG_MEMORY_LIMIT_AUTO);
  config_resolve_memory_limit(c);
  assert_true(c->limits.memory_limit_bytes >= 0);
  assert_int_equal(c->limits.memory_limit_bytes, config_memory_limit_default());
  config_destroy(c);
}

static void test_flags_and_variables_set_limits(void **state) {
  (void)state;
  config *c = NULL;
  env_set("MAX_CONCURRENT_STREAMS", "50");
  env_set("STREAM_WINDOW_BYTES", "1Mi");
  env_set("MEMORY_LIMIT", "256Mi");
  env_set("RAPID_RESET_LIMIT", "0");
  env_set("H2_PING_LIMIT", "7");
  env_set("H2_RST_LIMIT", "0");
  assert_int_equal(PARSE(&c, "--max-concurrent-streams", "10", "--max-ping-strikes", "0",
                         "--max-connection-age-ms", "60000", "--handshake-timeout-ms", "2000",
                         "--h2-max-continuations", "16", "--h2-settings-limit", "5",
                         "--h2-empty-data-limit", "0"),
                   CONFIG_OK);
  assert_int_equal(c->limits.h2_pings_per_s, 7);
  assert_int_equal(c->limits.h2_rst_per_s, 0);
  assert_int_equal(c->limits.h2_continuations, 16);
  assert_int_equal(c->limits.h2_settings_per_s, 5);
  assert_int_equal(c->limits.h2_empty_data_per_s, 0);
  assert_int_equal(c->limits.max_concurrent_streams, 10); /* the flag wins */
  assert_int_equal(c->limits.stream_window_bytes, 1 << 20);
  assert_int_equal(c->limits.memory_limit_bytes, 256 << 20);
  assert_int_equal(c->limits.rapid_reset_per_s, 0);
  assert_int_equal(c->limits.max_ping_strikes, 0);
  assert_int_equal(c->limits.max_connection_age_ms, 60000);
  assert_int_equal(c->limits.handshake_timeout_ms, 2000);
  config_resolve_memory_limit(c); /* an explicit limit stays */
  assert_int_equal(c->limits.memory_limit_bytes, 256 << 20);
  assert_false(c->limits.memory_limit_from_cgroup);
  config_destroy(c);

  c = NULL;
  assert_int_equal(PARSE(&c, "--memory-limit", "0"), CONFIG_OK);
  assert_int_equal(c->limits.memory_limit_bytes, 0);
  config_destroy(c);
  c = NULL;
  assert_int_equal(PARSE(&c, "--memory-limit", "AUTO"), CONFIG_OK);
  assert_int_equal(c->limits.memory_limit_bytes, CONFIG_MEMORY_LIMIT_AUTO);
  config_destroy(c);
  c = NULL;
  env_set("MAX_CONCURRENT_STREAMS", ""); /* empty: unset */
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_int_equal(c->limits.max_concurrent_streams, 100);
  config_destroy(c);
}

static void test_bad_limits_are_refused_by_name(void **state) {
  (void)state;
  REFUSED("--max-concurrent-streams", "--max-concurrent-streams", "0");
  REFUSED("--max-concurrent-streams", "--max-concurrent-streams", "-5");
  REFUSED("--stream-window", "--stream-window", "512");   /* below 1 KiB */
  REFUSED("--stream-window", "--stream-window", "4Gi");   /* above 2^31-1 */
  REFUSED("--stream-window", "--stream-window", "64 Ki");
  REFUSED("--handshake-timeout-ms", "--handshake-timeout-ms", "0");
  REFUSED("--max-ping-strikes", "--max-ping-strikes", "1001");
  REFUSED("--memory-limit", "--memory-limit", "lots");
  REFUSED("--max-connection-idle-ms", "--max-connection-idle-ms", "1s");
  REFUSED("needs a value", "--rapid-reset-limit");
  env_set("MEMORY_LIMIT", "12X");
  REFUSED0("MEMORY_LIMIT");
  env_unset("MEMORY_LIMIT");
  env_set("RAPID_RESET_LIMIT", "ten");
  REFUSED0("RAPID_RESET_LIMIT");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_byte_sizes_take_binary_units),
      cmocka_unit_test(test_memory_default_comes_from_the_cgroup),
      cmocka_unit_test_setup(test_defaults_are_the_edge_settings, setup),
      cmocka_unit_test_setup(test_flags_and_variables_set_limits, setup),
      cmocka_unit_test_setup(test_bad_limits_are_refused_by_name, setup),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
