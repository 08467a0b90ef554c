#ifndef PRODUCT_AUTH_PAGE_TOKEN_H
#define PRODUCT_AUTH_PAGE_TOKEN_H
/* Opaque, tamper-evident ListProducts page tokens. A token carries the
 * keyset cursor and a digest of the filter it was issued for, authenticated
 * with HMAC-SHA256 under a key derived from the server's JWT secret, so it
 * stays valid across restarts and across replicas that share configuration.
 * With a key set, a page_keyset holds one such key per key of the set: a
 * token is minted under the signing key's and names it by a short tag, and
 * verifies wherever that key is still in the set. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a token carries: where the next page starts. It has the store
 * cursor's fields, but is a type of its own so that identity does not
 * depend on the store; the service copies one into the other. */
#define PAGE_CURSOR_ID_LEN 36 /* canonical UUID text */
typedef struct page_cursor {
  int64_t created_us;
  char id[PAGE_CURSOR_ID_LEN + 1];
} page_cursor;

typedef struct page_key page_key;

/* Derives the token key from the server secret; NULL on failure. */
page_key *page_key_create(const unsigned char *secret, size_t secret_len);
void page_key_destroy(page_key *k);

#define PAGE_TOKEN_MAX 128

/* Writes a NUL-terminated base64url token into out (PAGE_TOKEN_MAX bytes). */
int page_token_encode(const page_key *k, const page_cursor *cur, const char *filter,
                      size_t filter_len, char *out, size_t outlen);
/* Non-zero when the token was not issued by a server with this key, or was
 * issued for another filter. */
int page_token_decode(const page_key *k, const char *token, size_t len, const char *filter,
                      size_t filter_len, page_cursor *out);

/* One key of a key set: its kid (kid_len bytes) and secret. */
typedef struct page_keyset_entry {
  const char *kid;
  size_t kid_len;
  const unsigned char *secret;
  size_t secret_len;
} page_keyset_entry;

typedef struct page_keyset page_keyset;

/* Derives a key per entry (as page_key_create does); tokens are minted with
 * keys[signer]'s. The entries may be wiped afterwards. NULL on failure. */
page_keyset *page_keyset_create(const page_keyset_entry *keys, size_t n, size_t signer);
void page_keyset_destroy(page_keyset *ks);

/* As page_token_encode/decode, in the key-set format (another length and
 * version, so neither format decodes as the other). Decoding fails for a
 * token whose key is not in ks. */
int page_keyset_encode(const page_keyset *ks, const page_cursor *cur, const char *filter,
                       size_t filter_len, char *out, size_t outlen);
int page_keyset_decode(const page_keyset *ks, const char *token, size_t len, const char *filter,
                       size_t filter_len, page_cursor *out);

#endif
