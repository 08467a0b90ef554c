#ifndef PRODUCT_AUTH_VERIFIED_TOKENS_H
#define PRODUCT_AUTH_VERIFIED_TOKENS_H
/* The tokens the server verified recently, shared by every worker thread:
 * the rate limiter names a call's caller by its token's sub without any HMAC,
 * and lets a token already verified through while its client address is
 * throttled for failed authentications (product-server(8)). Only tokens that
 * passed verification are put in, so forged tokens cannot evict good ones.
 * Bounded: a fixed number of slots, a newer token replaces the one in its
 * slot (one no longer held counts as new). Keyed by the exact token bytes;
 * a lock per group of slots (no global lock). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct verified_tokens verified_tokens;

/* slots: how many tokens are held at most (rounded up to a power of two). */
verified_tokens *verified_tokens_create(size_t slots);
void verified_tokens_destroy(verified_tokens *v); /* wipes the token copies */

/* A held token valid at `now` (seconds, valid while now < valid_until):
 * copies its sub (NUL-terminated, truncated to subcap) and returns true. */
bool verified_tokens_get(verified_tokens *v, const char *token, size_t len, int64_t now,
                         char *sub, size_t subcap);
/* Holds a verified token with its sub until valid_until (seconds). Tokens
 * longer than VERIFIED_TOKEN_MAX are not held. */
void verified_tokens_put(verified_tokens *v, const char *token, size_t len, const char *sub,
                         int64_t valid_until);
/* Forgets a token (it was refused after all: a new revocation or key set). */
void verified_tokens_remove(verified_tokens *v, const char *token, size_t len);

#define VERIFIED_TOKEN_MAX 2048

#endif
