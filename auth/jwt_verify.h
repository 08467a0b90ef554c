#ifndef PRODUCT_AUTH_JWT_VERIFY_H
#define PRODUCT_AUTH_JWT_VERIFY_H
/* HS256 bearer-token validation, exactly CONTRACT.md's validity rules. The
 * verifier holds a prepared HMAC key (no algorithm fetch per call) and is
 * immutable after creation, so any thread may use it at once. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jwt_verifier jwt_verifier;

typedef struct jwt_verifier_options {
  const unsigned char *secret; /* copied; the caller may wipe its own copy */
  size_t secret_len;
  const char *issuer;   /* required iss */
  const char *audience; /* aud must equal or contain it */
  int64_t leeway_s;     /* allowed clock skew on exp, nbf, iat */
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
  JWT_INTERNAL,
} jwt_result;

/* Short reason for logs and metrics: "malformed", "bad_alg", "expired", ... */
const char *jwt_result_reason(jwt_result r);

#define JWT_SUB_MAX 1024
#define JWT_ROLE_MAX 256

typedef struct jwt_identity {
  char sub[JWT_SUB_MAX + 1];
  char role[JWT_ROLE_MAX + 1]; /* "" when the token has no role */
  bool has_role;
  int64_t exp;
  int64_t nbf; /* INT64_MIN when absent */
} jwt_identity;

/* Verifies token[0..len) at time now (Unix seconds). */
jwt_result jwt_verify(const jwt_verifier *v, const char *token, size_t len, int64_t now,
                      jwt_identity *out);

#endif
