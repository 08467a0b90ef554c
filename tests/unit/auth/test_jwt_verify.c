/* auth/jwt_verify.c: every validity rule of product-server(8), each with a token
 * that passes and one that fails, plus hostile encodings. Tokens are forged
 * by hand (support/jwt_forge.c) so any byte can be wrong on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "auth/jwt_verify.h"
#include "support/jwt_forge.h"

#define SECRET "unit-test-secret-0123456789abcdef-not-a-real-one"
#define NOW INT64_C(1700000000)
#define LEEWAY 30
#define TOKEN_CAP 16384

static jwt_verifier *verifier; /* issuer product-service, audience client, leeway 30 */

/* Claims as JSON literals: NULL takes the valid default, OMIT leaves the
 * claim out, anything else is written as given. */
#define OMIT ""
typedef struct claims {
  const char *exp, *nbf, *iat, *iss, *aud, *sub, *role, *extra;
} claims;

static void build_payload(char *buf, size_t cap, claims c) {
  const char *names[] = {"exp", "nbf", "iat", "iss", "aud", "sub", "role"};
  const char *vals[] = {c.exp, c.nbf, c.iat, c.iss, c.aud, c.sub, c.role};
  const char *defs[] = {"1700003600", "1700000000", "1700000000", "\"product-service\"",
                        "\"client\"", "\"alice\"", "\"admin\""};
  size_t o = (size_t)snprintf(buf, cap, "{");
  for (size_t i = 0; i < 7; i++) {
    const char *v = vals[i] != NULL ? vals[i] : defs[i];
    if (v[0] == '\0')
      continue;
    o += (size_t)snprintf(buf + o, cap - o, "%s\"%s\":%s", o > 1 ? "," : "", names[i], v);
  }
  if (c.extra != NULL)
    o += (size_t)snprintf(buf + o, cap - o, "%s%s", o > 1 ? "," : "", c.extra);
  snprintf(buf + o, cap - o, "}");
}

static jwt_result verify_str(const char *tok, jwt_identity *id) {
  return jwt_verify(verifier, tok, strlen(tok), NOW, id);
}

/* Signs the claims correctly and verifies them at NOW. */
static jwt_result verify_claims(claims c) {
  char payload[TOKEN_CAP], tok[TOKEN_CAP];
  build_payload(payload, sizeof(payload), c);
  assert_true(forge_hs256(tok, sizeof(tok), payload, SECRET) > 0);
  jwt_identity id;
  return verify_str(tok, &id);
}

static jwt_result verify_header(const char *header, const char *digest) {
  char payload[TOKEN_CAP], tok[TOKEN_CAP];
  build_payload(payload, sizeof(payload), (claims){0});
  assert_true(forge_token(tok, sizeof(tok), header, payload, SECRET, digest) > 0);
  return verify_str(tok, NULL);
}

static void valid_token(char *tok, size_t cap) {
  char payload[TOKEN_CAP];
  build_payload(payload, sizeof(payload), (claims){0});
  assert_true(forge_hs256(tok, cap, payload, SECRET) > 0);
}

static int setup(void **state) {
  (void)state;
  jwt_verifier_options o = {.secret = (const unsigned char *)SECRET,
                            .secret_len = strlen(SECRET),
                            .issuer = "product-service",
                            .audience = "client",
                            .leeway_s = LEEWAY};
  return jwt_verifier_create(&o, &verifier);
}

static int teardown(void **state) {
  (void)state;
  jwt_verifier_destroy(verifier);
  verifier = NULL;
  return 0;
}

/* ---------------------------------------------------------------- valid --- */

static void test_valid_token_gives_identity(void **state) {
  (void)state;
  char tok[TOKEN_CAP];
  valid_token(tok, sizeof(tok));
  jwt_identity id;
  assert_int_equal(verify_str(tok, &id), JWT_OK);
  assert_string_equal(id.sub, "alice");
  assert_true(id.has_role);
  assert_string_equal(id.role, "admin");
  assert_int_equal(id.exp, 1700003600);
  assert_int_equal(id.nbf, 1700000000);
}

