/* Tests for core/call.c's answers: call_fail_msg takes the message as it
 * is (no format: a '%' stays), truncates it to the message buffer, and
 * answers like call_fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/call.h"

static void test_fail_msg_is_taken_as_it_is(void **state) {
  (void)state;
  call_ctx c;
  memset(&c, 0, sizeof c);
  c.response = (ProtobufCMessage *)&c; /* any non-NULL: must be dropped */
  call_fail_msg(&c, RPC_RESOURCE_EXHAUSTED, "rate limit exceeded for read; retry in 5 ms %d%%");
  assert_string_equal(c.message, "rate limit exceeded for read; retry in 5 ms %d%%");
  assert_int_equal(c.code, RPC_RESOURCE_EXHAUSTED);
  assert_true(c.status_set);
  assert_null(c.response);
}

static void test_fail_msg_truncates_to_the_buffer(void **state) {
  (void)state;
  call_ctx c;
  memset(&c, 0, sizeof c);
  char longer[sizeof c.message + 10];
  memset(longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  call_fail_msg(&c, RPC_INTERNAL, longer);
  assert_int_equal(strlen(c.message), sizeof c.message - 1);
  assert_int_equal(c.code, RPC_INTERNAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fail_msg_is_taken_as_it_is),
      cmocka_unit_test(test_fail_msg_truncates_to_the_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
