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

#endif
