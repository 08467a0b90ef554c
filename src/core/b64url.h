#ifndef PRODUCT_AUTH_B64URL_H
#define PRODUCT_AUTH_B64URL_H
/* Strict unpadded base64url (RFC 4648 section 5) on top of OpenSSL's base64
 * codec: the alphabet is translated to the standard one and padding added
 * before EVP_DecodeBlock, and the result is re-encoded and compared, so a
 * value with '=', '+', '/', whitespace or non-zero leftover bits is refused
 * (every byte string has exactly one accepted text). */
#include <stdbool.h>
#include <stddef.h>

/* Decodes in[0..len) into a new buffer (*out, *out_len; free with
 * b64url_free). False on any deviation or out of memory (*oom says which). */
bool b64url_decode_alloc(const char *in, size_t len, unsigned char **out, size_t *out_len,
                         bool *oom);
/* Encodes in[0..len) as unpadded base64url; NUL-terminated, for b64url_free.
 * NULL on out of memory. */
char *b64url_encode_alloc(const unsigned char *in, size_t len, size_t *out_len);
/* Wipes n bytes and frees. */
void b64url_free(void *p, size_t n);

#endif
