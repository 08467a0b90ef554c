#ifndef PRODUCT_TRANSPORT_SERVER_INTERNAL_H
#define PRODUCT_TRANSPORT_SERVER_INTERNAL_H
/* Shared by the files that implement one rpc_server (server.c, unary.c,
 * generic.c, health_watch.c, reflection.c). */
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>

#include "transport/server.h"
#include "transport/tag.h"

typedef struct unary_call unary_call;

typedef struct registered_method {
  const method_desc *desc;
  void *handle; /* grpc_server_register_method */
} registered_method;

/* Per queue: a free list of unary call contexts, reused across calls so that
 * the steady state allocates nothing per call. */
typedef struct cq_slot {
  grpc_completion_queue *cq;
  pthread_mutex_t mu;
  unary_call *free_list;
} cq_slot;

struct rpc_server {
  rpc_server_options opt;
  grpc_server *server;
  grpc_completion_queue *shutdown_cq;
  registered_method *methods;
  size_t n_methods;
  void *watch_handle;      /* grpc.health.v1.Health/Watch */
  void *reflection_handle[2]; /* v1, v1alpha */
  cq_slot *slots;
  int n_slots;
  atomic_bool shutting_down;
  atomic_long live; /* contexts that own a tag: posted requests and calls */
  pthread_mutex_t live_mu;
  pthread_cond_t live_cv;
  int bound_port;
  int guard_listeners; /* the guard's name for our listeners (rpc_server_guard.listening) */
  bool started;
  bool shutdown_started;
  rpc_tag shutdown_tag;
};

void server_live_inc(rpc_server *s);
void server_live_dec(rpc_server *s);

/* unary.c */
int unary_post(rpc_server *s, int slot, const registered_method *m);
void unary_free_slot(cq_slot *slot);
/* generic.c: every call to a method that is not registered. */
int generic_post(rpc_server *s, int slot);
/* health_watch.c */
int health_watch_post(rpc_server *s, int slot);
/* reflection.c */
int reflection_post(rpc_server *s, int slot, int version);

/* The peer of a call as a NUL-terminated arena string (never NULL). */
const char *server_call_peer(grpc_call *call, arena *a);

/* A call the client cancelled (not its deadline): counted against its
 * connection, which is closed, logged and counted once it cancels too many
 * (guard/conn_guard.h, through the options). Only cancelled calls come here. */
void server_note_cancel(rpc_server *s, const char *peer);
/* The connection a call to a method nobody serves came on, looked up when
 * it arrives (its peer on our listeners). False without a guard or when
 * the guard has none. */
bool server_guard_conn(rpc_server *s, const char *peer, rpc_guard_conn *out);
/* Such a call ended: counted on its connection; a client that makes more
 * of them per second than the rapid-reset limit is closed too. */
void server_note_unknown(rpc_server *s, rpc_guard_conn c);

/* rpc_server_guard.reply_bytes, or -1 without a guard. */
int64_t server_reply_bytes(rpc_server *s, rpc_guard_conn c, int64_t delta);

/* One log line for a call that did not go through the pipeline (unknown
 * methods, streams), with its trace ids (t). */
void server_log_call(const char *method, size_t method_len, rpc_code code, int64_t start_ns,
                     const char *peer, const char *detail, const trace_ctx *t);

/* The call's trace context from its traceparent/tracestate metadata (a new
 * trace when absent or invalid). The tracestate is copied into a (kept
 * only when a is not NULL). */
void server_trace_start(const grpc_metadata_array *md, arena *a, trace_ctx *t);

#endif