static void test_valid_token_without_optional_claims(void **state) {
  (void)state;
  char payload[TOKEN_CAP], tok[TOKEN_CAP];
  build_payload(payload, sizeof(payload), (claims){.nbf = OMIT, .iat = OMIT, .role = OMIT});
  assert_true(forge_hs256(tok, sizeof(tok), payload, SECRET) > 0);
  jwt_identity id;
  assert_int_equal(verify_str(tok, &id), JWT_OK);
  assert_false(id.has_role);
  assert_string_equal(id.role, "");
  assert_true(id.nbf == INT64_MIN);
}

static void test_failure_clears_identity(void **state) {
  (void)state;
  char payload[TOKEN_CAP], tok[TOKEN_CAP];
  build_payload(payload, sizeof(payload), (claims){.iss = "\"someone-else\""});
  assert_true(forge_hs256(tok, sizeof(tok), payload, SECRET) > 0);
  jwt_identity id;
  memset(&id, 'x', sizeof(id));
  assert_int_equal(verify_str(tok, &id), JWT_WRONG_ISSUER);
  assert_string_equal(id.sub, "");
  assert_false(id.has_role);
}

/* ------------------------------------------------------------- encoding --- */

static void test_segment_count_must_be_three(void **state) {
  (void)state;
  char tok[TOKEN_CAP], bad[TOKEN_CAP + 64];
  valid_token(tok, sizeof(tok));
  char *last_dot = strrchr(tok, '.');
  /* two segments */
  snprintf(bad, sizeof(bad), "%.*s", (int)(last_dot - tok), tok);
  assert_int_equal(verify_str(bad, NULL), JWT_MALFORMED);
  /* four segments */
  snprintf(bad, sizeof(bad), "%s.%s", tok, "AAAA");
  assert_int_equal(verify_str(bad, NULL), JWT_MALFORMED);
  assert_int_equal(verify_str("", NULL), JWT_MALFORMED);
  assert_int_equal(verify_str("..", NULL), JWT_MALFORMED);
}

static void test_empty_segments_are_malformed(void **state) {
  (void)state;
  char tok[TOKEN_CAP], bad[TOKEN_CAP + 64];
  valid_token(tok, sizeof(tok));
  char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
  snprintf(bad, sizeof(bad), "%s", d1); /* empty header */
  assert_int_equal(verify_str(bad, NULL), JWT_MALFORMED);
  snprintf(bad, sizeof(bad), "%.*s%s", (int)(d1 - tok + 1), tok, d2); /* empty payload */
  assert_int_equal(verify_str(bad, NULL), JWT_MALFORMED);
  snprintf(bad, sizeof(bad), "%.*s", (int)(d2 - tok + 1), tok); /* stripped signature */
  assert_int_equal(verify_str(bad, NULL), JWT_MALFORMED);
}

/* Inserts c at every position class (header, payload, signature). */
static void assert_byte_anywhere_is_malformed(const char *tok, char c) {
  size_t len = strlen(tok);
  size_t d1 = (size_t)(strchr(tok, '.') - tok), d2 = (size_t)(strrchr(tok, '.') - tok);
  size_t positions[] = {0, 3, d1, d1 + 4, d2, d2 + 5, len};
  char bad[TOKEN_CAP];
  for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
    size_t at = positions[i];
    memcpy(bad, tok, at);
    bad[at] = c;
    memcpy(bad + at + 1, tok + at, len - at);
    assert_int_equal(jwt_verify(verifier, bad, len + 1, NOW, NULL), JWT_MALFORMED);
  }
}

static void test_padding_and_foreign_bytes_are_malformed(void **state) {
  (void)state;
  char tok[TOKEN_CAP];
  valid_token(tok, sizeof(tok));
  const char bytes[] = {'=', '+', '/', ' ', '\t', '\n', '\r', '\0', '~', '%', '"', '\x80', '\xff'};
  for (size_t i = 0; i < sizeof(bytes); i++)
    assert_byte_anywhere_is_malformed(tok, bytes[i]);
}

