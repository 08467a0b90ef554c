#ifndef PRODUCT_INTERCEPTORS_INTERCEPTORS_H
#define PRODUCT_INTERCEPTORS_INTERCEPTORS_H
/* The interceptors the server chains, one per file. */
#include <stdio.h>

#include "interceptors/pipeline.h"

extern const interceptor interceptor_recovery; /* recovery.c */
extern const interceptor interceptor_logging;  /* logging.c */
extern const interceptor interceptor_metrics;  /* metrics.c */
extern const interceptor interceptor_rate_limit; /* rate_limit.c */
extern const interceptor interceptor_auth;     /* auth.c */
extern const interceptor interceptor_tracing;  /* tracing.c */

/* The server span of a call the pipeline does not run (shed over the memory
 * limit, reset before it was read, a health Watch, a reflection stream):
 * sampled and exported like any other call's, without child spans. The
 * texts of m live as long as the process; t as the transport filled it.
 * Does nothing when spans are not exported. */
void tracing_outside_pipeline(const service_env *env, const trace_ctx *t, const method_desc *m,
                              rpc_code code, const char *message, int64_t start_ns,
                              const char *peer, int port);

/* The same for a call to a method nobody serves (UNIMPLEMENTED): its span
 * is named after the path the client sent (len bytes, not NUL-terminated),
 * or "_OTHER" when that is no "/service/method" of printable ASCII up to
 * 128 bytes (the name is the client's choice: it must stay valid UTF-8 and
 * bounded in what it adds to a collector). */
void tracing_unknown_method(const service_env *env, const trace_ctx *t, const char *path,
                            size_t len, const char *message, int64_t start_ns, const char *peer,
                            int port);

#endif
