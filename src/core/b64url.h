#ifndef PRODUCT_CORE_B64URL_H
#define PRODUCT_CORE_B64URL_H
/* The process's one base64url (RFC 4648 section 5): unpadded, and strict
 * on the way in. A text with '=', '+', '/', white space, a length of 1 mod
 * 4 or non-zero leftover bits is refused, so every byte string has exactly
 * one accepted text (a flipped last character of a signature or a page
 * token is never "the same" value). Encoding is OpenSSL's EVP_EncodeBlock
 * with the alphabet translated; decoding is a table, with no allocation and
 * no second pass, because it runs on every token a client sends. */
#include <stdbool.h>
#include <stddef.h>

/* Characters of the encoding of n bytes (no padding, no NUL). */
static inline size_t b64url_encoded_len(size_t n) { return (n * 4 + 2) / 3; }

/* Whether c is in the base64url alphabet. */
static inline bool b64url_is_alpha(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

/* Encodes in[0..len) into out, NUL-terminated; *out_len (may be NULL) gets
 * the characters written. -1 (out untouched) when out_cap is below
 * b64url_encoded_len(len) + 1. */
int b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_cap,
                  size_t *out_len);
/* Decodes in[0..len) into out[0..out_cap); false on any deviation from the
 * one accepted text, or when the bytes would not fit. */
bool b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_cap,
                   size_t *out_len);
/* The rules of b64url_decode (alphabet, length, leftover bits) without
 * decoding. */
bool b64url_is_canonical(const char *in, size_t len);

/* As above, into a new buffer for b64url_free. Decoding: false on any
 * deviation or out of memory (*oom says which); len 0 is refused. */
bool b64url_decode_alloc(const char *in, size_t len, unsigned char **out, size_t *out_len,
                         bool *oom);
/* NULL on out of memory. */
char *b64url_encode_alloc(const unsigned char *in, size_t len, size_t *out_len);
/* Wipes n bytes and frees. */
void b64url_free(void *p, size_t n);

#endif
