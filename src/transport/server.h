#ifndef PRODUCT_TRANSPORT_SERVER_H
#define PRODUCT_TRANSPORT_SERVER_H
/* One gRPC server on the C core: the methods of a method table, served on
 * one listening port, with calls run through the interceptor pipeline on the
 * shared worker queues. The product API and the plaintext health port are two
 * such servers sharing workers and health state. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/call.h"
#include "interceptors/pipeline.h"
#include "service/health.h"
#include "transport/workers.h"

typedef struct rpc_server rpc_server;
struct grpc_server_credentials;

/* One connection as the guard names it (a descriptor and a generation
 * never reused): the transport only carries it from a call's arrival to
 * its end. gen 0: none. */
typedef struct rpc_guard_conn {
  int fd;
  uint64_t gen;
} rpc_guard_conn;

/* The hostile-client guard as the server edge sees it (main.c wires the
 * guard library, src/guard/, in; the transport never links it). Every
 * member may be NULL. */
typedef struct rpc_server_guard {
  void *ctx;
  /* After the port is bound: its listeners become the guard's, *listeners
   * names them (for connection). Non-zero when the guard did not see them
   * (the server then refuses to start). */
  int (*listening)(void *ctx, bool tls, int *listeners);
  /* A call its client cancelled before its deadline. */
  void (*cancelled)(void *ctx, const char *peer);
  /* On a call's arrival: the live connection of `peer` accepted on this
   * server's listeners. False when the guard has none. */
  bool (*connection)(void *ctx, const char *peer, int listeners, rpc_guard_conn *out);
  /* A call to a method nobody serves ended; it came on `c` (connection,
   * at its arrival): counted there, never on a later connection from the
   * same address and port. */
  void (*unknown_method)(void *ctx, rpc_guard_conn c);
  /* Over the memory limit: 1 if the connection whose client reads least
   * was shut down. */
  int (*close_costliest)(void *ctx);
  /* Adds delta to the bytes of large replies waiting on connection c;
   * returns the new total, or -1 when c is gone. */
  int64_t (*reply_bytes)(void *ctx, rpc_guard_conn c, int64_t delta);
} rpc_server_guard;

typedef struct rpc_server_options {
  const char *name;                 /* "api", "health": for logs */
  const config_addr *listen;
  struct grpc_server_credentials *creds; /* ownership passes to the server */
  bool tls;                              /* creds are TLS: the guard counts decrypted bytes */
  const method_desc *const *methods;     /* unary methods */
  size_t n_methods;
  bool serve_health_watch;
  bool serve_reflection;
  rpc_workers *workers;
  health_state *health;
  const service_env *env;         /* handed to every call, never read here */
  struct metrics *metrics;         /* NULL when metrics are off */
  const pipeline *pipeline;
  int requests_per_method; /* outstanding requests per method per queue */
  const config_limits *limits;   /* HTTP/2 limits; NULL: the built-in defaults */
  struct mem_guard *mem;         /* shedding flag; may be NULL */
  const rpc_server_guard *guard; /* may be NULL: no guard */
} rpc_server_options;

int rpc_server_create(const rpc_server_options *opt, rpc_server **out, char *err, size_t errlen);
/* Binds and starts serving; *bound_port is the port really bound. */
int rpc_server_start(rpc_server *s, int *bound_port, char *err, size_t errlen);
/* Stops accepting calls (GOAWAY) and lets calls in flight finish; returns at
 * once. */
void rpc_server_begin_shutdown(rpc_server *s);
/* Waits for the shutdown to finish until deadline_ns (CLOCK_MONOTONIC), then
 * cancels what is left and waits until every call context is freed. */
void rpc_server_finish_shutdown(rpc_server *s, int64_t deadline_ns);
void rpc_server_destroy(rpc_server *s);
/* Over the memory limit: shuts down the connection whose client reads least
 * (the guard's close_costliest), logs and counts it. Any thread. */
void rpc_server_close_costliest(rpc_server *s);

#endif