static void test_padded_signature_is_malformed(void **state) {
  (void)state;
  char tok[TOKEN_CAP], bad[TOKEN_CAP + 64];
  valid_token(tok, sizeof(tok));
  snprintf(bad, sizeof(bad), "%s=", tok); /* 43 chars + '=' is standard padded base64 */
  assert_int_equal(verify_str(bad, NULL), JWT_MALFORMED);
}

static void test_nul_inside_token_is_malformed(void **state) {
  (void)state;
  char tok[TOKEN_CAP];
  valid_token(tok, sizeof(tok));
  size_t len = strlen(tok);
  tok[len - 1] = '\0'; /* length still counts the NUL */
  assert_int_equal(jwt_verify(verifier, tok, len, NOW, NULL), JWT_MALFORMED);
}

static void test_non_canonical_base64_is_malformed(void **state) {
  (void)state;
  char tok[TOKEN_CAP];
  valid_token(tok, sizeof(tok));
  size_t len = strlen(tok);
  /* 43 characters carry 258 bits, so the last character's two low bits are
   * padding and must be zero: setting one gives a second spelling of the
   * same signature. */
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t v = (size_t)(strchr(alphabet, tok[len - 1]) - alphabet);
  assert_int_equal(v & 3, 0);
  tok[len - 1] = alphabet[v | 1];
  assert_int_equal(verify_str(tok, NULL), JWT_MALFORMED);
}

static void test_segment_length_one_mod_four_is_malformed(void **state) {
  (void)state;
  char tok[TOKEN_CAP], bad[TOKEN_CAP + 64];
  valid_token(tok, sizeof(tok));
  snprintf(bad, sizeof(bad), "%sAA", tok); /* 45 signature chars: 1 mod 4 */
  assert_int_equal(verify_str(bad, NULL), JWT_MALFORMED);
}

static void test_header_and_payload_must_be_json_objects(void **state) {
  (void)state;
  char tok[TOKEN_CAP];
  assert_int_equal(verify_header("not json", "SHA256"), JWT_MALFORMED);
  assert_int_equal(verify_header("[\"HS256\"]", "SHA256"), JWT_MALFORMED);
  assert_int_equal(verify_header("{\"alg\":\"HS256\"} x", "SHA256"), JWT_MALFORMED);
  assert_int_equal(verify_header("{\"alg\":\"HS256\",\"alg\":\"none\"}", "SHA256"), JWT_MALFORMED);
  /* a correctly signed payload that is not an object */
  const char *payloads[] = {"[1,2]", "\"alice\"", "{\"sub\":\"a\"", "",
                            "{\"exp\":1700003600,\"exp\":1}", "{\"sub\":\"a\\u0000b\"}"};
  for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
    if (payloads[i][0] == '\0')
      continue; /* an empty payload is an empty segment, covered above */
    assert_true(forge_hs256(tok, sizeof(tok), payloads[i], SECRET) > 0);
    assert_int_equal(verify_str(tok, NULL), JWT_MALFORMED);
  }
}

static void test_length_cap_is_8_kib(void **state) {
  (void)state;
  /* Grow a padding claim until the token is exactly 8192, then 8193, bytes. */
  char pad[6300], payload[TOKEN_CAP], tok[TOKEN_CAP];
  bool seen_8192 = false, seen_8193 = false;
  for (size_t n = 5900; n < 6200 && !(seen_8192 && seen_8193); n++) {
    memset(pad, 'p', n);
    pad[n] = '\0';
    char extra[TOKEN_CAP];
    snprintf(extra, sizeof(extra), "\"pad\":\"%s\"", pad);
    build_payload(payload, sizeof(payload), (claims){.extra = extra});
    for (int variant = 0; variant < 2; variant++) {
      const char *h = variant ? "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"x\":1}"
                              : "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
      size_t len = forge_token(tok, sizeof(tok), h, payload, SECRET, "SHA256");
      if (len == 8192) {
        assert_int_equal(verify_str(tok, NULL), JWT_OK);
        seen_8192 = true;
      } else if (len == 8193) {
        assert_int_equal(verify_str(tok, NULL), JWT_MALFORMED);
        seen_8193 = true;
      }
    }
  }
  assert_true(seen_8192);
  assert_true(seen_8193);
}

