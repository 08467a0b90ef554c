/* Tests for auth/jwks.c (and src/core/b64url.c through it): the key sets product-server(8) allows
 * load; every rule broken refuses the whole set with a line that names the
 * key (by kid or index) and never holds k. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/b64url.h"
#include "auth/jwks.h"

/* 32 bytes "0123456789abcdef0123456789abcdef" as unpadded base64url. */
#define K32 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
/* 31 bytes. */
#define K31 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ"

static char g_err[512];

static jwks *parse_ok(const char *text) {
  jwks *s = NULL;
  g_err[0] = '\0';
  int rc = jwks_parse(text, strlen(text), &s, g_err, sizeof g_err);
  if (rc != 0) fail_msg("refused: %s", g_err);
  return s;
}

/* Refused, with want in the message and no k in it. */
static void refused(const char *text, const char *want) {
  jwks *s = (jwks *)1;
  g_err[0] = '\0';
  assert_int_not_equal(jwks_parse(text, strlen(text), &s, g_err, sizeof g_err), 0);
  assert_null(s);
  if (!strstr(g_err, want)) fail_msg("message \"%s\" lacks \"%s\"", g_err, want);
  assert_null(strstr(g_err, "MDEyMzQ1"));
  assert_null(strchr(g_err, '\n'));
}

static void test_a_valid_set_loads_in_file_order(void **state) {
  (void)state;
  jwks *s = parse_ok("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"old\",\"k\":\"" K32
                     "\",\"key_ops\":[\"verify\"]},"
                     "{\"kty\":\"oct\",\"kid\":\"new\",\"k\":\"" K32 "\",\"alg\":\"HS256\","
                     "\"key_ops\":[\"verify\",\"sign\"],\"use\":\"sig\"},"
                     "{\"kty\":\"oct\",\"kid\":\"ro\",\"k\":\"" K32 "\",\"key_ops\":[\"verify\"]}]}");
  assert_int_equal(jwks_count(s), 3);
  const jwks_key *k = jwks_key_at(s, 0);
  assert_string_equal(k->kid, "old");
  assert_false(k->can_sign);
  assert_int_equal(k->k_len, 32);
  assert_memory_equal(k->k, "0123456789abcdef0123456789abcdef", 32);
  assert_true(jwks_key_at(s, 1)->can_sign);
  assert_string_equal(jwks_signing_key(s)->kid, "new"); /* the last that may sign */
  assert_ptr_equal(jwks_find(s, "ro"), jwks_key_at(s, 2));
  assert_null(jwks_find(s, "r"));
  assert_null(jwks_key_at(s, 3));
  jwks_destroy(s);
}

static void test_key_ops_default_to_sign_and_verify(void **state) {
  (void)state;
  jwks *s = parse_ok("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "\"}]}");
  assert_true(jwks_key_at(s, 0)->can_sign);
  jwks_destroy(s);
  s = parse_ok("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32
               "\",\"key_ops\":[\"verify\"]}]}");
  assert_null(jwks_signing_key(s));
  jwks_destroy(s);
}

static void test_the_set_shape_is_checked(void **state) {
  (void)state;
  refused("", "not valid JSON");
  refused("{\"keys\":[}", "not valid JSON");
  /* Cut inside k: the message gives the position, never the text near it. */
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32, "not valid JSON (line 1");
  refused("{\"keys\":[{\"k\":\"" K32 "\n\"}]}", "not valid JSON");
  refused("[]", "not a JWK Set");
  refused("{\"key\":[]}", "not a JWK Set");
  refused("{\"keys\":{}}", "not a JWK Set");
  refused("{\"keys\":[]}", "no keys");
  refused("{\"keys\":[1]}", "key 0 is not a JSON object");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "\"}],"
          "\"keys\":[]}", "not valid JSON"); /* duplicate member */
}

