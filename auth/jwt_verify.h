#ifndef PRODUCT_AUTH_JWT_VERIFY_H
#define PRODUCT_AUTH_JWT_VERIFY_H
/* HS256 bearer-token validation, exactly product-server(8)'s validity rules. The
 * verifier holds a prepared HMAC key (no algorithm fetch per call) and is
 * immutable after creation, so any thread may use it at once. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jwt_verifier jwt_verifier;

/* One key of a key set: tokens must name it in their "kid" header. */
typedef struct jwt_key {
  const char *kid; /* NUL-terminated */
  const unsigned char *secret;
  size_t secret_len;
} jwt_key;

typedef struct jwt_verifier_options {
  /* Single-secret mode: secret. Key-set mode (n_keys > 0): keys, and secret
   * is ignored. Both are copied into prepared HMAC contexts; the caller may
   * wipe its own copies. */
  const unsigned char *secret;
  size_t secret_len;
  const char *issuer;   /* required iss */
  const char *audience; /* aud must equal or contain it */
  int64_t leeway_s;     /* allowed clock skew on exp, nbf, iat */
  const jwt_key *keys;
  size_t n_keys;
} jwt_verifier_options;

int jwt_verifier_create(const jwt_verifier_options *opt, jwt_verifier **out);
void jwt_verifier_destroy(jwt_verifier *v); /* wipes the key */

typedef enum jwt_result {
  JWT_OK = 0,
  JWT_MALFORMED,         /* not three unpadded base64url segments, bad JSON */
  JWT_BAD_ALG,           /* alg is not exactly HS256 */
  JWT_UNSUPPORTED_CRIT,  /* a crit header */
  JWT_BAD_SIGNATURE,
  JWT_EXPIRED,           /* exp missing handled as JWT_BAD_CLAIMS */
  JWT_NOT_YET_VALID,     /* nbf */
  JWT_ISSUED_IN_FUTURE,  /* iat */
  JWT_WRONG_ISSUER,
  JWT_WRONG_AUDIENCE,
  JWT_BAD_CLAIMS,        /* a claim missing or of the wrong JSON type */
  JWT_UNKNOWN_KID,       /* key-set mode: no kid, or one not in the set */
  JWT_REVOKED,           /* by the revocation list (auth/keyring.c) */
  JWT_INTERNAL,
} jwt_result;

/* Short reason for logs and metrics: "malformed", "bad_alg", "expired", ... */
const char *jwt_result_reason(jwt_result r);

#define JWT_SUB_MAX 1024
#define JWT_ROLE_MAX 256
#define JWT_JTI_MAX 1024

typedef struct jwt_identity {
  char sub[JWT_SUB_MAX + 1];
  char role[JWT_ROLE_MAX + 1]; /* "" when the token has no role */
  bool has_role;
  int64_t exp;
  int64_t nbf; /* INT64_MIN when absent */
  /* For the revocation list only: a jti that is not a string of at most
   * JWT_JTI_MAX bytes is not kept (no list entry could name it). */
  char jti[JWT_JTI_MAX + 1];
  bool has_jti;
  int64_t iat;
  bool has_iat;
} jwt_identity;

/* Verifies token[0..len) at time now (Unix seconds). */
jwt_result jwt_verify(const jwt_verifier *v, const char *token, size_t len, int64_t now,
                      jwt_identity *out);

#endif
