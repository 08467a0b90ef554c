#ifndef PRODUCT_TRANSPORT_GRPC_LOG_H
#define PRODUCT_TRANSPORT_GRPC_LOG_H
#include <stdbool.h>
/* Routes the core's own log lines (TLS handshake failures, ...) through our
 * structured log, so that stderr stays one JSON object per line. Install
 * before grpc_init(). */
void grpc_log_install(void);

/* While quiet, the core's lines are dropped: start-up failures are reported
 * by us as exactly one line ("port in use"), not twice. */
void grpc_log_set_quiet(bool quiet);
#endif
