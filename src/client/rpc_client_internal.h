#ifndef PRODUCT_CLIENT_RPC_CLIENT_INTERNAL_H
#define PRODUCT_CLIENT_RPC_CLIENT_INTERNAL_H
/* What rpc_stream.c needs of a client; only src/client/ includes this. */
#include <stdbool.h>

#include <grpc/grpc.h>

#include "client/rpc_client.h"

grpc_channel *rpc_client_channel(rpc_client *c);
/* The client's pluck queue: every call and stream of the client posts its
 * batches here with tags that are unique while they are outstanding. */
grpc_completion_queue *rpc_client_queue(rpc_client *c);
bool rpc_client_waits_for_ready(const rpc_client *c);
/* Replaces c's channel with a new one with subchannels of its own (not
 * shared with other channels); streams open on the old one go on. Non-zero
 * (the old channel kept) when out of memory. */
int rpc_client_renew_channel(rpc_client *c);
/* md as grpc metadata for SEND_INITIAL_METADATA, with the same rules for
 * every call and stream: a key and a value, and only what gRPC can send.
 * *out is NULL when n is 0; non-zero (nothing to free) with a reason. */
int rpc_client_build_md(const rpc_metadata *md, size_t n, grpc_metadata **out, char *err,
                        size_t errlen);
void rpc_client_free_md(grpc_metadata *m, size_t n);
/* A received message as one malloc'd buffer (free it); non-zero on failure. */
int rpc_client_read_message(grpc_byte_buffer *bb, uint8_t **body, size_t *len);

#endif
