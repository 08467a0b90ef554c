#ifndef PRODUCT_AUTH_BEARER_H
#define PRODUCT_AUTH_BEARER_H
/* Parses an `authorization` metadata value: "Bearer <token>", the scheme
 * word case-insensitive (RFC 6750 / RFC 9110). */
#include <stddef.h>

typedef enum bearer_result {
  BEARER_OK = 0,
  BEARER_MISSING,    /* no authorization entry */
  BEARER_DUPLICATE,  /* more than one entry */
  BEARER_BAD_SCHEME, /* not Bearer (Basic, ...) */
  BEARER_MALFORMED,  /* empty token, bad separator */
} bearer_result;

const char *bearer_result_reason(bearer_result r); /* "no_token", "duplicate_authorization", ... */

/* count is how many authorization entries the call carried; value/len the
 * first. On BEARER_OK, token/token_len point into value. */
bearer_result bearer_parse(unsigned count, const char *value, size_t len, const char **token,
                           size_t *token_len);

#endif
