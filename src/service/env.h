#ifndef PRODUCT_SERVICE_ENV_H
#define PRODUCT_SERVICE_ENV_H
/* What handlers and interceptors share for the server's lifetime. Built once
 * at start-up by main.c; read-only afterwards (each member is thread-safe). */
#include "auth/jwt_verify.h"
#include "config/config.h"
#include "auth/page_token.h"
#include "store/store.h"

struct metrics;
struct keyring;
struct health_state;
struct rate_limiter;
struct verified_tokens;
struct tracer;

struct service_env {
  const config *cfg;
  store *store;
  const jwt_verifier *verifier; /* single-secret mode without a revocation list */
  struct keyring *keyring;      /* otherwise: the reloadable keys and revocations */
  const page_key *page_key;     /* single-secret mode; a key set's are in its snapshot */
  struct metrics *metrics; /* NULL when metrics are off */
  struct health_state *health;
  /* Rate limits (interceptors/rate_limit.c); both NULL when every limit is
   * off. */
  struct rate_limiter *limiter;
  struct verified_tokens *verified;
  struct tracer *tracer; /* NULL when spans are not exported */
};

#endif
