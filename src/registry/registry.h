#ifndef PRODUCT_REGISTRY_REGISTRY_H
#define PRODUCT_REGISTRY_REGISTRY_H
/* Service registration in etcd (product-server(8), "Service registration"): the
 * key /services/product-service/<advertise-addr>, value the advertise
 * address, attached to a lease of ttl_s seconds that a thread of its own
 * keeps alive over its own gRPC channel. When etcd cannot be reached, at
 * start or later, the thread retries with a capped exponential backoff and
 * registers again under a new lease; the server never waits for it.
 * Events are logged as JSON lines ("etcd: ..."). */
#include <stddef.h>
#include <stdint.h>

#define REGISTRY_KEY_PREFIX "/services/product-service/"
#define REGISTRY_DEFAULT_TTL_S 10

typedef struct registry registry;

/* Called on the registration thread just before it waits out a backoff of
 * ms milliseconds (after a failed attempt or a lost session). */
typedef void (*registry_pause_fn)(void *arg, int64_t ms);

typedef struct registry_options {
  const char *const *endpoints; /* "http://HOST:PORT" ...; tried in turn */
  size_t n_endpoints;
  const char *advertise;        /* "HOST:PORT" */
  int64_t ttl_s;                /* 0 = REGISTRY_DEFAULT_TTL_S */
  int64_t backoff_min_ms;       /* 0 = 500 */
  int64_t backoff_max_ms;       /* 0 = 5000 */
  registry_pause_fn on_pause;   /* NULL = none; lets a test stop it inside a backoff */
  void *on_pause_arg;
} registry_options;

/* Copies what it needs from opt and starts the thread (it returns at once;
 * registering happens in the background). Non-zero with a reason in err only
 * for a bad option or when the thread cannot be created. */
int registry_start(const registry_options *opt, registry **out, char *err, size_t errlen);

/* Stops: the keep-alive stream is cancelled, the lease revoked (so the key
 * is gone before the server drains; bounded by about a second when etcd does
 * not answer), the thread joined and everything freed. NULL is a no-op. */
void registry_stop(registry *r);

/* The next retry delay after `current` (doubling, capped); the first delay is
 * min. Exposed for the unit test. */
int64_t registry_next_backoff(int64_t current, int64_t min, int64_t max);

#endif
