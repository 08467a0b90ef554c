#ifndef PRODUCT_TRANSPORT_RPC_CLIENT_H
#define PRODUCT_TRANSPORT_RPC_CLIENT_H
/* A small blocking gRPC client on the C core, for product-client and for the
 * server's etcd registration. Callers see bytes and our own status codes;
 * grpc_* types stay inside src/transport/. One client = one channel (it
 * reconnects by itself); a client may be used by one thread at a time. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rpc_status.h"

typedef struct rpc_client rpc_client;

typedef struct rpc_client_options {
  const char *target;    /* "HOST:PORT" */
  bool insecure;         /* plaintext */
  const char *ca_file;   /* PEM roots; NULL = the system/grpc default */
  const char *cert_file; /* client certificate for mutual TLS (with key_file) */
  const char *key_file;
  const char *server_name_override; /* tests only */
  bool wait_for_ready;   /* calls wait for a connection until their deadline */
} rpc_client_options;

/* Reads the PEM files (a missing file is an error here, not at the first call). */
int rpc_client_create(const rpc_client_options *opt, rpc_client **out, char *err, size_t errlen);
void rpc_client_destroy(rpc_client *c);

typedef struct rpc_metadata {
  const char *key;
  const char *value;
} rpc_metadata;

typedef struct rpc_result {
  rpc_code code;
  char *message;  /* status message, malloc'd, never NULL after a call */
  uint8_t *body;  /* response message bytes, malloc'd; NULL unless OK */
  size_t body_len;
} rpc_result;

/* Where the gRPC core's own log lines go (process-wide; the core logs
 * through one global hook). prefix NULL: dropped, for a CLI that reports
 * failures from the call status. Otherwise ERROR lines are written to stderr
 * as "<prefix>grpc: <message>". A server installs its own hook and never
 * calls this. Call before the first rpc_client_create. */
void rpc_client_set_core_log(const char *prefix);

/* One unary call. Returns 0 when a status was received (see out->code), or
 * non-zero when the call could not be started at all (out->code and
 * out->message then say why, so callers may print them either way).
 * timeout_ms <= 0 means no deadline. */
int rpc_client_unary(rpc_client *c, const char *method, const uint8_t *req, size_t req_len,
                     const rpc_metadata *md, size_t n_md, int64_t timeout_ms, rpc_result *out);
void rpc_result_free(rpc_result *r);

#endif
