/* Page tokens (auth/page_token.c): round trip, and every way a token
 * that the server did not issue for this filter must be refused; the
 * single-secret format is pinned byte for byte, and key-set tokens verify
 * wherever their key is still in the set and nowhere else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "auth/page_token.h"

static const char *const ALPHABET =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

typedef struct fixture {
  page_key *key;
  page_key *other_key;
  page_cursor cur;
  char token[PAGE_TOKEN_MAX];
} fixture;

static const char FILTER[] = "price > 10 AND categories : \"tools\"";

static int setup(void **state) {
  static fixture fx;
  unsigned char secret[48], other[48];
  if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes(other, sizeof(other)) != 1) return -1;
  fx.key = page_key_create(secret, sizeof(secret));
  fx.other_key = page_key_create(other, sizeof(other));
  if (!fx.key || !fx.other_key) return -1;
  fx.cur.created_us = 1700000000123456;
  snprintf(fx.cur.id, sizeof(fx.cur.id), "3f2a9c1e-7b4d-4e8a-9c0f-1a2b3c4d5e6f");
  if (page_token_encode(fx.key, &fx.cur, FILTER, strlen(FILTER), fx.token, sizeof(fx.token)))
    return -1;
  *state = &fx;
  return 0;
}

static int teardown(void **state) {
  fixture *fx = *state;
  page_key_destroy(fx->key);
  page_key_destroy(fx->other_key);
  return 0;
}

static int decode(const page_key *k, const char *token, size_t len, const char *filter,
                  page_cursor *out) {
  return page_token_decode(k, token, len, filter, strlen(filter), out);
}

static void round_trip_gives_back_the_cursor(void **state) {
  fixture *fx = *state;
  page_cursor got;
  assert_int_equal(decode(fx->key, fx->token, strlen(fx->token), FILTER, &got), 0);
  assert_int_equal(got.created_us, fx->cur.created_us);
  assert_string_equal(got.id, fx->cur.id);
}

static void round_trip_of_extreme_cursors_and_short_ids(void **state) {
  fixture *fx = *state;
  const int64_t times[] = {INT64_MIN, -1, 0, INT64_MAX};
  const char *ids[] = {"x", "00000000-0000-4000-8000-000000000001", "id with spaces"};
  for (size_t t = 0; t < 4; t++)
    for (size_t i = 0; i < 3; i++) {
      page_cursor cur = {.created_us = times[t]}, got;
      snprintf(cur.id, sizeof(cur.id), "%s", ids[i]);
      char token[PAGE_TOKEN_MAX];
      assert_int_equal(page_token_encode(fx->key, &cur, "", 0, token, sizeof(token)), 0);
      assert_int_equal(decode(fx->key, token, strlen(token), "", &got), 0);
      assert_int_equal(got.created_us, times[t]);
      assert_string_equal(got.id, ids[i]);
    }
}

static void token_is_unpadded_base64url_within_the_size_limit(void **state) {
  fixture *fx = *state;
  size_t n = strlen(fx->token);
  assert_true(n > 0 && n <= PAGE_TOKEN_MAX - 1);
  assert_int_equal(strspn(fx->token, ALPHABET), n);
  /* The same cursor and filter always make the same token. */
  char again[PAGE_TOKEN_MAX];
  assert_int_equal(
      page_token_encode(fx->key, &fx->cur, FILTER, strlen(FILTER), again, sizeof(again)), 0);
  assert_string_equal(again, fx->token);
  /* A buffer one byte short is refused rather than overrun. */
  assert_int_not_equal(page_token_encode(fx->key, &fx->cur, FILTER, strlen(FILTER), again, n), 0);
}

static void changing_any_character_is_refused(void **state) {
  fixture *fx = *state;
  size_t n = strlen(fx->token);
  char t[PAGE_TOKEN_MAX];
  page_cursor got;
  for (size_t i = 0; i < n; i++) {
    /* Every other character of the alphabet at this position. */
    for (const char *c = ALPHABET; *c; c++) {
      if (*c == fx->token[i]) continue;
      memcpy(t, fx->token, n + 1);
      t[i] = *c;
      assert_int_not_equal(decode(fx->key, t, n, FILTER, &got), 0);
    }
  }
}

