/* Tests for core/trace_context.c: the W3C traceparent grammar (a table of
 * malformed values, each of which must start a new trace), future versions,
 * ids from the random pool, and the samplers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/trace_context.h"

#define TID "0af7651916cd43dd8448eb211c80319c"
#define PID "b7ad6b7169203331"

static void valid_version_00_gives_ids_and_flags(void **state) {
  (void)state;
  static const char v[] = "00-" TID "-" PID "-01";
  uint8_t tid[16], pid[8], flags = 0;
  assert_int_equal(trace_parse_traceparent(v, strlen(v), tid, pid, &flags), 0);
  char hex[33];
  trace_hex(tid, 16, hex);
  assert_string_equal(hex, TID);
  trace_hex(pid, 8, hex);
  assert_string_equal(hex, PID);
  assert_int_equal(flags, 1);
  /* Unknown flag bits are carried, not refused. */
  static const char v2[] = "00-" TID "-" PID "-fe";
  assert_int_equal(trace_parse_traceparent(v2, strlen(v2), tid, pid, &flags), 0);
  assert_int_equal(flags, 0xfe);
}

static void malformed_traceparents_are_refused(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",                                        /* empty */
      "00",                                      /* version only */
      "00-" TID "-" PID "-0",                    /* flags one digit short */
      "00-" TID "-" PID "-011",                  /* version 00 is exactly 55 bytes */
      "00-" TID "-" PID "-01-extra",             /* no extra fields in version 00 */
      "00-" TID "0-" PID "-01",                  /* trace id too long */
      "00-0af7651916cd43dd8448eb211c80319-" PID "-01", /* trace id too short */
      "00-" TID "-b7ad6b716920333-01",           /* parent id too short */
      "00-0AF7651916CD43DD8448EB211C80319C-" PID "-01", /* uppercase trace id */
      "00-" TID "-B7AD6B7169203331-01",          /* uppercase parent id */
      "00-" TID "-" PID "-0A",                   /* uppercase flags */
      "0A-" TID "-" PID "-01",                   /* uppercase version */
      "00-00000000000000000000000000000000-" PID "-01", /* all-zero trace id */
      "00-" TID "-0000000000000000-01",          /* all-zero parent id */
      "ff-" TID "-" PID "-01",                   /* version ff is invalid */
      "00_" TID "_" PID "_01",                   /* wrong separators */
      "00-" TID "-" PID "-0g",                   /* not hex */
      "0x-" TID "-" PID "-01",                   /* not hex version */
      " 00-" TID "-" PID "-01",                  /* leading space */
      "00-" TID "-" PID "-01 ",                  /* trailing space */
      "cc-" TID "-" PID "-01x",                  /* a later version: byte 56 must be '-' */
      "00-" TID "-" PID,                         /* no flags */
      "00-" TID "-" PID "-\x01\x02",             /* control bytes */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t tid[16] = {0}, pid[8] = {0}, flags = 0x55;
    if (trace_parse_traceparent(bad[i], strlen(bad[i]), tid, pid, &flags) != -1)
      fail_msg("accepted malformed traceparent #%zu: \"%s\"", i, bad[i]);
    assert_int_equal(flags, 0x55); /* nothing written on refusal */
    /* And a call carrying it starts a new trace without a parent. */
    trace_ctx t;
    assert_int_equal(trace_ctx_start(&t, bad[i], strlen(bad[i]), "k=v", 3), 0);
    assert_false(t.has_parent);
    assert_null(t.tracestate);
    assert_string_not_equal(t.trace_id_hex, TID);
  }
}

static void later_versions_are_read_as_version_00(void **state) {
  (void)state;
  static const char *const ok[] = {
      "01-" TID "-" PID "-01",
      "cc-" TID "-" PID "-01-what-the-future-will-be-like",
      "fe-" TID "-" PID "-00-",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint8_t tid[16], pid[8], flags = 0;
    if (trace_parse_traceparent(ok[i], strlen(ok[i]), tid, pid, &flags) != 0)
      fail_msg("refused a later version #%zu: \"%s\"", i, ok[i]);
    char hex[33];
    trace_hex(tid, 16, hex);
    assert_string_equal(hex, TID);
  }
}

static void a_valid_parent_is_kept_and_a_new_span_drawn(void **state) {
  (void)state;
  static const char v[] = "00-" TID "-" PID "-01";
  trace_ctx t;
  assert_int_equal(trace_ctx_start(&t, v, strlen(v), "congo=t61rcWkgMzE", 17), 0);
  assert_true(t.has_parent);
  assert_true(t.parent_sampled);
  assert_string_equal(t.trace_id_hex, TID);
  assert_string_equal(t.tracestate, "congo=t61rcWkgMzE");
  char pid[17];
  trace_hex(t.parent_id, 8, pid);
  assert_string_equal(pid, PID);
  assert_string_not_equal(t.span_id_hex, PID);
  assert_int_equal(strlen(t.span_id_hex), 16);
  assert_int_equal(strspn(t.span_id_hex, "0123456789abcdef"), 16);
}