static void test_kid_is_required_unique_and_non_empty(void **state) {
  (void)state;
  refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"" K32 "\"}]}", "key 0 has no kid");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"\",\"k\":\"" K32 "\"}]}", "key 0 has no kid");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":7,\"k\":\"" K32 "\"}]}", "key 0 has no kid");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "\"},"
          "{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "\"}]}",
          "key 1 (kid \"a\"): the kid is also used by key 0");
  char big[400] = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"" K32 "\",\"kid\":\"";
  size_t n = strlen(big);
  memset(big + n, 'x', 257);
  strcpy(big + n + 257, "\"}]}");
  refused(big, "longer than 256");
}

static void test_kty_and_alg_are_checked(void **state) {
  (void)state;
  refused("{\"keys\":[{\"kid\":\"a\",\"k\":\"" K32 "\"}]}", "key 0 (kid \"a\"): kty must be");
  refused("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"k\":\"" K32 "\"}]}", "kty must be \"oct\"");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"alg\":\"HS512\",\"k\":\"" K32 "\"}]}",
          "key 0 (kid \"a\"): alg must be \"HS256\"");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"alg\":\"none\",\"k\":\"" K32 "\"}]}",
          "alg must be");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"alg\":null,\"k\":\"" K32 "\"}]}",
          "alg must be");
}

static void test_key_ops_are_checked(void **state) {
  (void)state;
  const char *bad[] = {"[]", "[\"sign\"]", "[\"verify\",\"verify\"]",
                       "[\"verify\",\"encrypt\"]", "\"verify\"", "[\"sign\",\"verify\",\"sign\"]",
                       "[1]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[300];
    snprintf(text, sizeof text,
             "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "\",\"key_ops\":%s}]}",
             bad[i]);
    refused(text, "key 0 (kid \"a\"): key_ops must be");
  }
}

static void test_k_must_be_strict_base64url_of_32_bytes_or_more(void **state) {
  (void)state;
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\"}]}", "key 0 (kid \"a\") has no k");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K31 "\"}]}",
          "k is 31 bytes decoded; at least 32");
  /* Padding, the standard alphabet, whitespace, non-zero leftover bits. */
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "=\"}]}", "not unpadded base64url");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "+/+/\"}]}", "not unpadded");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\" " K32 "\"}]}", "not unpadded");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "xx\"}]}", "not unpadded");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":"
          "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWZ\"}]}", "not unpadded");
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":5}]}", "has no k");
}

/* A key of exactly JWKS_KEY_MAX_LEN bytes loads; one byte more (or two: the
 * cap once counted whole 4-character groups) is refused before decoding. */
static void test_k_longer_than_the_cap_is_refused(void **state) {
  (void)state;
  for (size_t n = JWKS_KEY_MAX_LEN; n <= JWKS_KEY_MAX_LEN + 2; n++) {
    unsigned char *raw = malloc(n);
    assert_non_null(raw);
    memset(raw, 0x5a, n);
    size_t b64_len;
    char *b64 = b64url_encode_alloc(raw, n, &b64_len);
    assert_non_null(b64);
    char *text = malloc(b64_len + 64);
    assert_non_null(text);
    snprintf(text, b64_len + 64, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"%s\"}]}",
             b64);
    if (n == JWKS_KEY_MAX_LEN) {
      jwks *s = parse_ok(text);
      assert_int_equal(jwks_key_at(s, 0)->k_len, n);
      jwks_destroy(s);
    } else {
      jwks *s = (jwks *)1;
      assert_int_not_equal(jwks_parse(text, strlen(text), &s, g_err, sizeof g_err), 0);
      assert_null(s);
      assert_non_null(strstr(g_err, "k is longer than 4096 bytes decoded"));
    }
    free(text);
    free(b64);
    free(raw);
  }
}

/* jansson's own buffers (its lexer's, the values of a refused file) held k
 * and were freed unwiped: after a parse, every block jansson frees goes
 * through a wiping free, not free(3). */