/* ------------------------------------------------------------ algorithm --- */

static void test_alg_must_be_exactly_hs256(void **state) {
  (void)state;
  assert_int_equal(verify_header("{\"alg\":\"HS256\"}", "SHA256"), JWT_OK);
  const char *bad[] = {
      "{\"alg\":\"none\"}",  "{\"alg\":\"None\"}",  "{\"alg\":\"NONE\"}",  "{\"alg\":\"nOnE\"}",
      "{\"alg\":\"hs256\"}", "{\"alg\":\"Hs256\"}", "{\"alg\":\"HS256 \"}", "{\"alg\":\"\"}",
      "{\"alg\":\"RS256\"}", "{\"alg\":\"ES256\"}", "{\"alg\":\"PS256\"}", "{\"alg\":256}",
      "{\"alg\":null}",      "{\"alg\":[\"HS256\"]}", "{\"typ\":\"JWT\"}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(verify_header(bad[i], "SHA256"), JWT_BAD_ALG);
}

/* The verifier recognises the usual header encodings without parsing them;
 * these are the texts they stand for, and other spellings of the same JSON
 * still pass the full parse. */
static void test_usual_and_unusual_hs256_headers_verify(void **state) {
  (void)state;
  const char *usual[][2] = {
      {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"},
      {"{\"typ\":\"JWT\",\"alg\":\"HS256\"}", "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"},
      {"{\"alg\":\"HS256\"}", "eyJhbGciOiJIUzI1NiJ9"},
  };
  for (size_t i = 0; i < 3; i++) {
    char b64[128];
    forge_b64url(usual[i][0], strlen(usual[i][0]), b64, sizeof(b64));
    assert_string_equal(b64, usual[i][1]);
    assert_int_equal(verify_header(usual[i][0], "SHA256"), JWT_OK);
  }
  assert_int_equal(verify_header("{ \"alg\" : \"HS256\" , \"typ\" : \"JWT\" }", "SHA256"), JWT_OK);
  assert_int_equal(verify_header("{\"alg\":\"HS256\",\"kid\":\"k1\"}", "SHA256"), JWT_OK);
}

static void test_alg_none_with_empty_signature_is_rejected(void **state) {
  (void)state;
  const char *headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}"};
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(verify_header(headers[i], NULL), JWT_MALFORMED);
}

static void test_hs384_and_hs512_with_right_secret_are_bad_alg(void **state) {
  (void)state;
  assert_int_equal(verify_header("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", "SHA384"), JWT_BAD_ALG);
  assert_int_equal(verify_header("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "SHA512"), JWT_BAD_ALG);
  /* HS256 header with a longer MAC: the signature length is wrong */
  assert_int_equal(verify_header("{\"alg\":\"HS256\"}", "SHA512"), JWT_BAD_SIGNATURE);
}

static void test_crit_header_is_unsupported(void **state) {
  (void)state;
  assert_int_equal(verify_header("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "SHA256"),
                   JWT_UNSUPPORTED_CRIT);
  assert_int_equal(verify_header("{\"alg\":\"HS256\",\"crit\":[]}", "SHA256"),
                   JWT_UNSUPPORTED_CRIT);
  assert_int_equal(verify_header("{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}", "SHA256"),
                   JWT_UNSUPPORTED_CRIT);
}

/* ------------------------------------------------------------ signature --- */

static void test_wrong_secret_is_bad_signature(void **state) {
  (void)state;
  char payload[TOKEN_CAP], tok[TOKEN_CAP];
  build_payload(payload, sizeof(payload), (claims){0});
  assert_true(forge_hs256(tok, sizeof(tok), payload, SECRET "x") > 0);
  assert_int_equal(verify_str(tok, NULL), JWT_BAD_SIGNATURE);
}

static void test_tampered_payload_is_bad_signature(void **state) {
  (void)state;
  char tok[TOKEN_CAP], other[TOKEN_CAP], payload[TOKEN_CAP], bad[TOKEN_CAP];
  valid_token(tok, sizeof(tok));
  /* Same header and signature, payload of a different (admin) subject. */
  build_payload(payload, sizeof(payload), (claims){.sub = "\"mallory\""});
  assert_true(forge_hs256(other, sizeof(other), payload, SECRET) > 0);
  char *tok_d1 = strchr(tok, '.'), *tok_d2 = strrchr(tok, '.');
  char *o_d1 = strchr(other, '.'), *o_d2 = strrchr(other, '.');
  snprintf(bad, sizeof(bad), "%.*s%.*s%s", (int)(tok_d1 - tok), tok, (int)(o_d2 - o_d1), o_d1,
           tok_d2);
  assert_int_equal(verify_str(bad, NULL), JWT_BAD_SIGNATURE);
}

static void test_signature_bit_flip_and_truncation_are_bad_signature(void **state) {
  (void)state;
  char tok[TOKEN_CAP];
  valid_token(tok, sizeof(tok));
  size_t len = strlen(tok);
  char *sig = strrchr(tok, '.') + 1;
  char saved = sig[0];
  sig[0] = saved == 'A' ? 'B' : 'A';
  assert_int_equal(verify_str(tok, NULL), JWT_BAD_SIGNATURE);
  sig[0] = saved;
  /* 40 characters: canonical base64url of 30 bytes, too short for HS256 */
  assert_int_equal(jwt_verify(verifier, tok, len - 3, NOW, NULL), JWT_BAD_SIGNATURE);
  assert_int_equal(jwt_verify(verifier, tok, len, NOW, NULL), JWT_OK);
}

static void test_signature_is_checked_before_claims(void **state) {
  (void)state;
  char payload[TOKEN_CAP], tok[TOKEN_CAP];
  build_payload(payload, sizeof(payload), (claims){.exp = "1"}); /* long expired */
  assert_true(forge_hs256(tok, sizeof(tok), payload, "another-secret-entirely-32-bytes!") > 0);
  assert_int_equal(verify_str(tok, NULL), JWT_BAD_SIGNATURE);
  assert_true(forge_hs256(tok, sizeof(tok), "{not json", "another-secret-entirely-32-bytes!") > 0);
  assert_int_equal(verify_str(tok, NULL), JWT_BAD_SIGNATURE);
}

/* --------------------------------------------------------------- claims --- */

static void test_exp_must_be_present_integer(void **state) {
  (void)state;
  assert_int_equal(verify_claims((claims){.exp = OMIT}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.exp = "\"1700003600\""}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.exp = "1700003600.0"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.exp = "1.7000036e9"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.exp = "true"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.exp = "null"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.exp = "[1700003600]"}), JWT_BAD_CLAIMS);
}

static void test_exp_leeway_boundary(void **state) {
  (void)state;
  /* valid while now < exp + leeway */
  assert_int_equal(verify_claims((claims){.exp = "1699999971", .nbf = OMIT, .iat = OMIT}),
                   JWT_OK);
  assert_int_equal(verify_claims((claims){.exp = "1699999970", .nbf = OMIT, .iat = OMIT}),
                   JWT_EXPIRED);
  assert_int_equal(verify_claims((claims){.exp = "-1", .nbf = OMIT, .iat = OMIT}), JWT_EXPIRED);
}

static void test_extreme_times_do_not_overflow(void **state) {
  (void)state;
  assert_int_equal(verify_claims((claims){.exp = "9223372036854775807",
                                          .nbf = "-9223372036854775808",
                                          .iat = "-9223372036854775808"}),
                   JWT_OK);
  assert_int_equal(verify_claims((claims){.exp = "-9223372036854775808"}), JWT_EXPIRED);
  assert_int_equal(verify_claims((claims){.nbf = "9223372036854775807"}), JWT_NOT_YET_VALID);
  assert_int_equal(verify_claims((claims){.iat = "9223372036854775807"}), JWT_ISSUED_IN_FUTURE);
  /* beyond int64: jansson refuses the number, so the payload is not JSON to us */
  assert_int_equal(verify_claims((claims){.exp = "92233720368547758070"}), JWT_MALFORMED);
}

static void test_nbf_rules(void **state) {
  (void)state;
  /* valid once now >= nbf - leeway */
  assert_int_equal(verify_claims((claims){.nbf = "1700000030", .iat = OMIT}), JWT_OK);
  assert_int_equal(verify_claims((claims){.nbf = "1700000031", .iat = OMIT}), JWT_NOT_YET_VALID);
  assert_int_equal(verify_claims((claims){.nbf = "\"1700000000\""}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.nbf = "1700000000.5"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.nbf = "false"}), JWT_BAD_CLAIMS);
}

static void test_iat_rules(void **state) {
  (void)state;
  /* valid while iat <= now + leeway */
  assert_int_equal(verify_claims((claims){.iat = "1700000030", .nbf = OMIT}), JWT_OK);
  assert_int_equal(verify_claims((claims){.iat = "1700000031", .nbf = OMIT}),
                   JWT_ISSUED_IN_FUTURE);
  assert_int_equal(verify_claims((claims){.iat = "\"1700000000\""}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.iat = "1e9"}), JWT_BAD_CLAIMS);
}

