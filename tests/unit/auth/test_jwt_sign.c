/* auth/jwt_sign.c: minted tokens verify with jwt_verify and with PyJWT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "auth/jwt_sign.h"
#include "auth/jwt_verify.h"

#define SECRET "unit-test-secret-0123456789abcdef-not-a-real-one"
#define NOW INT64_C(1700000000)

static jwt_verifier *make_verifier(const char *secret) {
  jwt_verifier *v = NULL;
  jwt_verifier_options o = {.secret = (const unsigned char *)secret,
                            .secret_len = strlen(secret),
                            .issuer = "product-service",
                            .audience = "client",
                            .leeway_s = 30};
  assert_int_equal(jwt_verifier_create(&o, &v), 0);
  return v;
}

static char *sign(const char *role, int64_t now, int64_t ttl) {
  jwt_sign_claims c = {.sub = "alice", .role = role, .issuer = "product-service",
                       .audience = "client", .now = now, .ttl_s = ttl};
  char *tok = NULL;
  char err[128];
  assert_int_equal(jwt_sign_hs256(&c, (const unsigned char *)SECRET, strlen(SECRET), &tok, err,
                                  sizeof(err)),
                   0);
  assert_non_null(tok);
  return tok;
}

static void test_signed_token_verifies(void **state) {
  (void)state;
  jwt_verifier *v = make_verifier(SECRET);
  char *tok = sign("admin", NOW, 3600);
  jwt_identity id;
  assert_int_equal(jwt_verify(v, tok, strlen(tok), NOW, &id), JWT_OK);
  assert_string_equal(id.sub, "alice");
  assert_true(id.has_role);
  assert_string_equal(id.role, "admin");
  assert_int_equal(id.exp, NOW + 3600);
  assert_int_equal(id.nbf, NOW);
  /* and its lifetime is the one asked for */
  assert_int_equal(jwt_verify(v, tok, strlen(tok), NOW + 3600 + 30, NULL), JWT_EXPIRED);
  jwt_sign_free(tok);
  jwt_verifier_destroy(v);
}

static void test_token_without_role_has_no_role_claim(void **state) {
  (void)state;
  jwt_verifier *v = make_verifier(SECRET);
  char *tok = sign(NULL, NOW, 60);
  jwt_identity id;
  assert_int_equal(jwt_verify(v, tok, strlen(tok), NOW, &id), JWT_OK);
  assert_false(id.has_role);
  jwt_sign_free(tok);
  jwt_verifier_destroy(v);
}

static void test_other_secret_does_not_verify(void **state) {
  (void)state;
  jwt_verifier *v = make_verifier(SECRET "-other");
  char *tok = sign("admin", NOW, 3600);
  assert_int_equal(jwt_verify(v, tok, strlen(tok), NOW, NULL), JWT_BAD_SIGNATURE);
  jwt_sign_free(tok);
  jwt_verifier_destroy(v);
}

/* The payload segment as JSON: base64url turned into padded base64 for
 * OpenSSL's decoder, then parsed with jansson. */
static json_t *payload_of(const char *tok) {
  const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
  size_t n = (size_t)(d2 - d1 - 1);
  char b64[2048];
  unsigned char raw[2048];
  assert_true(n + 3 < sizeof(b64));
  for (size_t i = 0; i < n; i++)
    b64[i] = d1[1 + i] == '-' ? '+' : (d1[1 + i] == '_' ? '/' : d1[1 + i]);
  while (n % 4 != 0)
    b64[n++] = '=';
  int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
  assert_true(len > 0);
  while (len > 0 && raw[len - 1] == '\0') /* DecodeBlock counts the padding */
    len--;
  json_error_t e;
  json_t *j = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, &e);
  assert_non_null(j);
  return j;
}

static void test_all_claims_are_written(void **state) {
  (void)state;
  char *tok = sign("admin", NOW, 900);
  json_t *j = payload_of(tok);
  assert_string_equal(json_string_value(json_object_get(j, "sub")), "alice");
  assert_string_equal(json_string_value(json_object_get(j, "user_id")), "alice");
  assert_string_equal(json_string_value(json_object_get(j, "role")), "admin");
  assert_string_equal(json_string_value(json_object_get(j, "iss")), "product-service");
  assert_string_equal(json_string_value(json_object_get(j, "aud")), "client");
  assert_true(json_is_integer(json_object_get(j, "iat")));
  assert_int_equal(json_integer_value(json_object_get(j, "iat")), NOW);
  assert_int_equal(json_integer_value(json_object_get(j, "nbf")), NOW);
  assert_int_equal(json_integer_value(json_object_get(j, "exp")), NOW + 900);
  json_decref(j);
  jwt_sign_free(tok);
}

/* Every token names itself with a random jti of 128 bits (22 base64url
 * characters), so that one token can be revoked. */
