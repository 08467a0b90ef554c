#ifndef PRODUCT_AUTH_TTL_H
#define PRODUCT_AUTH_TTL_H
/* Token lifetimes as mint-token takes them: "90s", "15m", "1h", "7d" or plain
 * seconds ("3600"). */
#include <stdint.h>

/* The longest lifetime accepted: ten years of 365 days. */
#define TTL_MAX_SECONDS ((int64_t)3650 * 86400)

/* Parses s into *out_seconds. Returns 0, or -1 (and leaves *out_seconds
 * alone) for an empty string, a sign, whitespace, an unknown or repeated
 * unit, trailing bytes, zero, or more than TTL_MAX_SECONDS. */
int ttl_parse(const char *s, int64_t *out_seconds);

#endif