static void test_zero_leeway_boundaries(void **state) {
  (void)state;
  jwt_verifier *strict = NULL;
  jwt_verifier_options o = {.secret = (const unsigned char *)SECRET,
                            .secret_len = strlen(SECRET),
                            .issuer = "product-service",
                            .audience = "client",
                            .leeway_s = 0};
  assert_int_equal(jwt_verifier_create(&o, &strict), 0);
  char payload[TOKEN_CAP], tok[TOKEN_CAP];
  build_payload(payload, sizeof(payload), (claims){.exp = "1700000001", .nbf = "1700000000",
                                                   .iat = "1700000000"});
  assert_true(forge_hs256(tok, sizeof(tok), payload, SECRET) > 0);
  assert_int_equal(jwt_verify(strict, tok, strlen(tok), NOW, NULL), JWT_OK);
  assert_int_equal(jwt_verify(strict, tok, strlen(tok), NOW + 1, NULL), JWT_EXPIRED);
  assert_int_equal(jwt_verify(strict, tok, strlen(tok), NOW - 1, NULL), JWT_NOT_YET_VALID);
  jwt_verifier_destroy(strict);
}

static void test_iss_rules(void **state) {
  (void)state;
  assert_int_equal(verify_claims((claims){.iss = OMIT}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.iss = "42"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.iss = "[\"product-service\"]"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.iss = "\"Product-Service\""}), JWT_WRONG_ISSUER);
  assert_int_equal(verify_claims((claims){.iss = "\"product-servic\""}), JWT_WRONG_ISSUER);
  assert_int_equal(verify_claims((claims){.iss = "\"product-service \""}), JWT_WRONG_ISSUER);
  assert_int_equal(verify_claims((claims){.iss = "\"\""}), JWT_WRONG_ISSUER);
}

