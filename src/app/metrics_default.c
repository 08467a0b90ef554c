/* The server's registry: what the API port serves, so that every series a
 * dashboard expects exists from the start (go-grpc-prometheus pre-registers
 * every method of every registered service the same way). */
#include "app/defaults.h"

#include <stdlib.h>

#include "auth/bearer.h"
#include "auth/jwt_verify.h"
#include "service/methods.h"

/* Streams served outside the method table (src/transport/reflection.c).
 * Health Watch is not listed: nothing counts it yet. */
static const metrics_method streams[] = {
    {.service = "grpc.reflection.v1.ServerReflection",
     .name = "ServerReflectionInfo",
     .type = METRICS_BIDI_STREAM},
    {.service = "grpc.reflection.v1alpha.ServerReflection",
     .name = "ServerReflectionInfo",
     .type = METRICS_BIDI_STREAM},
};
#define N_STREAMS (sizeof streams / sizeof streams[0])

int metrics_create_default(metrics **out) {
  *out = NULL;
  size_t n = service_methods_count + N_STREAMS;
  metrics_method *methods = calloc(n, sizeof(*methods));
  if (!methods) return -1;
  for (size_t i = 0; i < service_methods_count; i++) {
    const method_desc *d = service_methods[i];
    methods[i] = (metrics_method){
        .service = d->service, .name = d->name, .type = METRICS_UNARY, .desc = d};
  }
  for (size_t i = 0; i < N_STREAMS; i++) methods[service_methods_count + i] = streams[i];

  /* Every reason the auth interceptor can record (auth/bearer.c,
   * auth/jwt_verify.c, interceptors/auth.c). */
  const char *reasons[32];
  size_t nr = 0;
  for (int r = BEARER_MISSING; r <= BEARER_MALFORMED; r++)
    reasons[nr++] = bearer_result_reason((bearer_result)r);
  for (int r = JWT_MALFORMED; r <= JWT_INTERNAL && nr < 31; r++)
    reasons[nr++] = jwt_result_reason((jwt_result)r);
  reasons[nr++] = "missing_role";

  metrics_options opt = {
      .methods = methods, .n_methods = n, .auth_reasons = reasons, .n_auth_reasons = nr};
  int rc = metrics_create(&opt, out);
  free(methods);
  return rc;
}
