#ifndef PRODUCT_CLIENT_RPC_CLIENT_H
#define PRODUCT_CLIENT_RPC_CLIENT_H
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
  /* Upper bound of the channel's reconnect backoff; 0 = gRPC's default
   * (120 s). A long-lived client of a peer that may restart (the etcd
   * registration) sets a few seconds, so it notices the peer soon after it
   * is back. */
  int reconnect_backoff_max_ms;
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

/* The gRPC core before 1.60 can fail a sound connect with a stale errno
 * (rpc_client_stale_errno.c, grpc/grpc PR 35064). True when r is exactly that
 * failure (the server saw nothing of the call) and c now has a new channel:
 * the caller tries the call once more, within the call's deadline.
 * rpc_client_unary does so by itself; a caller of rpc_stream does it. */
bool rpc_client_retry_stale_connect(rpc_client *c, const rpc_result *r);

/* ------------------------------------------------------------ streams ---- */

/* A streaming call (client, server or bidi streaming) on a client's channel,
 * e.g. etcd's LeaseKeepAlive. One thread drives a stream (open, send, recv,
 * close) and may make unary calls on the same client between those steps;
 * rpc_stream_cancel alone may be called from another thread while the
 * stream is open. The client must outlive its streams. */
typedef struct rpc_stream rpc_stream;

typedef enum rpc_stream_event {
  RPC_STREAM_MESSAGE = 0, /* a message arrived */
  RPC_STREAM_TIMEOUT,     /* nothing within wait_ms; the receive stays posted */
  RPC_STREAM_ENDED,       /* no more messages: rpc_stream_close tells why */
} rpc_stream_event;

/* Starts the call (initial metadata only; no message yet). With the
 * client's wait_for_ready the call waits for a connection until its
 * deadline; timeout_ms <= 0 means none (end it with rpc_stream_close).
 * Non-zero with a reason in err when the call could not be started. */
int rpc_stream_open(rpc_client *c, const char *method, const rpc_metadata *md, size_t n_md,
                    int64_t timeout_ms, rpc_stream **out, char *err, size_t errlen);

/* Sends one message and waits (at most wait_ms; <= 0: until the call ends)
 * until the transport took it. Non-zero when the stream has ended, the send
 * failed, or it did not complete within wait_ms (then the stream is no good
 * for sending: close it). */
int rpc_stream_send(rpc_stream *s, const uint8_t *msg, size_t len, int64_t wait_ms);

/* Half-closes the sending side (for client and bidi streaming). */
int rpc_stream_close_send(rpc_stream *s, int64_t wait_ms);

/* Waits at most wait_ms (<= 0: until something happens) for the next
 * message. RPC_STREAM_MESSAGE: *body (malloc'd, the caller frees) and *len
 * hold it. After a TIMEOUT the same receive stays posted, so calling again
 * keeps waiting for it. */
rpc_stream_event rpc_stream_recv(rpc_stream *s, int64_t wait_ms, uint8_t **body, size_t *len);

/* Cancels the call (thread-safe): a receive in progress returns
 * RPC_STREAM_ENDED at once and the status becomes CANCELLED. */
void rpc_stream_cancel(rpc_stream *s);

/* Ends the stream and frees it: if the server has not ended it, the call is
 * cancelled; then every posted operation is awaited. out (may be NULL) gets
 * the final status (code and message; no body). */
void rpc_stream_close(rpc_stream *s, rpc_result *out);

#endif