static void test_aud_rules(void **state) {
  (void)state;
  assert_int_equal(verify_claims((claims){.aud = "[\"client\"]"}), JWT_OK);
  assert_int_equal(verify_claims((claims){.aud = "[\"other\",\"client\"]"}), JWT_OK);
  assert_int_equal(verify_claims((claims){.aud = "\"other\""}), JWT_WRONG_AUDIENCE);
  assert_int_equal(verify_claims((claims){.aud = "\"clients\""}), JWT_WRONG_AUDIENCE);
  assert_int_equal(verify_claims((claims){.aud = "[\"other\",\"Client\"]"}), JWT_WRONG_AUDIENCE);
  assert_int_equal(verify_claims((claims){.aud = "[]"}), JWT_WRONG_AUDIENCE);
  assert_int_equal(verify_claims((claims){.aud = OMIT}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.aud = "7"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.aud = "{\"client\":true}"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.aud = "[\"client\",7]"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.aud = "[[\"client\"]]"}), JWT_BAD_CLAIMS);
}

static void test_sub_rules(void **state) {
  (void)state;
  assert_int_equal(verify_claims((claims){.sub = OMIT}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.sub = "\"\""}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.sub = "42"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.sub = "null"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.sub = "[\"alice\"]"}), JWT_BAD_CLAIMS);
  char sub[JWT_SUB_MAX + 8];
  memset(sub, 'a', sizeof(sub));
  sub[0] = '"';
  sub[JWT_SUB_MAX + 1] = '"';
  sub[JWT_SUB_MAX + 2] = '\0';
  assert_int_equal(verify_claims((claims){.sub = sub}), JWT_OK); /* exactly the maximum */
  sub[JWT_SUB_MAX + 1] = 'a';
  sub[JWT_SUB_MAX + 2] = '"';
  sub[JWT_SUB_MAX + 3] = '\0';
  assert_int_equal(verify_claims((claims){.sub = sub}), JWT_BAD_CLAIMS); /* refused, not cut */
}

