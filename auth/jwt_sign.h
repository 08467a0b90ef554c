#ifndef PRODUCT_AUTH_JWT_SIGN_H
#define PRODUCT_AUTH_JWT_SIGN_H
/* Minting HS256 tokens that jwt_verify accepts (mint-token, tests). */
#include <stddef.h>
#include <stdint.h>

typedef struct jwt_sign_claims {
  const char *sub;      /* required, non-empty; also written as user_id */
  const char *role;     /* NULL: no role claim */
  const char *issuer;   /* iss */
  const char *audience; /* aud (a single string) */
  int64_t now;          /* iat and nbf */
  int64_t ttl_s;        /* exp = now + ttl_s; must be > 0 */
  const char *kid;      /* NULL: no kid header (single-secret mode) */
  const char *jti;      /* NULL: a random one (JWT_SIGN_JTI_BYTES, base64url) */
} jwt_sign_claims;

#define JWT_SIGN_JTI_BYTES 16 /* 128 bits */

/* Signs the claims with key[0..key_len). On success *out_token is a compact
 * JWT (NUL-terminated) that the caller releases with jwt_sign_free. Returns
 * non-zero with a one-line reason in err (never the key) otherwise. */
int jwt_sign_hs256(const jwt_sign_claims *c, const unsigned char *key, size_t key_len,
                   char **out_token, char *err, size_t errlen);

/* Wipes and frees a token from jwt_sign_hs256 (a token is a credential). */
void jwt_sign_free(char *token);

#endif
