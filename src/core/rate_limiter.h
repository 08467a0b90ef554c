#ifndef PRODUCT_CORE_RATE_LIMITER_H
#define PRODUCT_CORE_RATE_LIMITER_H
/* Per-caller token buckets (product-server(8), "Rate limits"): the call
 * limits by method class and the failed-authentication budget of a client
 * address. A bucket holds at most `burst` tokens and refills at `rate` per
 * second, computed from the caller's clock when it is used: no timer thread.
 *
 * The callers live in a table bounded by `max_keys` entries: when it is full
 * the least recently seen caller of the shard is forgotten (it comes back with
 * full buckets). The table is split into shards with a lock each, chosen by a
 * seeded hash of the caller, so two calls contend only when their callers
 * share a shard; least recently seen is therefore per shard. Memory grows
 * with the callers seen, up to the bound, and never beyond. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bucket's numbers; rate 0 means the limit is off. */
typedef struct rl_rate {
  double rate;  /* tokens per second, > 0 when on */
  double burst; /* capacity, >= 1 when on */
} rl_rate;

typedef enum rl_limit {
  RL_READ = 0,       /* GetProduct, ListProducts */
  RL_WRITE,          /* CreateProduct, UpdateProduct, DeleteProduct */
  RL_AUTH_FAILURE,   /* failed authentications of one client address */
  RL_LIMIT_COUNT
} rl_limit;

/* "read", "write", "auth_failure": the log field and the metric label. */
const char *rl_limit_name(rl_limit l);

/* ---- one bucket, pure arithmetic (tested with an injected clock) ---- */

typedef struct rl_bucket {
  double tokens;
  int64_t last_ns; /* the clock when tokens was last brought up to date */
} rl_bucket;

/* A full bucket at now_ns. */
void rl_bucket_init(rl_bucket *b, const rl_rate *r, int64_t now_ns);
/* Brings the bucket up to now_ns. A clock that went backwards adds nothing
 * (and the time is not credited twice when it catches up again). */
void rl_bucket_refill(rl_bucket *b, const rl_rate *r, int64_t now_ns);
/* Takes one token: true. Without a whole token: false and *wait_ms = the
 * wait until one is back (whole milliseconds, rounded up, at least 1). */
bool rl_bucket_take(rl_bucket *b, const rl_rate *r, int64_t now_ns, int64_t *wait_ms);
/* Whether a token could be taken, without taking it (same *wait_ms). */
bool rl_bucket_has(rl_bucket *b, const rl_rate *r, int64_t now_ns, int64_t *wait_ms);
/* Takes one token whatever is left; the bucket never goes below 0. */
void rl_bucket_charge(rl_bucket *b, const rl_rate *r, int64_t now_ns);

/* ---- the caller table ---- */

typedef struct rate_limiter rate_limiter;

/* The limits (rates[RL_*], rate 0 = off) and the table bound (>= 1). NULL on
 * out of memory. */
rate_limiter *rate_limiter_create(const rl_rate rates[RL_LIMIT_COUNT], size_t max_keys);
void rate_limiter_destroy(rate_limiter *rl);

/* Whether this limit is on. */
bool rate_limiter_on(const rate_limiter *rl, rl_limit l);

/* A caller is named by a kind and a text: RL_CALLER_SUB (a token's sub) or
 * RL_CALLER_ADDR (rl_peer_address's output). */
typedef enum rl_caller_kind { RL_CALLER_SUB = 's', RL_CALLER_ADDR = 'a' } rl_caller_kind;

/* Takes a token from the caller's bucket for l: true, or false with the wait
 * in *wait_ms. An off limit always allows. */
bool rate_limiter_take(rate_limiter *rl, rl_limit l, rl_caller_kind kind, const char *caller,
                       int64_t now_ns, int64_t *wait_ms);
/* Whether the caller's bucket for l holds a token, without taking it; a
 * caller not in the table has a full bucket (and is not added). */
bool rate_limiter_has(rate_limiter *rl, rl_limit l, rl_caller_kind kind, const char *caller,
                      int64_t now_ns, int64_t *wait_ms);
/* Takes a token whatever is left (never below 0). */
void rate_limiter_charge(rate_limiter *rl, rl_limit l, rl_caller_kind kind, const char *caller,
                         int64_t now_ns);

/* Callers in the table now, and bytes the table holds (its index and the
 * entries allocated so far): for tests and the documentation. */
size_t rate_limiter_keys(rate_limiter *rl);
size_t rate_limiter_bytes(rate_limiter *rl);

/* The client address of a transport peer text: "ipv4:10.0.0.7:5123" ->
 * "10.0.0.7"; "ipv6:[2001:db8:1:2:3::4]:5123" -> "2001:db8:1:2::/64" (its
 * /64 prefix: one host gets a whole /64); "unix:..." -> "unix"; anything
 * else is kept as it is (truncated to fit). */
void rl_peer_address(const char *peer, char *out, size_t outlen);

#endif