static void test_role_rules(void **state) {
  (void)state;
  assert_int_equal(verify_claims((claims){.role = OMIT}), JWT_OK);
  assert_int_equal(verify_claims((claims){.role = "\"\""}), JWT_OK);
  assert_int_equal(verify_claims((claims){.role = "1"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.role = "[\"admin\"]"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.role = "true"}), JWT_BAD_CLAIMS);
  assert_int_equal(verify_claims((claims){.role = "null"}), JWT_BAD_CLAIMS);
}

/* -------------------------------------------------------------- the API --- */

static void test_create_rejects_bad_options(void **state) {
  (void)state;
  jwt_verifier *v = (jwt_verifier *)&v;
  jwt_verifier_options o = {.secret = (const unsigned char *)SECRET,
                            .secret_len = strlen(SECRET),
                            .issuer = "i",
                            .audience = "a",
                            .leeway_s = -1};
  assert_int_not_equal(jwt_verifier_create(&o, &v), 0);
  assert_null(v);
  o.leeway_s = 0;
  o.secret_len = 0;
  assert_int_not_equal(jwt_verifier_create(&o, &v), 0);
  o.secret_len = strlen(SECRET);
  o.issuer = NULL;
  assert_int_not_equal(jwt_verifier_create(&o, &v), 0);
  assert_int_not_equal(jwt_verifier_create(NULL, &v), 0);
  jwt_verifier_destroy(NULL);
}

static void test_reasons_are_snake_case_names(void **state) {
  (void)state;
  const char *want[] = {"ok",          "malformed",     "bad_alg",          "unsupported_crit",
                        "bad_signature", "expired",     "not_yet_valid",    "issued_in_future",
                        "wrong_issuer", "wrong_audience", "bad_claims",      "unknown_kid",
                        "revoked",     "internal"};
  for (int r = JWT_OK; r <= JWT_INTERNAL; r++)
    assert_string_equal(jwt_result_reason((jwt_result)r), want[r]);
}

static void *verify_many(void *arg) {
  const char *tok = arg;
  for (int i = 0; i < 2000; i++) {
    if (jwt_verify(verifier, tok, strlen(tok), NOW, NULL) != JWT_OK)
      return (void *)1;
  }
  return NULL;
}

