/* Tests for config/config_tracing.c: the OTEL_* variables as the
 * OpenTelemetry SDK reads them, and --otlp-endpoint over them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

static const char *const *g_env;

static const char *fake_getenv(const char *name) {
  for (size_t i = 0; g_env && g_env[i]; i += 2)
    if (strcmp(g_env[i], name) == 0) return g_env[i + 1];
  return NULL;
}

static int resolve(const char *flag, const char *const *env, config_tracing *t) {
  char err[200];
  g_env = env;
  return config_resolve_tracing(flag, fake_getenv, t, err, sizeof err);
}

static void nothing_set_exports_nothing_with_the_defaults(void **state) {
  (void)state;
  config_tracing t;
  assert_int_equal(resolve(NULL, NULL, &t), 0);
  assert_null(t.otlp_url);
  assert_string_equal(t.service_name, "product-service");
  assert_int_equal(t.sampler, TRACE_SAMPLER_PARENTBASED_ALWAYS_ON);
  assert_true(t.sampler_arg == 1.0);
  assert_int_equal(t.queue_size, 2048);
  assert_int_equal(t.batch_size, 512);
  assert_int_equal(t.schedule_delay_ms, 5000);
  assert_int_equal(t.export_timeout_ms, 10000);
  assert_string_equal(t.warning, "");
  config_tracing_free(&t);
}

static void endpoints_resolve_in_order(void **state) {
  (void)state;
  config_tracing t;
  static const char *const base[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", NULL};
  assert_int_equal(resolve(NULL, base, &t), 0);
  assert_string_equal(t.otlp_url, "http://c:4318/v1/traces");
  config_tracing_free(&t);
  static const char *const slash[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/", NULL};
  assert_int_equal(resolve(NULL, slash, &t), 0);
  assert_string_equal(t.otlp_url, "http://c:4318/v1/traces");
  config_tracing_free(&t);
  static const char *const both[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318",
                                     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t:1/x",
                                     NULL};
  assert_int_equal(resolve(NULL, both, &t), 0);
  assert_string_equal(t.otlp_url, "https://t:1/x"); /* used as is */
  config_tracing_free(&t);
  assert_int_equal(resolve("http://f:2", both, &t), 0);
  assert_string_equal(t.otlp_url, "http://f:2/v1/traces"); /* the flag wins */
  config_tracing_free(&t);
  static const char *const empty[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "", NULL};
  assert_int_equal(resolve(NULL, empty, &t), 0);
  assert_null(t.otlp_url); /* empty is unset */
  config_tracing_free(&t);
}

static void a_url_that_is_not_http_is_refused(void **state) {
  (void)state;
  config_tracing t;
  char err[200];
  static const char *const bad[] = {"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318", NULL};
  g_env = bad;
  assert_int_not_equal(config_resolve_tracing(NULL, fake_getenv, &t, err, sizeof err), 0);
  assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_ENDPOINT"));
  assert_int_not_equal(config_resolve_tracing("grpc://x", fake_getenv, &t, err, sizeof err), 0);
  assert_non_null(strstr(err, "--otlp-endpoint"));
}

static void samplers_and_bad_values_as_the_sdk_reads_them(void **state) {
  (void)state;
  config_tracing t;
  static const char *const ratio[] = {"OTEL_TRACES_SAMPLER", "parentbased_traceidratio",
                                      "OTEL_TRACES_SAMPLER_ARG", "0.25", NULL};
  assert_int_equal(resolve(NULL, ratio, &t), 0);
  assert_int_equal(t.sampler, TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO);
  assert_true(t.sampler_arg == 0.25);
  config_tracing_free(&t);
  static const char *const unknown[] = {"OTEL_TRACES_SAMPLER", "sometimes", NULL};
  assert_int_equal(resolve(NULL, unknown, &t), 0);
  assert_int_equal(t.sampler, TRACE_SAMPLER_PARENTBASED_ALWAYS_ON);
  assert_non_null(strstr(t.warning, "OTEL_TRACES_SAMPLER"));
  config_tracing_free(&t);
  static const char *const badarg[] = {"OTEL_TRACES_SAMPLER", "traceidratio",
                                       "OTEL_TRACES_SAMPLER_ARG", "1.5", NULL};
  assert_int_equal(resolve(NULL, badarg, &t), 0);
  assert_true(t.sampler_arg == 1.0);
  assert_non_null(strstr(t.warning, "OTEL_TRACES_SAMPLER_ARG"));
  config_tracing_free(&t);
  static const char *const bsp[] = {"OTEL_BSP_MAX_QUEUE_SIZE", "16",
                                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64",
                                    "OTEL_BSP_SCHEDULE_DELAY", "60000",
                                    "OTEL_EXPORTER_OTLP_TIMEOUT", "250", NULL};
  assert_int_equal(resolve(NULL, bsp, &t), 0);
  assert_int_equal(t.queue_size, 16);
  assert_int_equal(t.batch_size, 16);        /* never above the queue */
  assert_int_equal(t.schedule_delay_ms, 5000); /* over the 5 s bound: the default */
  assert_int_equal(t.export_timeout_ms, 250);
  config_tracing_free(&t);
  /* Digits only, as every other number of the config: a sign, a space, hex
   * or zero is a warning and the default. */
  static const char *const not_numbers[] = {"+16", " 16", "16 ", "0x10", "0", "-1", "", NULL};
  for (size_t i = 0; not_numbers[i]; i++) {
    const char *env[] = {"OTEL_BSP_MAX_QUEUE_SIZE", not_numbers[i], NULL};
    assert_int_equal(resolve(NULL, env, &t), 0);
    assert_int_equal(t.queue_size, 2048);
    if (not_numbers[i][0]) assert_non_null(strstr(t.warning, "OTEL_BSP_MAX_QUEUE_SIZE"));
    config_tracing_free(&t);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(nothing_set_exports_nothing_with_the_defaults),
      cmocka_unit_test(endpoints_resolve_in_order),
      cmocka_unit_test(a_url_that_is_not_http_is_refused),
      cmocka_unit_test(samplers_and_bad_values_as_the_sdk_reads_them),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
