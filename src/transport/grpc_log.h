#ifndef PRODUCT_TRANSPORT_GRPC_LOG_H
#define PRODUCT_TRANSPORT_GRPC_LOG_H
/* Routes the core's own log lines (TLS handshake failures, ...) through our
 * structured log, so that stderr stays one JSON object per line. Install
 * before grpc_init(). */
void grpc_log_install(void);
#endif
