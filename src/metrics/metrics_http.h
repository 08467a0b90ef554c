#ifndef PRODUCT_METRICS_METRICS_HTTP_H
#define PRODUCT_METRICS_METRICS_HTTP_H
/* GET /metrics in plaintext HTTP on its own address, served by
 * libmicrohttpd on one internal thread. Every other path is 404, every other
 * method on /metrics 405. Built only with libmicrohttpd (metrics_http.c);
 * without it (metrics_http_none.c) starting fails with a clear reason. */
#include <stddef.h>

#include "config/config.h"
#include "metrics/metrics.h"

typedef struct metrics_http metrics_http;

/* Binds listen (port 0 picks a free port, reported in *bound_port) and
 * starts serving m, which must outlive the endpoint. On failure writes one
 * line into err and returns non-zero. Call after the stop signals are
 * blocked: the serving thread inherits the mask. */
int metrics_http_start(metrics *m, const config_addr *listen, metrics_http **out, int *bound_port,
                       char *err, size_t errlen);
/* Stops accepting, closes every connection, joins the thread, frees. */
void metrics_http_stop(metrics_http *h);

#endif