static void test_every_token_has_a_random_jti(void **state) {
  (void)state;
  char *a = sign(NULL, NOW, 900), *b = sign(NULL, NOW, 900);
  json_t *ja = payload_of(a), *jb = payload_of(b);
  const char *ta = json_string_value(json_object_get(ja, "jti"));
  const char *tb = json_string_value(json_object_get(jb, "jti"));
  assert_non_null(ta);
  assert_non_null(tb);
  assert_int_equal(strlen(ta), 22);
  assert_int_equal(strspn(ta, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                   22);
  assert_string_not_equal(ta, tb);
  json_decref(ja);
  json_decref(jb);
  jwt_sign_free(a);
  jwt_sign_free(b);
}

/* With a kid the header names the key, and a key-set verifier takes it. */
static void test_kid_goes_into_the_header(void **state) {
  (void)state;
  jwt_sign_claims c = {.sub = "alice", .issuer = "product-service", .audience = "client",
                       .now = NOW, .ttl_s = 900, .kid = "k2", .jti = "fixed"};
  char *tok = NULL;
  char err[128];
  assert_int_equal(jwt_sign_hs256(&c, (const unsigned char *)SECRET, strlen(SECRET), &tok, err,
                                  sizeof(err)),
                   0);
  /* {"alg":"HS256","kid":"k2","typ":"JWT"}: the layout verified without a parse. */
  assert_memory_equal(tok, "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsyIiwidHlwIjoiSldUIn0.", 52);
  jwt_key keys[2] = {{.kid = "k1", .secret = (const unsigned char *)"x", .secret_len = 1},
                     {.kid = "k2", .secret = (const unsigned char *)SECRET,
                      .secret_len = strlen(SECRET)}};
  jwt_verifier_options o = {.issuer = "product-service", .audience = "client", .leeway_s = 30,
                            .keys = keys, .n_keys = 2};
  jwt_verifier *v = NULL;
  assert_int_equal(jwt_verifier_create(&o, &v), 0);
  jwt_identity id;
  assert_int_equal(jwt_verify(v, tok, strlen(tok), NOW, &id), JWT_OK);
  assert_true(id.has_jti);
  assert_string_equal(id.jti, "fixed");
  assert_true(id.has_iat);
  assert_int_equal(id.iat, NOW);
  jwt_verifier_destroy(v);
  jwt_sign_free(tok);
}

static void test_bad_input_is_refused(void **state) {
  (void)state;
  char *tok = (char *)1;
  char err[128] = "";
  jwt_sign_claims c = {.sub = "", .issuer = "i", .audience = "a", .now = NOW, .ttl_s = 60};
  const unsigned char *key = (const unsigned char *)SECRET;
  assert_int_not_equal(jwt_sign_hs256(&c, key, strlen(SECRET), &tok, err, sizeof(err)), 0);
  assert_null(tok);
  assert_true(err[0] != '\0');
  c.sub = "alice";
  c.ttl_s = 0;
  assert_int_not_equal(jwt_sign_hs256(&c, key, strlen(SECRET), &tok, err, sizeof(err)), 0);
  c.ttl_s = INT64_MAX;
  assert_int_not_equal(jwt_sign_hs256(&c, key, strlen(SECRET), &tok, err, sizeof(err)), 0);
  c.ttl_s = 60;
  assert_int_not_equal(jwt_sign_hs256(&c, key, 0, &tok, err, sizeof(err)), 0);
  assert_null(strstr(err, SECRET));
  jwt_sign_free(NULL);
}

/* PyJWT (python3-jwt) accepts what we mint, with the same checks. */
static void test_pyjwt_verifies_signed_token(void **state) {
  (void)state;
  char *tok = sign("admin", (int64_t)time(NULL), 600);
  assert_int_equal(setenv("AUTH_TEST_SECRET", SECRET, 1), 0);
  assert_int_equal(setenv("AUTH_TEST_TOKEN", tok, 1), 0);
  int status = system("/usr/bin/python3 -c '"
                      "import jwt, os, sys\n"
                      "c = jwt.decode(os.environ[\"AUTH_TEST_TOKEN\"], "
                      "os.environ[\"AUTH_TEST_SECRET\"], algorithms=[\"HS256\"], "
                      "audience=\"client\", issuer=\"product-service\", "
                      "options={\"require\": [\"exp\", \"iat\", \"nbf\", \"sub\"]})\n"
                      "sys.exit(0 if c[\"sub\"] == \"alice\" and c[\"role\"] == \"admin\" else 3)'");
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* the check is real: a wrong secret fails it */
  assert_int_equal(setenv("AUTH_TEST_SECRET", SECRET "-other", 1), 0);
  status = system("/usr/bin/python3 -c '"
                  "import jwt, os\n"
                  "jwt.decode(os.environ[\"AUTH_TEST_TOKEN\"], os.environ[\"AUTH_TEST_SECRET\"], "
                  "algorithms=[\"HS256\"], audience=\"client\")' 2>/dev/null");
  assert_true(WIFEXITED(status));
  assert_int_not_equal(WEXITSTATUS(status), 0);
  unsetenv("AUTH_TEST_TOKEN");
  jwt_sign_free(tok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_signed_token_verifies),
      cmocka_unit_test(test_token_without_role_has_no_role_claim),
      cmocka_unit_test(test_other_secret_does_not_verify),
      cmocka_unit_test(test_all_claims_are_written),
      cmocka_unit_test(test_bad_input_is_refused),
      cmocka_unit_test(test_every_token_has_a_random_jti),
      cmocka_unit_test(test_kid_goes_into_the_header),
      cmocka_unit_test(test_pyjwt_verifies_signed_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
