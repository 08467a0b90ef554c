/* Tests for auth/token_cache.c: hits only for the exact bytes of a verified
 * token, and only inside its validity window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth/token_cache.h"

static jwt_identity identity(const char *sub, const char *role, int64_t exp, int64_t nbf) {
  jwt_identity id;
  memset(&id, 0, sizeof id);
  snprintf(id.sub, sizeof id.sub, "%s", sub);
  if (role) {
    snprintf(id.role, sizeof id.role, "%s", role);
    id.has_role = true;
  }
  id.exp = exp;
  id.nbf = nbf;
  return id;
}

static const char tok[] = "aaaa.bbbb.cccccccccccccccccccccccccccccccccccccccccc";

static void test_hit_returns_the_cached_identity(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  jwt_identity in = identity("alice", "admin", 2000, 1000), out;
  token_cache_put(c, tok, strlen(tok), 0, &in);
  assert_true(token_cache_get(c, tok, strlen(tok), 0, 1500, 30, &out));
  assert_string_equal(out.sub, "alice");
  assert_string_equal(out.role, "admin");
  assert_true(out.has_role);
  token_cache_destroy(c);
}

static void test_another_generation_misses(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  jwt_identity in = identity("alice", NULL, 2000, 1000), out;
  token_cache_put(c, tok, strlen(tok), 7, &in);
  assert_true(token_cache_get(c, tok, strlen(tok), 7, 1500, 30, &out));
  /* A reload (a removed key, a new revocation) makes a new generation. */
  assert_false(token_cache_get(c, tok, strlen(tok), 8, 1500, 30, &out));
  assert_false(token_cache_get(c, tok, strlen(tok), 0, 1500, 30, &out));
  token_cache_destroy(c);
}

static void test_other_bytes_miss(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  jwt_identity in = identity("alice", NULL, 2000, INT64_MIN), out;
  token_cache_put(c, tok, strlen(tok), 0, &in);
  char other[sizeof tok];
  memcpy(other, tok, sizeof tok);
  other[0] = 'b'; /* same signature tail, different payload: must miss */
  assert_false(token_cache_get(c, other, strlen(other), 0, 1500, 30, &out));
  assert_false(token_cache_get(c, tok, strlen(tok) - 1, 0, 1500, 30, &out));
  token_cache_destroy(c);
}

static void test_expired_entry_misses(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  jwt_identity in = identity("alice", NULL, 2000, INT64_MIN), out;
  token_cache_put(c, tok, strlen(tok), 0, &in);
  assert_true(token_cache_get(c, tok, strlen(tok), 0, 2029, 30, &out));
  assert_false(token_cache_get(c, tok, strlen(tok), 0, 2030, 30, &out));
  token_cache_destroy(c);
}

static void test_not_yet_valid_entry_misses(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  jwt_identity in = identity("alice", NULL, 5000, 1000), out;
  token_cache_put(c, tok, strlen(tok), 0, &in);
  assert_false(token_cache_get(c, tok, strlen(tok), 0, 969, 30, &out));
  assert_true(token_cache_get(c, tok, strlen(tok), 0, 970, 30, &out));
  token_cache_destroy(c);
}

static void test_oversized_token_is_not_cached(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  char big[600];
  memset(big, 'x', sizeof big);
  jwt_identity in = identity("alice", NULL, 5000, INT64_MIN), out;
  token_cache_put(c, big, sizeof big, 0, &in);
  assert_false(token_cache_get(c, big, sizeof big, 0, 1000, 30, &out));
  token_cache_destroy(c);
}

static void test_clear_forgets_everything(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  jwt_identity in = identity("alice", NULL, 5000, INT64_MIN), out;
  token_cache_put(c, tok, strlen(tok), 0, &in);
  token_cache_clear(c);
  assert_false(token_cache_get(c, tok, strlen(tok), 0, 1000, 30, &out));
  token_cache_destroy(c);
}

static void test_extreme_times_do_not_overflow(void **state) {
  (void)state;
  token_cache *c = token_cache_create();
  jwt_identity in = identity("alice", NULL, INT64_MAX, INT64_MIN + 1), out;
  token_cache_put(c, tok, strlen(tok), 0, &in);
  assert_true(token_cache_get(c, tok, strlen(tok), 0, 1000, 30, &out));
  token_cache_destroy(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hit_returns_the_cached_identity),
      cmocka_unit_test(test_other_bytes_miss),
      cmocka_unit_test(test_another_generation_misses),
      cmocka_unit_test(test_expired_entry_misses),
      cmocka_unit_test(test_not_yet_valid_entry_misses),
      cmocka_unit_test(test_oversized_token_is_not_cached),
      cmocka_unit_test(test_clear_forgets_everything),
      cmocka_unit_test(test_extreme_times_do_not_overflow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
