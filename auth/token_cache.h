#ifndef PRODUCT_AUTH_TOKEN_CACHE_H
#define PRODUCT_AUTH_TOKEN_CACHE_H
/* A small cache of verified tokens (as Envoy's jwt_authn keeps one), keyed by
 * the exact token bytes. Only tokens that passed jwt_verify are ever put in,
 * so forged tokens cannot grow it or evict good entries; it has a fixed size.
 * A hit still checks exp and nbf against the clock (the caller checks the
 * role against the method). One cache per thread: no locks. Every entry
 * carries the generation of the keys and revocations it was verified under
 * (auth/keyring.h; 0 in single-secret mode): a lookup under another
 * generation is a miss, so a reload (a removed key, a new revocation) can
 * never be bypassed by a cached token. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt_verify.h"

typedef struct token_cache token_cache;

token_cache *token_cache_create(void);
void token_cache_destroy(token_cache *c);
void token_cache_clear(token_cache *c);

/* On a hit whose token is still within its validity window (now, leeway)
 * fills sub/role and returns true. */
bool token_cache_get(token_cache *c, const char *token, size_t len, uint64_t gen, int64_t now,
                     int64_t leeway, jwt_identity *out);
/* Remembers a verified token; tokens or claims too large for a slot are
 * simply not cached. */
void token_cache_put(token_cache *c, const char *token, size_t len, uint64_t gen,
                     const jwt_identity *id);

#endif
