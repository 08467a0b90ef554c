/* Tests for src/transport/grpc_tuning.c: the GRPC_EXPERIMENTS value that
 * turns the core's tcp_read_chunks experiment off is set for the pinned core
 * only, appended to what the operator set, never against the operator's own
 * choice for that experiment, and never truncated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "transport/grpc_tuning.h"

static void test_unset_gives_the_experiment_off(void **state) {
  (void)state;
  char buf[64];
  const char *v = grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, NULL, buf, sizeof buf);
  assert_non_null(v);
  assert_string_equal(v, "-tcp_read_chunks");
  v = grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, "", buf, sizeof buf);
  assert_non_null(v);
  assert_string_equal(v, "-tcp_read_chunks");
}

static void test_operator_list_is_kept_and_extended(void **state) {
  (void)state;
  char buf[64];
  const char *v =
      grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, "tcp_rcv_lowat", buf, sizeof buf);
  assert_non_null(v);
  assert_string_equal(v, "tcp_rcv_lowat,-tcp_read_chunks");
}

static void test_operator_choice_for_the_experiment_stands(void **state) {
  (void)state;
  char buf[64];
  assert_null(grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, "tcp_read_chunks", buf, sizeof buf));
  assert_null(grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, "a,-tcp_read_chunks", buf, sizeof buf));
}

static void test_other_core_is_left_alone(void **state) {
  (void)state;
  char buf[64];
  assert_null(grpc_tuning_experiments("30.0.0", NULL, buf, sizeof buf));
  assert_null(grpc_tuning_experiments(NULL, NULL, buf, sizeof buf));
}

static void test_too_small_a_buffer_is_refused_not_truncated(void **state) {
  (void)state;
  char buf[sizeof "-tcp_read_chunks"];
  assert_non_null(grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, NULL, buf, sizeof buf));
  assert_null(grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, NULL, buf, sizeof buf - 1));
  assert_null(grpc_tuning_experiments(PRODUCT_GRPC_CORE_VERSION, "x", buf, sizeof buf));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unset_gives_the_experiment_off),
      cmocka_unit_test(test_operator_list_is_kept_and_extended),
      cmocka_unit_test(test_operator_choice_for_the_experiment_stands),
      cmocka_unit_test(test_other_core_is_left_alone),
      cmocka_unit_test(test_too_small_a_buffer_is_refused_not_truncated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
