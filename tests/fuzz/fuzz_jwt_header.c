/* libFuzzer target for auth/jwt_verify.c in key-set mode, differential: the
 * input is a token header (JSON text). The token is completed with a valid
 * payload and signed with the key the header names (or, for a header that
 * names none, with the first key), then verified. A reference model built
 * on a plain jansson parse says what the contract allows: a JSON object
 * without duplicate members, alg exactly "HS256", no crit, and a kid that
 * names a key. The verifier's shortcuts (prepared encoded headers for known
 * kids, the decoded common layouts for unknown ones) must agree with it:
 * accepted exactly when the model accepts. Violations abort. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64url.h"
#include "auth/jwt_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000
#define N_KEYS 3

/* A plain kid, one with a space, one that needs JSON escaping. */
static const jwt_key keys[N_KEYS] = {
    {.kid = "k1", .secret = (const unsigned char *)"key-one-0123456789abcdef01234567",
     .secret_len = 32},
    {.kid = "key two", .secret = (const unsigned char *)"key-two-0123456789abcdef01234567",
     .secret_len = 32},
    {.kid = "k\"3", .secret = (const unsigned char *)"key-three-0123456789abcdef012345",
     .secret_len = 32},
};

static jwt_verifier *verifier(void) {
  static jwt_verifier *v;
  if (!v) {
    jwt_verifier_options o = {.issuer = "i", .audience = "a", .keys = keys, .n_keys = N_KEYS};
    if (jwt_verifier_create(&o, &v) != 0) abort();
  }
  return v;
}

/* The model: the key a contract-valid header names, or -1. */
static int model(const uint8_t *h, size_t len) {
  json_error_t e;
  json_t *j = json_loadb((const char *)h, len, JSON_REJECT_DUPLICATES, &e);
  int k = -1;
  if (!j || !json_is_object(j)) goto out;
  const json_t *alg = json_object_get(j, "alg"), *kid = json_object_get(j, "kid");
  if (!json_is_string(alg) || json_string_length(alg) != 5 ||
      memcmp(json_string_value(alg), "HS256", 5) != 0 || json_object_get(j, "crit") ||
      !json_is_string(kid))
    goto out;
  for (int i = 0; i < N_KEYS; i++)
    if (json_string_length(kid) == strlen(keys[i].kid) &&
        memcmp(json_string_value(kid), keys[i].kid, strlen(keys[i].kid)) == 0)
      k = i;
out:
  json_decref(j);
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char payload[] = "{\"sub\":\"s\",\"iss\":\"i\",\"aud\":\"a\",\"exp\":1900000000}";
  if (size == 0 || size > 2048) return 0;
  int want = model(data, size);
  char *h64 = b64url_encode_alloc(data, size, NULL);
  char *p64 = b64url_encode_alloc((const unsigned char *)payload, sizeof payload - 1, NULL);
  if (!h64 || !p64) abort();
  size_t cap = strlen(h64) + strlen(p64) + 64;
  char *tok = malloc(cap);
  if (!tok) abort();
  int n = snprintf(tok, cap, "%s.%s", h64, p64);
  const jwt_key *k = &keys[want >= 0 ? want : 0];
  unsigned char mac[32];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), k->secret, (int)k->secret_len, (const unsigned char *)tok, (size_t)n,
            mac, &mac_len) ||
      mac_len != 32)
    abort();
  char *s64 = b64url_encode_alloc(mac, 32, NULL);
  if (!s64) abort();
  snprintf(tok + n, cap - (size_t)n, ".%s", s64);
  jwt_identity id;
  jwt_result r = jwt_verify(verifier(), tok, strlen(tok), NOW, &id);
  if ((r == JWT_OK) != (want >= 0)) {
    fprintf(stderr, "verifier says %s, the model %s\n", jwt_result_reason(r),
            want >= 0 ? "ok" : "refused");
    abort();
  }
  free(s64);
  free(tok);
  free(p64);
  free(h64);
  return 0;
}
