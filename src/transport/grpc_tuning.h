#ifndef PRODUCT_TRANSPORT_GRPC_TUNING_H
#define PRODUCT_TRANSPORT_GRPC_TUNING_H
#include <stddef.h>

/* Process-wide settings of the core and the libraries under it, applied
 * once before grpc_init() (before any thread: it may set GRPC_EXPERIMENTS). */
void grpc_tuning_apply(void);

/* The GRPC_EXPERIMENTS value grpc_tuning_apply() sets, written to buf (len
 * bytes), given the core's version and the value already there (NULL when
 * unset): NULL when nothing is to change (another core, or `have` already
 * names the experiment) or buf is too small. Exposed for its unit test. */
const char *grpc_tuning_experiments(const char *core_version, const char *have, char *buf,
                                    size_t len);
#endif
