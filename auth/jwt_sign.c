/* Minting with libjwt 1.10: it builds the header {"alg":"HS256","typ":"JWT"},
 * base64url-encodes without padding and signs with OpenSSL's HMAC. libjwt
 * keeps its own copy of the key and scrubs it in jwt_free. */
#include "auth/jwt_sign.h"

#include "core/b64url.h"

#include <jwt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err != NULL && errlen > 0)
    snprintf(err, errlen, "%s", msg);
}

int jwt_sign_hs256(const jwt_sign_claims *c, const unsigned char *key, size_t key_len,
                   char **out_token, char *err, size_t errlen) {
  int rc = -1;
  jwt_t *jwt = NULL;
  char *encoded = NULL;
  char *jti = NULL;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (out_token == NULL) {
    set_err(err, errlen, "no output given");
    return -1;
  }
  *out_token = NULL;
  if (c == NULL || c->sub == NULL || c->sub[0] == '\0' || c->issuer == NULL ||
      c->audience == NULL) {
    set_err(err, errlen, "sub, issuer and audience are required");
    return -1;
  }
  if (key == NULL || key_len == 0 || key_len > INT_MAX) {
    set_err(err, errlen, "no usable key");
    return -1;
  }
  int64_t exp;
  if (c->ttl_s <= 0 || __builtin_add_overflow(c->now, c->ttl_s, &exp) ||
      (int64_t)(long)exp != exp) {
    set_err(err, errlen, "the lifetime is out of range");
    return -1;
  }

  /* A random jti names this one token in a revocation list. */
  if (c->jti == NULL) {
    unsigned char rnd[JWT_SIGN_JTI_BYTES];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
      set_err(err, errlen, "no random bytes for the jti");
      goto cleanup;
    }
    jti = b64url_encode_alloc(rnd, sizeof(rnd), NULL);
    if (jti == NULL) {
      set_err(err, errlen, "out of memory");
      goto cleanup;
    }
  }
  if (jwt_new(&jwt) != 0) {
    set_err(err, errlen, "out of memory");
    goto cleanup;
  }
  if (jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)key_len) != 0) {
    set_err(err, errlen, "cannot set the HS256 key");
    goto cleanup;
  }
  if (jwt_add_grant(jwt, "sub", c->sub) != 0 || jwt_add_grant(jwt, "user_id", c->sub) != 0 ||
      (c->role != NULL && jwt_add_grant(jwt, "role", c->role) != 0) ||
      jwt_add_grant(jwt, "iss", c->issuer) != 0 || jwt_add_grant(jwt, "aud", c->audience) != 0 ||
      jwt_add_grant_int(jwt, "iat", (long)c->now) != 0 ||
      jwt_add_grant_int(jwt, "nbf", (long)c->now) != 0 ||
      jwt_add_grant_int(jwt, "exp", (long)exp) != 0 ||
      jwt_add_grant(jwt, "jti", c->jti != NULL ? c->jti : jti) != 0 ||
      (c->kid != NULL && jwt_add_header(jwt, "kid", c->kid) != 0)) {
    set_err(err, errlen, "cannot add the claims");
    goto cleanup;
  }
  encoded = jwt_encode_str(jwt);
  if (encoded == NULL) {
    set_err(err, errlen, "cannot encode the token");
    goto cleanup;
  }
  *out_token = encoded;
  encoded = NULL;
  rc = 0;
cleanup:
  jwt_free(jwt); /* scrubs libjwt's copy of the key */
  free(jti);
  return rc;
}

void jwt_sign_free(char *token) {
  if (token == NULL)
    return;
  OPENSSL_cleanse(token, strlen(token));
  /* libjwt allocates with malloc unless jwt_set_alloc says otherwise. */
  free(token);
}
