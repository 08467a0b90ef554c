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

#endif
