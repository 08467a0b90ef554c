#ifndef PRODUCT_TRANSPORT_STATUS_DETAILS_H
#define PRODUCT_TRANSPORT_STATUS_DETAILS_H
/* The rich error model's payload for grpc-status-details-bin: a
 * google.rpc.Status with the call's code and message whose details hold one
 * google.rpc.RetryInfo (retry_delay = retry_ms). Only statuses with a retry
 * delay carry it (product-server(8)). */
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/rpc_status.h"

/* The packed google.rpc.Status, allocated from `a`; NULL on out of memory. */
uint8_t *status_details_retry(arena *a, rpc_code code, const char *message, int64_t retry_ms,
                              size_t *len);

#endif
