/* Tests for auth/verified_tokens.c: a held token names its sub while it is
 * valid, only the exact bytes hit, a removed or replaced token counts as new,
 * and the set stays bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth/verified_tokens.h"

static const char tok[] = "aaaa.bbbb.cccccccccccccccccccccccccccccccccccccccccc";

static void test_a_held_token_names_its_sub_until_it_expires(void **state) {
  (void)state;
  verified_tokens *v = verified_tokens_create(16);
  assert_non_null(v);
  char sub[64];
  assert_false(verified_tokens_get(v, tok, strlen(tok), 100, sub, sizeof sub));
  verified_tokens_put(v, tok, strlen(tok), "alice", 200);
  assert_true(verified_tokens_get(v, tok, strlen(tok), 100, sub, sizeof sub));
  assert_string_equal(sub, "alice");
  assert_true(verified_tokens_get(v, tok, strlen(tok), 199, sub, sizeof sub));
  assert_false(verified_tokens_get(v, tok, strlen(tok), 200, sub, sizeof sub)); /* expired */
  verified_tokens_destroy(v);
}

static void test_only_the_exact_bytes_hit(void **state) {
  (void)state;
  verified_tokens *v = verified_tokens_create(16);
  char sub[64];
  verified_tokens_put(v, tok, strlen(tok), "alice", 200);
  char other[sizeof tok];
  memcpy(other, tok, sizeof tok);
  other[0] = 'b'; /* same signature tail (same slot), another payload */
  assert_false(verified_tokens_get(v, other, strlen(other), 100, sub, sizeof sub));
  assert_false(verified_tokens_get(v, tok, strlen(tok) - 1, 100, sub, sizeof sub));
  assert_false(verified_tokens_get(v, "", 0, 100, sub, sizeof sub));
  /* A removed token is new again; removing another token changes nothing. */
  verified_tokens_remove(v, other, strlen(other));
  assert_true(verified_tokens_get(v, tok, strlen(tok), 100, sub, sizeof sub));
  verified_tokens_remove(v, tok, strlen(tok));
  assert_false(verified_tokens_get(v, tok, strlen(tok), 100, sub, sizeof sub));
  verified_tokens_destroy(v);
}

static void test_the_set_is_bounded(void **state) {
  (void)state;
  verified_tokens *v = verified_tokens_create(8);
  char t[64], sub[64];
  for (int i = 0; i < 10000; i++) {
    snprintf(t, sizeof t, "hdr.payload.signature-%08d", i);
    snprintf(sub, sizeof sub, "user-%d", i);
    verified_tokens_put(v, t, strlen(t), sub, 1000);
  }
  int held = 0;
  for (int i = 0; i < 10000; i++) {
    snprintf(t, sizeof t, "hdr.payload.signature-%08d", i);
    if (verified_tokens_get(v, t, strlen(t), 0, sub, sizeof sub)) {
      held++;
      char want[64];
      snprintf(want, sizeof want, "user-%d", i);
      assert_string_equal(sub, want);
    }
  }
  assert_true(held >= 1 && held <= 8);
  /* Tokens too long to hold are not held (and do not crash). */
  static char big[VERIFIED_TOKEN_MAX + 2];
  memset(big, 'x', sizeof big - 1);
  verified_tokens_put(v, big, strlen(big), "big", 1000);
  assert_false(verified_tokens_get(v, big, strlen(big), 0, sub, sizeof sub));
  verified_tokens_destroy(v); /* ASan: every copy freed */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_held_token_names_its_sub_until_it_expires),
      cmocka_unit_test(test_only_the_exact_bytes_hit),
      cmocka_unit_test(test_the_set_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