static void truncated_or_extended_tokens_are_refused(void **state) {
  fixture *fx = *state;
  size_t n = strlen(fx->token);
  page_cursor got;
  for (size_t len = 0; len < n; len++)
    assert_int_not_equal(decode(fx->key, fx->token, len, FILTER, &got), 0);
  char t[PAGE_TOKEN_MAX + 8];
  memcpy(t, fx->token, n);
  memcpy(t + n, "A", 2);
  assert_int_not_equal(decode(fx->key, t, n + 1, FILTER, &got), 0);
  memcpy(t + n, "==", 3);
  assert_int_not_equal(decode(fx->key, t, n + 2, FILTER, &got), 0);
  memcpy(t + n, "=", 2);
  assert_int_not_equal(decode(fx->key, t, n + 1, FILTER, &got), 0);
}

static void token_from_another_key_is_refused(void **state) {
  fixture *fx = *state;
  page_cursor got;
  assert_int_not_equal(decode(fx->other_key, fx->token, strlen(fx->token), FILTER, &got), 0);
  char forged[PAGE_TOKEN_MAX];
  assert_int_equal(page_token_encode(fx->other_key, &fx->cur, FILTER, strlen(FILTER), forged,
                                     sizeof(forged)), 0);
  assert_int_not_equal(decode(fx->key, forged, strlen(forged), FILTER, &got), 0);
}

static void same_secret_derives_the_same_key(void **state) {
  fixture *fx = *state;
  const unsigned char secret[] = "0123456789abcdef0123456789abcdef";
  page_key *a = page_key_create(secret, sizeof(secret) - 1);
  page_key *b = page_key_create(secret, sizeof(secret) - 1);
  assert_non_null(a);
  assert_non_null(b);
  char token[PAGE_TOKEN_MAX];
  page_cursor got;
  assert_int_equal(page_token_encode(a, &fx->cur, "", 0, token, sizeof(token)), 0);
  assert_int_equal(decode(b, token, strlen(token), "", &got), 0); /* a restart, a replica */
  page_key_destroy(a);
  page_key_destroy(b);
}

static void token_for_another_filter_is_refused(void **state) {
  fixture *fx = *state;
  page_cursor got;
  const char *others[] = {"", "price > 10", "price > 10 AND categories : \"tools\" ",
                          "price > 11 AND categories : \"tools\""};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    assert_int_not_equal(decode(fx->key, fx->token, strlen(fx->token), others[i], &got), 0);
  /* And the other way round: issued for no filter, used with one. */
  char token[PAGE_TOKEN_MAX];
  assert_int_equal(page_token_encode(fx->key, &fx->cur, "", 0, token, sizeof(token)), 0);
  assert_int_equal(decode(fx->key, token, strlen(token), "", &got), 0);
  assert_int_not_equal(decode(fx->key, token, strlen(token), FILTER, &got), 0);
}