static void test_one_verifier_serves_many_threads(void **state) {
  (void)state;
  char tok[TOKEN_CAP];
  valid_token(tok, sizeof(tok));
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, verify_many, tok), 0);
  for (int i = 0; i < 4; i++) {
    void *failed = NULL;
    assert_int_equal(pthread_join(t[i], &failed), 0);
    assert_null(failed);
  }
}

/* A token minted by PyJWT (python3-jwt), the reference implementation most
 * clients use, verifies here. */
static void test_pyjwt_token_verifies(void **state) {
  (void)state;
  assert_int_equal(setenv("AUTH_TEST_SECRET", SECRET, 1), 0);
  FILE *p = popen("/usr/bin/python3 -c '"
                  "import jwt, os, time\n"
                  "n = int(time.time())\n"
                  "print(jwt.encode({\"sub\": \"py-user\", \"role\": \"admin\", "
                  "\"iss\": \"product-service\", \"aud\": [\"x\", \"client\"], "
                  "\"iat\": n, \"nbf\": n, \"exp\": n + 600}, "
                  "os.environ[\"AUTH_TEST_SECRET\"], algorithm=\"HS256\"))'",
                  "r");
  assert_non_null(p);
  char tok[TOKEN_CAP] = "";
  char *got = fgets(tok, sizeof(tok), p);
  int status = pclose(p);
  assert_non_null(got);
  assert_int_equal(status, 0);
  tok[strcspn(tok, "\n")] = '\0';
  jwt_identity id;
  assert_int_equal(jwt_verify(verifier, tok, strlen(tok), (int64_t)time(NULL), &id), JWT_OK);
  assert_string_equal(id.sub, "py-user");
  assert_string_equal(id.role, "admin");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_token_gives_identity),
      cmocka_unit_test(test_valid_token_without_optional_claims),
      cmocka_unit_test(test_failure_clears_identity),
      cmocka_unit_test(test_segment_count_must_be_three),
      cmocka_unit_test(test_empty_segments_are_malformed),
      cmocka_unit_test(test_padding_and_foreign_bytes_are_malformed),
      cmocka_unit_test(test_padded_signature_is_malformed),
      cmocka_unit_test(test_nul_inside_token_is_malformed),
      cmocka_unit_test(test_non_canonical_base64_is_malformed),
      cmocka_unit_test(test_segment_length_one_mod_four_is_malformed),
      cmocka_unit_test(test_header_and_payload_must_be_json_objects),
      cmocka_unit_test(test_length_cap_is_8_kib),
      cmocka_unit_test(test_alg_must_be_exactly_hs256),
      cmocka_unit_test(test_usual_and_unusual_hs256_headers_verify),
      cmocka_unit_test(test_alg_none_with_empty_signature_is_rejected),
      cmocka_unit_test(test_hs384_and_hs512_with_right_secret_are_bad_alg),
      cmocka_unit_test(test_crit_header_is_unsupported),
      cmocka_unit_test(test_wrong_secret_is_bad_signature),
      cmocka_unit_test(test_tampered_payload_is_bad_signature),
      cmocka_unit_test(test_signature_bit_flip_and_truncation_are_bad_signature),
      cmocka_unit_test(test_signature_is_checked_before_claims),
      cmocka_unit_test(test_exp_must_be_present_integer),
      cmocka_unit_test(test_exp_leeway_boundary),
      cmocka_unit_test(test_extreme_times_do_not_overflow),
      cmocka_unit_test(test_nbf_rules),
      cmocka_unit_test(test_iat_rules),
      cmocka_unit_test(test_zero_leeway_boundaries),
      cmocka_unit_test(test_iss_rules),
      cmocka_unit_test(test_aud_rules),
      cmocka_unit_test(test_sub_rules),
      cmocka_unit_test(test_role_rules),
      cmocka_unit_test(test_create_rejects_bad_options),
      cmocka_unit_test(test_reasons_are_snake_case_names),
      cmocka_unit_test(test_one_verifier_serves_many_threads),
      cmocka_unit_test(test_pyjwt_token_verifies),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
