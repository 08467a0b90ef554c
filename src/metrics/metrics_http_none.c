/* The metrics endpoint when the build found no libmicrohttpd (CMake then
 * leaves metrics_http.c out): asking for it is a start-up error. */
#include "metrics/metrics_http.h"

#ifndef PRODUCT_HAVE_MHD
#include <stdio.h>

int metrics_http_start(metrics *m, const config_addr *listen, metrics_http **out, int *bound_port,
                       char *err, size_t errlen) {
  (void)m;
  (void)listen;
  (void)bound_port;
  *out = NULL;
  snprintf(err, errlen, "--metrics-listen: this build has no libmicrohttpd");
  return -1;
}

void metrics_http_stop(metrics_http *h) { (void)h; }
#else
/* ISO C wants at least one declaration per file. */
typedef int metrics_http_none_unused;
#endif
