#ifndef PRODUCT_AUTH_JWKS_H
#define PRODUCT_AUTH_JWKS_H
/* A JWK Set (RFC 7517) of HS256 signing keys, as product-server(8)'s "Signing
 * keys" section allows it: {"keys": [...]}, each key with "kty": "oct", a
 * unique non-empty "kid", "k" (unpadded base64url, at least 32 bytes
 * decoded), optionally "alg": "HS256" and "key_ops": ["sign", "verify"] (the
 * default) or ["verify"]. Anything else refuses the whole set, with one line
 * naming the key by kid or index, never its k. The decoded keys are wiped
 * when the set is destroyed, and jansson's copies of the text when it frees
 * them (the first parse makes jansson's free function wipe every block). */
#include <stdbool.h>
#include <stddef.h>

#define JWKS_KEY_MIN_LEN 32
#define JWKS_KEY_MAX_LEN 4096
#define JWKS_KID_MAX 256
#define JWKS_MAX_KEYS 256
#define JWKS_FILE_MAX (1u << 20)

typedef struct jwks jwks;

typedef struct jwks_key {
  const char *kid; /* NUL-terminated, kid_len bytes */
  size_t kid_len;
  const unsigned char *k;
  size_t k_len;
  bool can_sign; /* false for a ["verify"] key */
} jwks_key;

int jwks_parse(const char *text, size_t len, jwks **out, char *err, size_t errlen);
/* Reads and parses a file (at most JWKS_FILE_MAX bytes). */
int jwks_load_file(const char *path, jwks **out, char *err, size_t errlen);
void jwks_destroy(jwks *s);

size_t jwks_count(const jwks *s);
const jwks_key *jwks_key_at(const jwks *s, size_t i);
/* The key named kid, or NULL. */
const jwks_key *jwks_find(const jwks *s, const char *kid);
/* The last key in file order that may sign, or NULL. */
const jwks_key *jwks_signing_key(const jwks *s);

/* Copies kid into out for a message: printable ASCII kept, anything else
 * (and a kid longer than out) shown as '?' / cut with "...". */
void jwks_kid_for_log(const char *kid, char *out, size_t outlen);

#endif