static void garbage_and_standard_base64_are_refused(void **state) {
  fixture *fx = *state;
  page_cursor got;
  size_t n = strlen(fx->token);
  char t[PAGE_TOKEN_MAX];
  const char *junk[] = {"", "x", "not a token", "AAAA", "====",
                        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"};
  for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
    assert_int_not_equal(decode(fx->key, junk[i], strlen(junk[i]), FILTER, &got), 0);
  /* Right length, but characters outside base64url: '+', '/', '=', NUL, space. */
  const char bad[] = {'+', '/', '=', '\0', ' ', '.', '\n'};
  for (size_t b = 0; b < sizeof(bad); b++) {
    memcpy(t, fx->token, n + 1);
    t[n / 2] = bad[b];
    assert_int_not_equal(decode(fx->key, t, n, FILTER, &got), 0);
  }
  /* All-'A' of the right length decodes as base64 but carries no valid MAC. */
  memset(t, 'A', n);
  t[n] = '\0';
  assert_int_not_equal(decode(fx->key, t, n, FILTER, &got), 0);
}

static void null_arguments_are_refused(void **state) {
  fixture *fx = *state;
  page_cursor got;
  char out[PAGE_TOKEN_MAX];
  assert_int_not_equal(page_token_decode(NULL, fx->token, strlen(fx->token), "", 0, &got), 0);
  assert_int_not_equal(page_token_decode(fx->key, NULL, 0, "", 0, &got), 0);
  assert_int_not_equal(page_token_encode(NULL, &fx->cur, "", 0, out, sizeof(out)), 0);
  page_cursor empty_id = {.created_us = 1};
  assert_int_not_equal(page_token_encode(fx->key, &empty_id, "", 0, out, sizeof(out)), 0);
  assert_null(page_key_create(NULL, 5));
}

/* The single-secret format, pinned: computed from the layout in
 * page_token.c by an independent implementation (Python's hmac/hashlib), and
 * what every release so far has issued. */
#define GOLDEN_SECRET "0123456789abcdef0123456789abcdef"
#define GOLDEN_V1                                                                           \
  "AQAGCiQYICJAM2YyYTljMWUtN2I0ZC00ZThhLTljMGYtMWEyYjNjNGQ1ZTZmilsGwKrolzWB6oQmE6E-OZsm0Nb29C" \
  "xE_jv5T1MJicM"
/* The key-set format for kid "k2" with k = GOLDEN_SECRET, computed the same way. */
#define GOLDEN_V2                                                                           \
  "AgFffmvFrq9IAAYKJBggIkAzZjJhOWMxZS03YjRkLTRlOGEtOWMwZi0xYTJiM2M0ZDVlNmaKWwbAquiXNYHqhCYToT" \
  "45f6poxIATzQTSD8yr2k-QNw"

static void single_secret_tokens_are_unchanged(void **state) {
  fixture *fx = *state;
  page_key *k = page_key_create((const unsigned char *)GOLDEN_SECRET, 32);
  assert_non_null(k);
  char token[PAGE_TOKEN_MAX];
  assert_int_equal(page_token_encode(k, &fx->cur, FILTER, strlen(FILTER), token, sizeof token), 0);
  assert_string_equal(token, GOLDEN_V1);
  page_key_destroy(k);
}

/* k1, k2, k3: three keys; sets are built from them by kid. */
static const page_keyset_entry K1 = {"k1", 2, (const unsigned char *)"k1-secret-0123456789abcdef012345", 32};
static const page_keyset_entry K2 = {"k2", 2, (const unsigned char *)GOLDEN_SECRET, 32};
static const page_keyset_entry K3 = {"k3", 2, (const unsigned char *)"k3-secret-0123456789abcdef012345", 32};

static page_keyset *set_of(const page_keyset_entry *a, const page_keyset_entry *b, size_t signer) {
  page_keyset_entry e[2];
  size_t n = 0;
  e[n++] = *a;
  if (b) e[n++] = *b;
  page_keyset *ks = page_keyset_create(e, n, signer);
  assert_non_null(ks);
  return ks;
}

static int ks_decode(const page_keyset *ks, const char *token, const char *filter,
                     page_cursor *out) {
  return page_keyset_decode(ks, token, strlen(token), filter, strlen(filter), out);
}

static void key_set_tokens_follow_the_keys_in_force(void **state) {
  fixture *fx = *state;
  page_keyset *a = set_of(&K1, &K2, 1); /* {k1, k2}, minting with k2 */
  page_keyset *b = set_of(&K2, &K3, 1); /* k1 removed, k3 added and minting */
  page_keyset *c = set_of(&K3, NULL, 0); /* k2 removed */
  page_keyset *only1 = set_of(&K1, NULL, 0);
  char token[PAGE_TOKEN_MAX];
  page_cursor got;
  assert_int_equal(page_keyset_encode(a, &fx->cur, FILTER, strlen(FILTER), token, sizeof token),
                   0);
  assert_string_equal(token, GOLDEN_V2); /* names k2, MAC under k2's page key */
  assert_int_equal(ks_decode(a, token, FILTER, &got), 0);
  assert_int_equal(ks_decode(b, token, FILTER, &got), 0); /* another snapshot, or replica */
  assert_int_equal(got.created_us, fx->cur.created_us);
  assert_string_equal(got.id, fx->cur.id);
  assert_int_not_equal(ks_decode(c, token, FILTER, &got), 0);     /* k2 gone */
  assert_int_not_equal(ks_decode(only1, token, FILTER, &got), 0); /* not minted with k1 */
  assert_int_not_equal(ks_decode(b, token, "", &got), 0);         /* still bound to the filter */
  /* b mints with k3 now: c takes it, a (without k3) does not. */
  assert_int_equal(page_keyset_encode(b, &fx->cur, "", 0, token, sizeof token), 0);
  assert_int_equal(ks_decode(c, token, "", &got), 0);
  assert_int_not_equal(ks_decode(a, token, "", &got), 0);
  page_keyset_destroy(a);
  page_keyset_destroy(b);
  page_keyset_destroy(c);
  page_keyset_destroy(only1);
}

static void key_set_tokens_refuse_tampering_and_the_other_format(void **state) {
  fixture *fx = *state;
  page_keyset *ks = set_of(&K1, &K2, 1);
  /* Same kid, another k: the tag matches, the MAC does not. */
  page_keyset_entry k2_replaced = K3;
  k2_replaced.kid = "k2";
  page_keyset *replaced = set_of(&k2_replaced, NULL, 0);
  page_key *k2 = page_key_create(K2.secret, K2.secret_len);
  assert_non_null(k2);
  char token[PAGE_TOKEN_MAX], t[PAGE_TOKEN_MAX], v1[PAGE_TOKEN_MAX];
  page_cursor got;
  assert_int_equal(page_keyset_encode(ks, &fx->cur, FILTER, strlen(FILTER), token, sizeof token),
                   0);
  size_t n = strlen(token);
  assert_true(n < PAGE_TOKEN_MAX);
  assert_int_not_equal(ks_decode(replaced, token, FILTER, &got), 0);
  /* Every character (version, tag, body, MAC) matters. */
  for (size_t i = 0; i < n; i++) {
    memcpy(t, token, n + 1);
    t[i] = t[i] == 'A' ? 'B' : 'A';
    assert_int_not_equal(ks_decode(ks, t, FILTER, &got), 0);
  }
  assert_int_not_equal(page_keyset_decode(ks, token, n - 1, FILTER, strlen(FILTER), &got), 0);
  /* Neither format is taken for the other, even under the same key. */
  assert_int_not_equal(page_token_decode(k2, token, n, FILTER, strlen(FILTER), &got), 0);
  assert_int_equal(page_token_encode(k2, &fx->cur, FILTER, strlen(FILTER), v1, sizeof v1), 0);
  assert_int_not_equal(ks_decode(ks, v1, FILTER, &got), 0);
  /* Refused arguments. */
  assert_null(page_keyset_create(NULL, 1, 0));
  assert_null(page_keyset_create(&K1, 0, 0));
  assert_null(page_keyset_create(&K1, 1, 1));
  assert_int_not_equal(page_keyset_encode(ks, &fx->cur, FILTER, strlen(FILTER), t, n), 0);
  assert_int_not_equal(page_keyset_encode(NULL, &fx->cur, "", 0, t, sizeof t), 0);
  assert_int_not_equal(page_keyset_decode(NULL, token, n, FILTER, strlen(FILTER), &got), 0);
  assert_int_not_equal(page_keyset_decode(ks, NULL, 0, FILTER, strlen(FILTER), &got), 0);
  page_key_destroy(k2);
  page_keyset_destroy(ks);
  page_keyset_destroy(replaced);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip_gives_back_the_cursor),
      cmocka_unit_test(round_trip_of_extreme_cursors_and_short_ids),
      cmocka_unit_test(token_is_unpadded_base64url_within_the_size_limit),
      cmocka_unit_test(changing_any_character_is_refused),
      cmocka_unit_test(truncated_or_extended_tokens_are_refused),
      cmocka_unit_test(token_from_another_key_is_refused),
      cmocka_unit_test(same_secret_derives_the_same_key),
      cmocka_unit_test(token_for_another_filter_is_refused),
      cmocka_unit_test(garbage_and_standard_base64_are_refused),
      cmocka_unit_test(null_arguments_are_refused),
      cmocka_unit_test(single_secret_tokens_are_unchanged),
      cmocka_unit_test(key_set_tokens_follow_the_keys_in_force),
      cmocka_unit_test(key_set_tokens_refuse_tampering_and_the_other_format),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
