/* grpc.health.v1.Health/Watch: a server stream that sends the current status
 * at once and again on every change; at shutdown NOT_SERVING, then the
 * stream ends with UNAVAILABLE (primer section 9). Changes arrive from other
 * threads, so every batch on the call is started under the call's mutex, and
 * the context lives until its last batch completed (reference count: one per
 * batch in flight, one while setting up). Lock order: watcher list, call. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "core/wire_check.h"
#include "interceptors/interceptors.h"
#include "transport/server_internal.h"

typedef struct watch_call {
  rpc_tag on_new, on_close, on_send, on_status;
  rpc_server *srv;
  int slot;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_byte_buffer *sending;
  pthread_mutex_t mu;
  int refs;
  bool ready, send_in_flight, dirty, finishing, status_started, closed, watching;
  int cancelled;
  char service[256];
  size_t service_len;
  int last_sent;
  health_status wanted; /* the status the client should see next */
  rpc_code final_code;
  int64_t start_ns;
  trace_ctx trace; /* for its log line */
  health_watcher watcher;
} watch_call;

static void on_new(rpc_tag *tag, bool ok);
static void on_close(rpc_tag *tag, bool ok);
static void on_send(rpc_tag *tag, bool ok);
static void on_status(rpc_tag *tag, bool ok);
static void notify(health_watcher *w, health_status now, bool finish);

int health_watch_post(rpc_server *s, int slot) {
  watch_call *w = calloc(1, sizeof(*w));
  if (!w) return -1;
  w->on_new.fn = on_new;
  w->on_close.fn = on_close;
  w->on_send.fn = on_send;
  w->on_status.fn = on_status;
  w->watcher.notify = notify;
  w->srv = s;
  w->slot = slot;
  w->last_sent = -1;
  pthread_mutex_init(&w->mu, NULL);
  grpc_metadata_array_init(&w->md);
  server_live_inc(s);
  grpc_completion_queue *cq = s->slots[slot].cq;
  if (grpc_server_request_registered_call(s->server, s->watch_handle, &w->call, &w->deadline, &w->md,
                                          &w->payload, cq, cq, &w->on_new) != GRPC_CALL_OK) {
    grpc_metadata_array_destroy(&w->md);
    pthread_mutex_destroy(&w->mu);
    free(w);
    server_live_dec(s);
    return -1;
  }
  return 0;
}

static void watch_free(watch_call *w) {
  rpc_server *s = w->srv;
  if (w->call) grpc_call_unref(w->call);
  grpc_metadata_array_destroy(&w->md);
  if (w->payload) grpc_byte_buffer_destroy(w->payload);
  pthread_mutex_destroy(&w->mu);
  free(w);
  server_live_dec(s);
}

/* Drops one reference; the caller holds w->mu, which this releases. */
static void unref_unlock(watch_call *w) {
  bool last = --w->refs == 0;
  pthread_mutex_unlock(&w->mu);
  if (last) watch_free(w);
}

/* Starts a batch under w->mu; counts a reference when it started. */
static bool start(watch_call *w, grpc_op *ops, size_t n, rpc_tag *tag) {
  if (grpc_call_start_batch(w->call, ops, n, tag, NULL) != GRPC_CALL_OK) return false;
  w->refs++;
  return true;
}

static void send_status_locked(watch_call *w, health_status st, bool with_initial_md) {
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  size_t len = grpc__health__v1__health_check_response__get_packed_size(&resp);
  grpc_slice out = grpc_slice_malloc(len);
  grpc__health__v1__health_check_response__pack(&resp, GRPC_SLICE_START_PTR(out));
  w->sending = grpc_raw_byte_buffer_create(&out, 1);
  grpc_slice_unref(out);
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (with_initial_md) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = w->sending;
  if (start(w, ops, n, &w->on_send)) {
    w->send_in_flight = true;
    w->last_sent = (int)st;
  } else {
    grpc_byte_buffer_destroy(w->sending);
    w->sending = NULL;
  }
}

static void finish_locked(watch_call *w, rpc_code code, const char *msg, bool with_initial_md) {
  if (w->status_started || w->closed) return;
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (with_initial_md) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  grpc_slice details = grpc_slice_from_copied_string(msg);
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = (grpc_status_code)code;
  ops[n++].data.send_status_from_server.status_details = &details;
  if (start(w, ops, n, &w->on_status)) {
    w->status_started = true;
    w->final_code = code;
  }
  grpc_slice_unref(details);
}

/* From health_set / health_finish, with the health state locked. */
static void notify(health_watcher *hw, health_status now, bool finish) {
  watch_call *w = container_of(hw, watch_call, watcher);
  pthread_mutex_lock(&w->mu);
  w->wanted = now;
  if (finish) w->finishing = true;
  if (w->closed || w->status_started) {
    pthread_mutex_unlock(&w->mu);
    return;
  }
  if (!w->ready || w->send_in_flight) {
    w->dirty = true; /* sent when the first message (or the one in flight) completes */
  } else if ((int)w->wanted != w->last_sent) {
    send_status_locked(w, w->wanted, false);
  } else if (w->finishing) {
    finish_locked(w, RPC_UNAVAILABLE, "server is shutting down", false);
  }
  pthread_mutex_unlock(&w->mu);
}

