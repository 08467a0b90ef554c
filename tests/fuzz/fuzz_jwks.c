/* libFuzzer target for auth/jwks.c (and src/core/b64url.c through it). The input
 * is a key set file. Invariants: a refusal leaves no set and one line of
 * message; an accepted set has 1..JWKS_MAX_KEYS keys with unique non-empty
 * kids and keys of at least 32 bytes, that a key-set verifier accepts, and
 * the signing key (if any) may sign. Violations abort. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jwks *s = (jwks *)1;
  char err[512];
  err[0] = '\0';
  if (jwks_parse((const char *)data, size, &s, err, sizeof err) != 0) {
    if (s != NULL || err[0] == '\0' || strchr(err, '\n') != NULL)
      abort();
    return 0;
  }
  size_t n = jwks_count(s);
  if (n == 0 || n > JWKS_MAX_KEYS)
    abort();
  jwt_key *keys = calloc(n, sizeof *keys);
  if (keys == NULL)
    abort();
  for (size_t i = 0; i < n; i++) {
    const jwks_key *k = jwks_key_at(s, i);
    if (k->kid_len == 0 || strlen(k->kid) != k->kid_len || k->k_len < JWKS_KEY_MIN_LEN ||
        k->k_len > JWKS_KEY_MAX_LEN || jwks_find(s, k->kid) != k)
      abort();
    keys[i] = (jwt_key){.kid = k->kid, .secret = k->k, .secret_len = k->k_len};
  }
  const jwks_key *sk = jwks_signing_key(s);
  if (sk != NULL && !sk->can_sign)
    abort();
  jwt_verifier_options vo = {
      .issuer = "i", .audience = "a", .leeway_s = 0, .keys = keys, .n_keys = n};
  jwt_verifier *v = NULL;
  if (jwt_verifier_create(&vo, &v) != 0)
    abort();
  jwt_verifier_destroy(v);
  free(keys);
  jwks_destroy(s);
  return 0;
}