static void test_jansson_frees_through_a_wiping_free(void **state) {
  (void)state;
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "\"}],}", "not valid JSON");
  json_malloc_t m = NULL;
  json_free_t f = NULL;
  json_get_alloc_funcs(&m, &f);
  assert_ptr_equal(m, malloc);
  assert_non_null(f);
  assert_ptr_not_equal(f, free);
  jwks_destroy(parse_ok("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K32 "\"}]}"));
}

static void test_a_key_with_a_hostile_kid_is_named_safely(void **state) {
  (void)state;
  refused("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\\nb\\\"c\",\"k\":\"x\"}]}", "kid \"a?b?c\"");
}

static void test_b64url_round_trips_and_refuses_deviations(void **state) {
  (void)state;
  unsigned char all[256];
  for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
  for (size_t len = 0; len <= sizeof all; len += 1) {
    size_t elen;
    char *e = b64url_encode_alloc(all, len, &elen);
    assert_non_null(e);
    assert_null(strchr(e, '='));
    if (len == 0) {
      b64url_free(e, elen);
      continue;
    }
    unsigned char *d;
    size_t dlen;
    bool oom;
    assert_true(b64url_decode_alloc(e, elen, &d, &dlen, &oom));
    assert_int_equal(dlen, len);
    assert_memory_equal(d, all, len);
    b64url_free(d, dlen);
    b64url_free(e, elen);
  }
  unsigned char *d;
  size_t dlen;
  bool oom;
  assert_false(b64url_decode_alloc("QQ==", 4, &d, &dlen, &oom)); /* padded "A" */
  assert_true(b64url_decode_alloc("QQ", 2, &d, &dlen, &oom));
  b64url_free(d, dlen);
  assert_false(b64url_decode_alloc("QR", 2, &d, &dlen, &oom)); /* leftover bits */
  assert_false(b64url_decode_alloc("Q", 1, &d, &dlen, &oom));
  assert_false(b64url_decode_alloc("+/+/", 4, &d, &dlen, &oom));
  assert_true(b64url_decode_alloc("-_-_", 4, &d, &dlen, &oom));
  b64url_free(d, dlen);
  assert_false(b64url_decode_alloc("QQ\n", 3, &d, &dlen, &oom));
  assert_false(b64url_decode_alloc("", 0, &d, &dlen, &oom));
}

static void test_load_file_names_the_file(void **state) {
  (void)state;
  char path[] = "/tmp/test_jwks_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" K31 "\"}]}";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  jwks *s;
  assert_int_not_equal(jwks_load_file(path, &s, g_err, sizeof g_err), 0);
  assert_non_null(strstr(g_err, path));
  assert_non_null(strstr(g_err, "key 0 (kid \"a\")"));
  unlink(path);
  assert_int_not_equal(jwks_load_file(path, &s, g_err, sizeof g_err), 0);
  assert_non_null(strstr(g_err, "cannot read key set"));
  assert_int_not_equal(jwks_load_file("/tmp", &s, g_err, sizeof g_err), 0);
  assert_non_null(strstr(g_err, "it is a directory"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_valid_set_loads_in_file_order),
      cmocka_unit_test(test_key_ops_default_to_sign_and_verify),
      cmocka_unit_test(test_the_set_shape_is_checked),
      cmocka_unit_test(test_kid_is_required_unique_and_non_empty),
      cmocka_unit_test(test_kty_and_alg_are_checked),
      cmocka_unit_test(test_key_ops_are_checked),
      cmocka_unit_test(test_k_must_be_strict_base64url_of_32_bytes_or_more),
      cmocka_unit_test(test_k_longer_than_the_cap_is_refused),
      cmocka_unit_test(test_jansson_frees_through_a_wiping_free),
      cmocka_unit_test(test_a_key_with_a_hostile_kid_is_named_safely),
      cmocka_unit_test(test_b64url_round_trips_and_refuses_deviations),
      cmocka_unit_test(test_load_file_names_the_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
