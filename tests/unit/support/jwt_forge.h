#ifndef PRODUCT_TESTS_JWT_FORGE_H
#define PRODUCT_TESTS_JWT_FORGE_H
/* Hand-built JWTs for tests: any header and payload text, signed with any
 * HMAC digest, so that malformed and hostile tokens can be crafted byte by
 * byte. Not for production use. */
#include <stddef.h>

/* Unpadded base64url of in[0..len) into out (NUL-terminated). Returns the
 * length written, or 0 when out is too small. */
size_t forge_b64url(const void *in, size_t len, char *out, size_t cap);

/* "b64(header).b64(payload).b64(HMAC-<digest>(secret, first two parts))".
 * digest is an OpenSSL name ("SHA256", "SHA384", "SHA512"); NULL leaves the
 * signature segment empty. Returns the token length, or 0 on failure. */
size_t forge_token(char *out, size_t cap, const char *header_json, const char *payload_json,
                   const char *secret, const char *digest);

/* forge_token with the standard header {"alg":"HS256","typ":"JWT"}. */
size_t forge_hs256(char *out, size_t cap, const char *payload_json, const char *secret);

#endif
