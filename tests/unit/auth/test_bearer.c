/* auth/bearer.c: the `authorization` value "Bearer <token>". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/bearer.h"

static bearer_result parse(const char *value, const char **tok, size_t *tok_len) {
  return bearer_parse(1, value, strlen(value), tok, tok_len);
}

static void assert_token(const char *value, const char *want) {
  const char *tok = NULL;
  size_t len = 0;
  assert_int_equal(parse(value, &tok, &len), BEARER_OK);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(tok, want, len);
  /* the token points into the value, it is not a copy */
  assert_true(tok >= value && tok + len <= value + strlen(value));
}

static void test_bearer_scheme_is_case_insensitive(void **state) {
  (void)state;
  assert_token("Bearer abc.def.ghi", "abc.def.ghi");
  assert_token("bearer abc.def.ghi", "abc.def.ghi");
  assert_token("BEARER abc.def.ghi", "abc.def.ghi");
  assert_token("bEaReR abc.def.ghi", "abc.def.ghi");
}

static void test_several_spaces_or_tabs_separate(void **state) {
  (void)state;
  assert_token("Bearer   tok", "tok");
  assert_token("Bearer\ttok", "tok");
  assert_token("Bearer \t tok", "tok");
}

static void test_no_entry_is_missing(void **state) {
  (void)state;
  const char *tok = (const char *)1;
  assert_int_equal(bearer_parse(0, NULL, 0, &tok, NULL), BEARER_MISSING);
  assert_null(tok);
  assert_int_equal(bearer_parse(0, "Bearer x", 8, NULL, NULL), BEARER_MISSING);
}

static void test_two_entries_are_duplicate(void **state) {
  (void)state;
  assert_int_equal(bearer_parse(2, "Bearer x", 8, NULL, NULL), BEARER_DUPLICATE);
  assert_int_equal(bearer_parse(17, "Bearer x", 8, NULL, NULL), BEARER_DUPLICATE);
}

static void test_other_schemes_are_bad_scheme(void **state) {
  (void)state;
  assert_int_equal(parse("Basic dXNlcjpwYXNz", NULL, NULL), BEARER_BAD_SCHEME);
  assert_int_equal(parse("Digest x", NULL, NULL), BEARER_BAD_SCHEME);
  assert_int_equal(parse("Bearerx tok", NULL, NULL), BEARER_BAD_SCHEME);
  assert_int_equal(parse("Beare tok", NULL, NULL), BEARER_BAD_SCHEME);
  assert_int_equal(parse("eyJhbGciOiJIUzI1NiJ9.e30.sig", NULL, NULL), BEARER_BAD_SCHEME);
}

static void test_missing_or_padded_token_is_malformed(void **state) {
  (void)state;
  const char *bad[] = {
      "",              /* empty value */
      "Bearer",        /* no separator, no token */
      "Bearer ",       /* no token */
      "Bearer \t ",    /* only blanks */
      " Bearer tok",   /* leading blank */
      "Bearer tok ",   /* trailing blank */
      "Bearer tok\t",  /* trailing tab */
      "Bearer tok\n",  /* trailing newline */
      "Bearer a b",    /* blank inside the token */
      "Bearer:tok",    /* another separator */
      "Bearer,tok",    /* another separator */
      "Bearer\ntok",   /* newline as separator */
      "Bearer\xc2\xa0tok", /* no-break space */
      "Bearer tok\x7f",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *tok = (const char *)1;
    size_t len = 99;
    assert_int_equal(parse(bad[i], &tok, &len), BEARER_MALFORMED);
    assert_null(tok);
    assert_int_equal(len, 0);
  }
}

static void test_nul_inside_value_is_malformed(void **state) {
  (void)state;
  const char v[] = "Bearer ab\0cd";
  assert_int_equal(bearer_parse(1, v, sizeof(v) - 1, NULL, NULL), BEARER_MALFORMED);
  assert_int_equal(bearer_parse(1, NULL, 5, NULL, NULL), BEARER_MALFORMED);
}

static void test_length_bounds_the_value(void **state) {
  (void)state;
  /* Only len bytes are read: the value need not be NUL-terminated. */
  const char v[] = "Bearer tok GARBAGE";
  const char *tok;
  size_t len;
  assert_int_equal(bearer_parse(1, v, 10, &tok, &len), BEARER_OK);
  assert_int_equal(len, 3);
  assert_memory_equal(tok, "tok", 3);
}

/* Every byte value at every position of tokens of several lengths (the
 * token is checked 8 bytes at a time, then byte by byte): 0x21..0x7e are
 * token bytes, every other value makes the value malformed. */
static void test_every_byte_at_every_position(void **state) {
  (void)state;
  char v[7 + 40];
  memcpy(v, "Bearer ", 7);
  for (size_t n = 1; n <= 40; n++) {
    for (size_t pos = 0; pos < n; pos++) {
      for (int b = 0; b < 256; b++) {
        memset(v + 7, 'a', n);
        v[7 + pos] = (char)b;
        const char *tok = NULL;
        size_t len = 0;
        bearer_result r = bearer_parse(1, v, 7 + n, &tok, &len);
        if (b >= 0x21 && b <= 0x7e) {
          assert_int_equal(r, BEARER_OK);
          assert_int_equal(len, n);
          assert_ptr_equal(tok, v + 7);
        } else if (!(pos == 0 && (b == ' ' || b == '\t'))) {
          assert_int_equal(r, BEARER_MALFORMED); /* a blank first is more separator */
        }
      }
    }
  }
}

static void test_reasons_are_snake_case_names(void **state) {
  (void)state;
  assert_string_equal(bearer_result_reason(BEARER_MISSING), "no_token");
  assert_string_equal(bearer_result_reason(BEARER_DUPLICATE), "duplicate_authorization");
  assert_string_equal(bearer_result_reason(BEARER_BAD_SCHEME), "bad_scheme");
  assert_string_equal(bearer_result_reason(BEARER_MALFORMED), "malformed");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bearer_scheme_is_case_insensitive),
      cmocka_unit_test(test_several_spaces_or_tabs_separate),
      cmocka_unit_test(test_no_entry_is_missing),
      cmocka_unit_test(test_two_entries_are_duplicate),
      cmocka_unit_test(test_other_schemes_are_bad_scheme),
      cmocka_unit_test(test_missing_or_padded_token_is_malformed),
      cmocka_unit_test(test_nul_inside_value_is_malformed),
      cmocka_unit_test(test_length_bounds_the_value),
      cmocka_unit_test(test_every_byte_at_every_position),
      cmocka_unit_test(test_reasons_are_snake_case_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
