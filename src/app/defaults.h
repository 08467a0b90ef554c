#ifndef PRODUCT_APP_DEFAULTS_H
#define PRODUCT_APP_DEFAULTS_H
/* The server's default tables. They name rows of several layers (the
 * service's method table, auth's rejection reasons, the interceptors), so
 * they live here, in the one place that wires the layers together, and no
 * layer below has to know the others. */
#include "interceptors/pipeline.h"
#include "metrics/metrics.h"

/* The server's chain: recovery -> logging -> tracing -> metrics -> rate_limit -> auth. */
const pipeline *pipeline_default(void);

/* The server's registry: every row of the method table, both reflection
 * streams, and every reason the auth interceptor can give. */
int metrics_create_default(metrics **out);

#endif
