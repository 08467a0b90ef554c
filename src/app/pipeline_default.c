/* The server's chain, outermost first. Adding an interceptor is one file and
 * one entry here. */
#include "app/defaults.h"

#include "interceptors/interceptors.h"

static const interceptor *const chain[] = {
    &interceptor_recovery,
    &interceptor_logging,
    &interceptor_tracing,
    &interceptor_metrics,
    &interceptor_rate_limit, /* before auth: a refused call costs no HMAC */
    &interceptor_auth,
};

static const pipeline default_pipeline = {
    .chain = chain,
    .n = sizeof chain / sizeof chain[0],
};

const pipeline *pipeline_default(void) { return &default_pipeline; }
