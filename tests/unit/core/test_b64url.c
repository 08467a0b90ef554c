/* Tests for core/b64url.c, the one base64url: RFC 4648 vectors, the one
 * accepted text per byte string, buffer bounds, and agreement with
 * OpenSSL's standard base64 on every length. */
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64url.h"

static void rfc4648_vectors_without_padding(void **state) {
  (void)state;
  static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    char buf[16];
    size_t n = 99;
    assert_int_equal(b64url_encode((const unsigned char *)in[i], strlen(in[i]), buf, sizeof buf, &n), 0);
    assert_string_equal(buf, out[i]);
    assert_int_equal(n, strlen(out[i]));
    unsigned char dec[16];
    size_t m = 99;
    assert_true(b64url_decode(out[i], strlen(out[i]), dec, sizeof dec, &m));
    assert_int_equal(m, strlen(in[i]));
    assert_memory_equal(dec, in[i], m);
  }
}

static void url_alphabet_replaces_plus_and_slash(void **state) {
  (void)state;
  const unsigned char in[] = {0xfb, 0xff, 0xbf};
  char buf[8];
  assert_int_equal(b64url_encode(in, sizeof in, buf, sizeof buf, NULL), 0);
  assert_string_equal(buf, "-_-_");
  unsigned char dec[4];
  size_t n;
  assert_true(b64url_decode("-_-_", 4, dec, sizeof dec, &n));
  assert_int_equal(n, 3);
  assert_memory_equal(dec, in, 3);
  assert_false(b64url_decode("+/+/", 4, dec, sizeof dec, &n)); /* standard alphabet */
}

static void only_the_canonical_text_decodes(void **state) {
  (void)state;
  unsigned char dec[8];
  size_t n;
  assert_true(b64url_decode("Zg", 2, dec, sizeof dec, &n));
  assert_false(b64url_decode("Zh", 2, dec, sizeof dec, &n));   /* leftover bits */
  assert_false(b64url_decode("Zm9", 3, dec, sizeof dec, &n));  /* leftover bits */
  assert_false(b64url_decode("Zg==", 4, dec, sizeof dec, &n)); /* padding */
  assert_false(b64url_decode("Zm9vY", 5, dec, sizeof dec, &n)); /* 1 mod 4 */
  assert_false(b64url_decode("Zm 9v", 5, dec, sizeof dec, &n)); /* white space */
  assert_false(b64url_decode("Zm9\0", 4, dec, sizeof dec, &n)); /* NUL */
  assert_true(b64url_is_canonical("Zm8", 3));
  assert_false(b64url_is_canonical("Zm9", 3));
  assert_false(b64url_is_canonical("Zm=8", 4));
}

static void buffers_are_never_overrun(void **state) {
  (void)state;
  char out[5] = "XXXX";
  const unsigned char in[] = "foob"; /* 6 characters, 7 with the NUL */
  assert_int_equal(b64url_encode(in, 4, out, sizeof out, NULL), -1);
  assert_string_equal(out, "XXXX");
  unsigned char dec[2] = {0, 0};
  size_t n;
  assert_false(b64url_decode("Zm9v", 4, dec, sizeof dec, &n)); /* 3 bytes do not fit */
}

static void every_length_round_trips_and_agrees_with_openssl(void **state) {
  (void)state;
  unsigned char in[200], dec[200];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (unsigned char)(i * 37 + 11);
  for (size_t len = 0; len <= sizeof in; len++) {
    char url[300];
    unsigned char std[300];
    size_t n = 0, m = 0;
    assert_int_equal(b64url_encode(in, len, url, sizeof url, &n), 0);
    assert_int_equal(n, b64url_encoded_len(len));
    int s = EVP_EncodeBlock(std, in, (int)len);
    for (size_t k = 0; k < n; k++) {
      char want = std[k] == '+' ? '-' : std[k] == '/' ? '_' : (char)std[k];
      assert_int_equal(url[k], want);
    }
    for (size_t k = n; k < (size_t)s; k++) assert_int_equal(std[k], '=');
    assert_true(b64url_decode(url, n, dec, sizeof dec, &m));
    assert_int_equal(m, len);
    assert_memory_equal(dec, in, len);
  }
}

static void allocating_forms_agree(void **state) {
  (void)state;
  size_t n = 0;
  char *t = b64url_encode_alloc((const unsigned char *)"foobar", 6, &n);
  assert_non_null(t);
  assert_string_equal(t, "Zm9vYmFy");
  unsigned char *d = NULL;
  size_t dn = 0;
  bool oom = true;
  assert_true(b64url_decode_alloc(t, n, &d, &dn, &oom));
  assert_false(oom);
  assert_int_equal(dn, 6);
  assert_memory_equal(d, "foobar", 6);
  b64url_free(d, dn);
  b64url_free(t, n);
  assert_false(b64url_decode_alloc("", 0, &d, &dn, &oom)); /* nothing is no value */
  assert_false(oom);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc4648_vectors_without_padding),
      cmocka_unit_test(url_alphabet_replaces_plus_and_slash),
      cmocka_unit_test(only_the_canonical_text_decodes),
      cmocka_unit_test(buffers_are_never_overrun),
      cmocka_unit_test(every_length_round_trips_and_agrees_with_openssl),
      cmocka_unit_test(allocating_forms_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
