#ifndef PRODUCT_METRICS_METRICS_H
#define PRODUCT_METRICS_METRICS_H
/* The metrics registry: go-grpc-prometheus' server metrics, our own
 * (auth refusals, recovered faults, store latency) and the process basics,
 * rendered in the Prometheus text format.
 *
 * Counting takes no lock: every counter lives in a fixed number of shards,
 * each thread adds to the shard it picked on first use with a relaxed atomic
 * add, and a scrape sums the shards. A scrape may see a call's `started`
 * without its `handled`; each counter on its own never goes backwards.
 *
 * The set of methods, auth reasons and store operations is fixed at creation,
 * and every series exists (at 0) from the start, as go-grpc-prometheus'
 * InitializeMetrics does. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/call.h"
#include "core/rate_limiter.h"
#include "core/rpc_status.h"

typedef struct metrics metrics;

typedef enum metrics_rpc_type {
  METRICS_UNARY = 0,
  METRICS_CLIENT_STREAM,
  METRICS_SERVER_STREAM,
  METRICS_BIDI_STREAM,
} metrics_rpc_type;

/* One method whose calls are counted. */
typedef struct metrics_method {
  const char *service; /* "product.ProductService" */
  const char *name;    /* "GetProduct" */
  metrics_rpc_type type;
  const method_desc *desc; /* the method-table row (unary methods), else NULL */
} metrics_method;

/* The store operations whose latency is observed. */
typedef enum metrics_store_op {
  METRICS_STORE_CREATE = 0,
  METRICS_STORE_GET,
  METRICS_STORE_UPDATE,
  METRICS_STORE_REMOVE,
  METRICS_STORE_LIST,
  METRICS_STORE_FLUSH,
  METRICS_STORE_OP_COUNT
} metrics_store_op;

/* Why the server closed a connection it judged abusive. */
typedef enum metrics_abuse_reason {
  METRICS_ABUSE_RAPID_RESET = 0,  /* too many calls cancelled by the client */
  METRICS_ABUSE_UNKNOWN_METHODS, /* too many calls to methods nobody serves */
  METRICS_ABUSE_MEMORY,          /* over the memory limit: the client reading least */
  METRICS_ABUSE_HEADER_BLOCK,    /* a header block over its byte or frame limit */
  METRICS_ABUSE_PING_FLOOD,
  METRICS_ABUSE_SETTINGS_FLOOD,
  METRICS_ABUSE_EMPTY_FRAMES,    /* empty DATA frames, CVE-2019-9518 */
  METRICS_ABUSE_RST_FLOOD,
  METRICS_ABUSE_ZERO_WINDOW,
  METRICS_ABUSE_UNACKED_SETTINGS, /* streams opened before our SETTINGS were acknowledged */
  METRICS_ABUSE_GOAWAY_FLOOD,
  METRICS_ABUSE_SMALL_DATA,      /* request messages fed in tiny DATA frames */
  METRICS_ABUSE_PENDING_DATA,    /* too many request bytes on unfinished streams */
  METRICS_ABUSE_REASON_COUNT
} metrics_abuse_reason;

typedef struct metrics_options {
  const metrics_method *methods;
  size_t n_methods;
  /* Reasons the auth interceptor refuses a call with ("expired", ...);
   * duplicates are merged, anything else is counted as "other". */
  const char *const *auth_reasons;
  size_t n_auth_reasons;
} metrics_options;

/* The strings in opt must outlive the registry (string literals, the method
 * table). Non-zero on out of memory or an empty method name. */
int metrics_create(const metrics_options *opt, metrics **out);
void metrics_destroy(metrics *m);

/* A method's id for the counting calls, or -1 when it is not counted. */
int metrics_method_of(const metrics *m, const method_desc *desc);
int metrics_method_find(const metrics *m, const char *service, const char *name);

/* Counting; cheap and lock-free. An id of -1 is ignored. */
void metrics_started(metrics *m, int method);
void metrics_msg_received(metrics *m, int method);
void metrics_msg_sent(metrics *m, int method);
void metrics_handled(metrics *m, int method, rpc_code code, int64_t duration_ns);
void metrics_auth_rejected(metrics *m, const char *reason);
/* product_jwt_keys: the signing keys in force (1 for a single secret). */
void metrics_set_jwt_keys(metrics *m, size_t n);
void metrics_fault_recovered(metrics *m, int method);
void metrics_store_observe(metrics *m, metrics_store_op op, int64_t duration_ns);
/* Overload protection: a call refused while the memory limit is exceeded,
 * and an abusive connection closed. */
void metrics_shed_call(metrics *m);
/* product_guard_uncovered_connections_total: connections accepted on our
 * listeners that the HTTP/2 guard could not give a record (served with no
 * limit of the guard's). */
void metrics_guard_uncovered(metrics *m, uint64_t n);
/* product_guard_untied_tls_connections_total: TLS connections whose SSL the
 * guard could not tie to its connection (no rapid-reset count per connection). */
void metrics_guard_untied(metrics *m, uint64_t n);
/* product_spans_dropped_total: spans the exporter could not send. */
void metrics_spans_dropped(metrics *m, uint64_t n);
void metrics_abusive_closed(metrics *m, metrics_abuse_reason reason);
/* A call refused with RESOURCE_EXHAUSTED by a rate limit (core/rate_limiter.h). */
void metrics_rate_limited(metrics *m, rl_limit limit);

/* Everything in the Prometheus text exposition format 0.0.4, process
 * metrics included. *out is malloc'd (NUL-terminated); the caller frees it.
 * Non-zero on out of memory. */
int metrics_render(const metrics *m, char **out, size_t *len);

/* The Content-Type of what metrics_render produces. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
