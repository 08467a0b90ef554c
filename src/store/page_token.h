#ifndef PRODUCT_STORE_PAGE_TOKEN_H
#define PRODUCT_STORE_PAGE_TOKEN_H
/* Opaque, tamper-evident ListProducts page tokens. A token carries the
 * keyset cursor and a digest of the filter it was issued for, authenticated
 * with HMAC-SHA256 under a key derived from the server's JWT secret, so it
 * stays valid across restarts and across replicas that share configuration. */
#include <stddef.h>

#include "store/store.h"

typedef struct page_key page_key;

/* Derives the token key from the server secret; NULL on failure. */
page_key *page_key_create(const unsigned char *secret, size_t secret_len);
void page_key_destroy(page_key *k);

#define PAGE_TOKEN_MAX 128

/* Writes a NUL-terminated base64url token into out (PAGE_TOKEN_MAX bytes). */
int page_token_encode(const page_key *k, const store_cursor *cur, const char *filter,
                      size_t filter_len, char *out, size_t outlen);
/* Non-zero when the token was not issued by a server with this key, or was
 * issued for another filter. */
int page_token_decode(const page_key *k, const char *token, size_t len, const char *filter,
                      size_t filter_len, store_cursor *out);

#endif
