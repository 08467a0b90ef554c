#ifndef PRODUCT_AUTH_REVOCATIONS_H
#define PRODUCT_AUTH_REVOCATIONS_H
/* The revocation list (product-server(8), "Signing keys"): UTF-8 text, one entry a
 * line; "jti VALUE" revokes the token with that jti, "sub VALUE BEFORE"
 * every token of that sub issued (iat) before BEFORE (Unix seconds). Fields
 * are separated by spaces or tabs; '#' at the start of a field starts a
 * comment that runs to the end of the line; blank lines are ignored; a
 * trailing '\r' is allowed. Any other line (a control character, bytes
 * that are not UTF-8) makes the whole list invalid.
 * Immutable once parsed; lookups are binary searches. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REVOCATIONS_VALUE_MAX 1024 /* as JWT_SUB_MAX */
#define REVOCATIONS_FILE_MAX (16u << 20)

typedef struct revocations revocations;

/* Non-zero with "line N: why" in err on a malformed line. */
int revocations_parse(const char *text, size_t len, revocations **out, char *err, size_t errlen);
int revocations_load_file(const char *path, revocations **out, char *err, size_t errlen);
void revocations_destroy(revocations *r);

/* True when a token with this jti (NULL: none), sub and iat is revoked. A
 * token without iat counts as issued before any BEFORE: nothing proves it
 * is newer. */
bool revocations_match(const revocations *r, const char *jti, const char *sub, bool has_iat,
                       int64_t iat);
size_t revocations_count(const revocations *r); /* entries, for logs */

#endif