static void new_traces_have_distinct_nonzero_ids(void **state) {
  (void)state;
  /* More than the per-thread pool holds, so refills are crossed. */
  enum { N = 600 };
  char (*seen)[33] = calloc(N, 33);
  assert_non_null(seen);
  for (int i = 0; i < N; i++) {
    trace_ctx t;
    assert_int_equal(trace_ctx_start(&t, NULL, 0, NULL, 0), 0);
    assert_false(t.has_parent);
    assert_int_equal(strlen(t.trace_id_hex), 32);
    assert_int_equal(strspn(t.trace_id_hex, "0123456789abcdef"), 32);
    assert_string_not_equal(t.trace_id_hex, "00000000000000000000000000000000");
    assert_string_not_equal(t.span_id_hex, "0000000000000000");
    memcpy(seen[i], t.trace_id_hex, 33);
    for (int k = 0; k < i; k++) assert_string_not_equal(seen[k], seen[i]);
  }
  free(seen);
}

static void tracestate_is_checked_loosely(void **state) {
  (void)state;
  assert_true(trace_tracestate_ok("a=b,c=d", 7));
  assert_false(trace_tracestate_ok("", 0));
  assert_false(trace_tracestate_ok("novalue", 7));
  assert_false(trace_tracestate_ok("a=b\nc=d", 7));
  char big[600];
  memset(big, 'a', sizeof big);
  big[1] = '=';
  assert_false(trace_tracestate_ok(big, sizeof big));
  assert_true(trace_tracestate_ok(big, 512));
}

static void samplers_follow_the_sdk(void **state) {
  (void)state;
  static const char *const names[] = {"always_on", "always_off", "traceidratio",
                                      "parentbased_always_on", "parentbased_always_off",
                                      "parentbased_traceidratio"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    trace_sampler s;
    assert_int_equal(trace_sampler_parse(names[i], &s), 0);
    assert_string_equal(trace_sampler_name(s), names[i]);
  }
  trace_sampler s;
  assert_int_equal(trace_sampler_parse("AlwaysOn", &s), -1);

  static const char sampled[] = "00-" TID "-" PID "-01";
  static const char unsampled[] = "00-" TID "-" PID "-00";
  trace_ctx root, child_on, child_off;
  trace_ctx_start(&root, NULL, 0, NULL, 0);
  trace_ctx_start(&child_on, sampled, strlen(sampled), NULL, 0);
  trace_ctx_start(&child_off, unsampled, strlen(unsampled), NULL, 0);
  assert_true(trace_should_sample(TRACE_SAMPLER_ALWAYS_ON, 1, &child_off));
  assert_false(trace_should_sample(TRACE_SAMPLER_ALWAYS_OFF, 1, &child_on));
  assert_true(trace_should_sample(TRACE_SAMPLER_PARENTBASED_ALWAYS_ON, 1, &root));
  assert_true(trace_should_sample(TRACE_SAMPLER_PARENTBASED_ALWAYS_ON, 1, &child_on));
  assert_false(trace_should_sample(TRACE_SAMPLER_PARENTBASED_ALWAYS_ON, 1, &child_off));
  assert_false(trace_should_sample(TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF, 1, &root));
  assert_true(trace_should_sample(TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF, 1, &child_on));
  assert_false(trace_should_sample(TRACE_SAMPLER_TRACEIDRATIO, 0.0, &root));
  assert_true(trace_should_sample(TRACE_SAMPLER_TRACEIDRATIO, 1.0, &root));
  /* A ratio keeps about that share of new traces, and decides the same
   * way for the same trace id every time. */
  int kept = 0;
  for (int i = 0; i < 4000; i++) {
    trace_ctx t;
    trace_ctx_start(&t, NULL, 0, NULL, 0);
    bool a = trace_should_sample(TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.25, &t);
    assert_int_equal(a, trace_should_sample(TRACE_SAMPLER_TRACEIDRATIO, 0.25, &t));
    kept += a;
  }
  assert_in_range(kept, 700, 1300); /* 1000 expected; 9 sigma either side */
  assert_true(trace_should_sample(TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.0, &child_on));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_version_00_gives_ids_and_flags),
      cmocka_unit_test(malformed_traceparents_are_refused),
      cmocka_unit_test(later_versions_are_read_as_version_00),
      cmocka_unit_test(a_valid_parent_is_kept_and_a_new_span_drawn),
      cmocka_unit_test(new_traces_have_distinct_nonzero_ids),
      cmocka_unit_test(tracestate_is_checked_loosely),
      cmocka_unit_test(samplers_follow_the_sdk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
