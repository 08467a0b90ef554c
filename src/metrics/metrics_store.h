#ifndef PRODUCT_METRICS_METRICS_STORE_H
#define PRODUCT_METRICS_METRICS_STORE_H
/* A store that times every operation of another store into the registry
 * (product_store_operation_seconds) and otherwise behaves exactly like it:
 * a decorator over store_ops, so no backend knows about metrics. */
#include "metrics/metrics.h"
#include "store/store.h"

/* Wraps inner; the wrapper owns inner from then on (store_destroy on the
 * wrapper destroys both). m must outlive the wrapper. NULL on out of memory,
 * and then inner is left untouched and still the caller's. */
store *metrics_store_wrap(metrics *m, store *inner);

#endif
