#ifndef PRODUCT_TRANSPORT_CONN_GUARD_H
#define PRODUCT_TRANSPORT_CONN_GUARD_H
/* Rapid-reset protection (CVE-2023-44487) the 1.51 core lacks: count, per
 * connection, the calls its client cancelled, and close a connection that
 * cancels more than `limit` calls within one second.
 *
 * A connection is known by its peer address ("ipv4:127.0.0.1:40918", as
 * grpc_call_get_peer gives it). The core has no API to close one
 * connection, so conn_guard_close_socket finds the socket among the
 * process's descriptors (local port = the server's, remote address = the
 * peer) and shuts it down: the core then sees the connection end and frees
 * every call on it. Only cancelled calls reach this module; served calls
 * never take its lock. */
#include <stdbool.h>
#include <stdint.h>

typedef struct conn_guard conn_guard;

/* Closes the connection of `peer` on local port `port`; returns the number of
 * sockets shut down. */
typedef int (*conn_guard_close_fn)(void *ctx, const char *peer, int port);

/* limit 0: off (conn_guard_note_cancel never closes). close_fn NULL means
 * conn_guard_close_socket. NULL on out of memory. */
conn_guard *conn_guard_create(int64_t limit, conn_guard_close_fn close_fn, void *ctx);
void conn_guard_destroy(conn_guard *g);

/* One call on `peer`'s connection was cancelled by its client. True when
 * this pushed the connection over the limit and a socket was closed now. */
bool conn_guard_note_cancel(conn_guard *g, const char *peer, int port, int64_t now_ns);

/* Parses a grpc peer string into an address; non-zero if it is not an
 * ipv4:/ipv6: one. */
struct sockaddr_storage;
int conn_guard_parse_peer(const char *peer, struct sockaddr_storage *out);

int conn_guard_close_socket(void *ctx, const char *peer, int port);

/* Under memory pressure: shuts down the connection on local port `port`
 * whose client reads least, the socket with the most bytes we sent that its
 * client has not taken (SIOCOUTQ), if that is at least min_unsent. A client
 * that never reads (a PING flood whose replies pile up, a zero window) holds
 * the core's buffers for as long as it stays. Returns 1 if one was shut
 * down, else 0. */
int conn_guard_close_stalled(int port, int min_unsent);

#endif
