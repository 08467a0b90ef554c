/* Calls to methods nobody registered: UNIMPLEMENTED, logged like any call.
 * At least one request stays outstanding per queue, or such calls would hang
 * until the client's deadline (primer trap 1). */
#include <grpc/support/alloc.h>
#include <stdlib.h>
#include <string.h>

#include "interceptors/interceptors.h"
#include "transport/server_internal.h"

#define UNKNOWN_METHOD_MESSAGE "unknown method"

typedef struct generic_call {
  rpc_tag on_new;
  rpc_tag on_done;
  rpc_server *srv;
  int slot;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
  trace_ctx trace; /* for its log line */
  int cancelled;
  int64_t start_ns;
  char *peer; /* read when the call arrives: once it is over the core says "unknown" */
  rpc_guard_conn conn; /* its connection, as the guard named it on arrival */
} generic_call;

static void on_new(rpc_tag *tag, bool ok);
static void on_done(rpc_tag *tag, bool ok);

static void generic_free(generic_call *g) {
  rpc_server *s = g->srv;
  if (g->call) grpc_call_unref(g->call);
  gpr_free(g->peer);
  grpc_call_details_destroy(&g->details);
  grpc_metadata_array_destroy(&g->md);
  free(g);
  server_live_dec(s);
}

int generic_post(rpc_server *s, int slot) {
  generic_call *g = calloc(1, sizeof(*g));
  if (!g) return -1;
  g->on_new.fn = on_new;
  g->on_done.fn = on_done;
  g->srv = s;
  g->slot = slot;
  grpc_call_details_init(&g->details);
  grpc_metadata_array_init(&g->md);
  server_live_inc(s);
  grpc_completion_queue *cq = s->slots[slot].cq;
  if (grpc_server_request_call(s->server, &g->call, &g->details, &g->md, cq, cq, &g->on_new) !=
      GRPC_CALL_OK) {
    generic_free(g);
    return -1;
  }
  return 0;
}

static void on_new(rpc_tag *tag, bool ok) {
  generic_call *g = container_of(tag, generic_call, on_new);
  if (!ok) {
    generic_free(g);
    return;
  }
  g->start_ns = clock_mono_ns();
  server_trace_start(&g->md, NULL, &g->trace);
  g->peer = grpc_call_get_peer(g->call);
  /* Now, while it is surely live: by the end the client may have gone and
   * a new connection taken its address and port (or it may hold one to
   * our other port as well); the count belongs to this one. */
  server_guard_conn(g->srv, g->peer, &g->conn);
  if (!atomic_load(&g->srv->shutting_down)) generic_post(g->srv, g->slot);

  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
  grpc_slice details = grpc_slice_from_static_string(UNKNOWN_METHOD_MESSAGE);
  ops[1].data.send_status_from_server.status_details = &details;
  ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[2].data.recv_close_on_server.cancelled = &g->cancelled;
  if (grpc_call_start_batch(g->call, ops, 3, &g->on_done, NULL) != GRPC_CALL_OK) generic_free(g);
}

static void on_done(rpc_tag *tag, bool ok) {
  (void)ok;
  generic_call *g = container_of(tag, generic_call, on_done);
  const char *peer = g->peer ? g->peer : "";
  const char *path = (const char *)GRPC_SLICE_START_PTR(g->details.method);
  size_t path_len = GRPC_SLICE_LENGTH(g->details.method);
  server_log_call(path, path_len, RPC_UNIMPLEMENTED, g->start_ns, peer, NULL, &g->trace);
  tracing_unknown_method(g->srv->opt.env, &g->trace, path, path_len, UNKNOWN_METHOD_MESSAGE,
                         g->start_ns, peer, g->srv->bound_port);
  /* Reset or not (an UNIMPLEMENTED answer is often out before the client's
   * RST_STREAM is read), a flood of them is the same attack. */
  server_note_unknown(g->srv, g->conn);
  generic_free(g);
}