static bool parse_request(watch_call *w) {
  if (!w->payload) return false;
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, w->payload)) return false;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  char err[160];
  /* The same wire rules as every unary call: UTF-8, no NUL, bounded fields. */
  if (wire_check(&grpc__health__v1__health_check_request__descriptor, GRPC_SLICE_START_PTR(s),
                 GRPC_SLICE_LENGTH(s), err, sizeof err) != 0) {
    grpc_slice_unref(s);
    return false;
  }
  Grpc__Health__V1__HealthCheckRequest *req = grpc__health__v1__health_check_request__unpack(
      NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  if (!req) return false;
  size_t len = req->service ? strlen(req->service) : 0;
  bool ok = len < sizeof w->service;
  if (ok) {
    memcpy(w->service, req->service ? req->service : "", len);
    w->service[len] = '\0';
    w->service_len = len;
  }
  grpc__health__v1__health_check_request__free_unpacked(req, NULL);
  return ok;
}

static void on_new(rpc_tag *tag, bool ok) {
  watch_call *w = container_of(tag, watch_call, on_new);
  rpc_server *s = w->srv;
  if (!ok) {
    watch_free(w);
    return;
  }
  w->start_ns = clock_mono_ns();
  server_trace_start(&w->md, NULL, &w->trace);
  if (!atomic_load(&s->shutting_down)) health_watch_post(s, w->slot);

  pthread_mutex_lock(&w->mu);
  w->refs = 1; /* the setup reference */
  grpc_op close_op;
  memset(&close_op, 0, sizeof close_op);
  close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  close_op.data.recv_close_on_server.cancelled = &w->cancelled;
  if (!start(w, &close_op, 1, &w->on_close)) {
    unref_unlock(w);
    return;
  }
  if (!parse_request(w)) {
    finish_locked(w, RPC_INVALID_ARGUMENT, "request is not a valid HealthCheckRequest", true);
    unref_unlock(w);
    return;
  }
  w->watcher.service = w->service;
  w->watcher.service_len = w->service_len;
  pthread_mutex_unlock(&w->mu);
  /* Lock order: the health state before the call. */
  health_status now;
  health_watch_result wr = health_watch_add(s->opt.health, &w->watcher, &now);
  pthread_mutex_lock(&w->mu);
  if (w->closed) {
    /* The client went away while we were unlocked: on_close did not know it
     * had a watcher to unlink, so we do. */
    pthread_mutex_unlock(&w->mu);
    if (wr == HEALTH_WATCH_ADDED) health_watch_remove(s->opt.health, &w->watcher);
    pthread_mutex_lock(&w->mu);
    unref_unlock(w);
    return;
  }
  if (wr == HEALTH_WATCH_FULL) {
    finish_locked(w, RPC_RESOURCE_EXHAUSTED, "too many health watch streams", true);
    unref_unlock(w);
    return;
  }
  w->watching = wr == HEALTH_WATCH_ADDED;
  if (wr == HEALTH_WATCH_FINISHED) w->finishing = true;
  /* A notify may have run in between and recorded a newer status. */
  if (!w->dirty) w->wanted = now;
  w->dirty = false;
  w->ready = true;
  send_status_locked(w, w->wanted, true);
  unref_unlock(w);
}

static void on_send(rpc_tag *tag, bool ok) {
  watch_call *w = container_of(tag, watch_call, on_send);
  pthread_mutex_lock(&w->mu);
  grpc_byte_buffer_destroy(w->sending);
  w->sending = NULL;
  w->send_in_flight = false;
  if (ok && !w->closed && !w->status_started) {
    bool changed = (int)w->wanted != w->last_sent;
    if (w->dirty && changed) {
      w->dirty = false;
      send_status_locked(w, w->wanted, false);
    } else if (w->finishing) {
      finish_locked(w, RPC_UNAVAILABLE, "server is shutting down", false);
    }
  }
  unref_unlock(w);
}

static void on_status(rpc_tag *tag, bool ok) {
  (void)ok;
  watch_call *w = container_of(tag, watch_call, on_status);
  pthread_mutex_lock(&w->mu);
  unref_unlock(w);
}

static void on_close(rpc_tag *tag, bool ok) {
  (void)ok;
  watch_call *w = container_of(tag, watch_call, on_close);
  pthread_mutex_lock(&w->mu);
  w->closed = true;
  bool watching = w->watching;
  w->watching = false;
  rpc_code code = w->status_started && !w->cancelled ? w->final_code : RPC_CANCELLED;
  pthread_mutex_unlock(&w->mu);
  if (watching) health_watch_remove(w->srv->opt.health, &w->watcher);

  char *peer = grpc_call_get_peer(w->call);
  static const method_desc watch = {.path = "/grpc.health.v1.Health/Watch",
                                    .service = "grpc.health.v1.Health",
                                    .name = "Watch"};
  server_log_call(watch.path, strlen(watch.path), code, w->start_ns, peer, NULL, &w->trace);
  tracing_outside_pipeline(w->srv->opt.env, &w->trace, &watch, code, NULL, w->start_ns, peer,
                           w->srv->bound_port);
  if (w->cancelled) server_note_cancel(w->srv, peer);
  gpr_free(peer);

  pthread_mutex_lock(&w->mu);
  unref_unlock(w);
}
