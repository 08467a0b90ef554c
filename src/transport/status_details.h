#ifndef PRODUCT_TRANSPORT_STATUS_DETAILS_H
#define PRODUCT_TRANSPORT_STATUS_DETAILS_H
/* The rich error model's payload for grpc-status-details-bin: a
 * google.rpc.Status with the call's code and message whose details hold one
 * google.rpc.RetryInfo (retry_delay = retry_ms). Only statuses with a retry
 * delay carry it (product-server(8)). */
#include <stddef.h>
#include <stdint.h>

#include "core/rpc_status.h"

/* Room for any message the server writes (call_ctx.message is at most 255
 * bytes) with its code and any retry_ms. */
#define STATUS_DETAILS_MAX 384

/* Writes the encoded google.rpc.Status into out; returns its length, or 0
 * when it does not fit in cap (or retry_ms is negative). */
size_t status_details_retry(rpc_code code, const char *message, int64_t retry_ms, uint8_t *out,
                            size_t cap);

#endif
