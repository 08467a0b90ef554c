/* Unary calls: request, run the pipeline, answer in one batch, reuse the
 * context. All events of a call come to the queue it was requested on.
 *
 * A call the client reset before its request message was read (HEADERS,
 * maybe DATA, then RST_STREAM in the same read: a rapid-reset client) is
 * still handed to us by 1.51, with no payload. Its reply batch, with
 * RECV_CLOSE_ON_SERVER, then completes only when the whole connection
 * closes, so every such call (core call, arena, context) lived as long as
 * the connection: +2 GB for one client. Such a call is recognised at once
 * (grpc_call_failed_before_recv_message), cancelled from our side, and
 * released without running the pipeline or building a reply. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "interceptors/interceptors.h"
#include "transport/status_details.h"
#include "metrics/metrics.h"
#include "service/health.h"
#include "transport/mem_guard.h"
#include "transport/server_internal.h"

#define CALL_ARENA_BYTES 8192
/* Replies larger than a stream's default window wait in the core until the
 * client grants more; a client that never does (or announces a window of
 * a byte) could park --max-concurrent-streams of them on one connection:
 * 500 MB with large ListProducts pages. Such replies are counted per
 * connection, and one that would take it over REPLY_HELD_MAX gets
 * RESOURCE_EXHAUSTED instead. Smaller ones are not counted: a connection
 * holds at most --max-concurrent-streams of them. */
#define REPLY_WATCH_BYTES (64 * 1024)
#define REPLY_HELD_MAX ((int64_t)16 << 20)

struct unary_call {
  rpc_tag on_new;
  rpc_tag on_done;
  rpc_server *srv;
  int slot;
  const registered_method *method;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_byte_buffer *response;
  int cancelled;
  bool skipped; /* answered without the pipeline (shed, or already reset) */
  size_t held;  /* bytes of its reply counted on held_conn */
  rpc_guard_conn held_conn;
  arena *arena;
  call_ctx ctx;
  unary_call *next_free;
};

static void on_new(rpc_tag *tag, bool ok);
static void on_done(rpc_tag *tag, bool ok);
static void finish(unary_call *u, bool cancelled);

static unary_call *call_new(void) {
  unary_call *u = calloc(1, sizeof(*u));
  if (!u) return NULL;
  u->arena = arena_create(CALL_ARENA_BYTES);
  if (!u->arena) {
    free(u);
    return NULL;
  }
  u->on_new.fn = on_new;
  u->on_done.fn = on_done;
  return u;
}

static void call_destroy(unary_call *u) {
  arena_destroy(u->arena);
  free(u);
}

void unary_free_slot(cq_slot *slot) {
  unary_call *u = slot->free_list;
  while (u) {
    unary_call *next = u->next_free;
    call_destroy(u);
    u = next;
  }
  slot->free_list = NULL;
}

static unary_call *slot_take(cq_slot *slot) {
  pthread_mutex_lock(&slot->mu);
  unary_call *u = slot->free_list;
  if (u) slot->free_list = u->next_free;
  pthread_mutex_unlock(&slot->mu);
  return u ? u : call_new();
}

/* Returns a finished context to its queue's free list, or frees it when the
 * server is going away. Either way it no longer owns a tag. */
static void call_release(unary_call *u) {
  rpc_server *s = u->srv;
  if (u->call) grpc_call_unref(u->call);
  u->call = NULL;
  grpc_metadata_array_destroy(&u->md);
  if (u->payload) grpc_byte_buffer_destroy(u->payload);
  if (u->response) grpc_byte_buffer_destroy(u->response);
  u->payload = u->response = NULL;
  arena_reset(u->arena);
  if (atomic_load(&s->shutting_down)) {
    call_destroy(u);
  } else {
    cq_slot *slot = &s->slots[u->slot];
    pthread_mutex_lock(&slot->mu);
    u->next_free = slot->free_list;
    slot->free_list = u;
    pthread_mutex_unlock(&slot->mu);
  }
  server_live_dec(s);
}

int unary_post(rpc_server *s, int slot, const registered_method *m) {
  unary_call *u = slot_take(&s->slots[slot]);
  if (!u) return -1;
  u->srv = s;
  u->slot = slot;
  u->method = m;
  u->next_free = NULL;
  grpc_metadata_array_init(&u->md);
  server_live_inc(s);
  grpc_completion_queue *cq = s->slots[slot].cq;
  grpc_call_error e = grpc_server_request_registered_call(s->server, m->handle, &u->call, &u->deadline,
                                                          &u->md, &u->payload, cq, cq, &u->on_new);
  if (e != GRPC_CALL_OK) {
    call_release(u);
    return -1;
  }
  return 0;
}

/* Copies the request body into the arena as one contiguous run. */
static int read_body(unary_call *u) {
  call_ctx *c = &u->ctx;
  if (!u->payload) return 0;
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, u->payload)) return -1;
  size_t len = grpc_byte_buffer_length(r.buffer_out);
  uint8_t *body = arena_alloc(u->arena, len ? len : 1);
  if (!body) {
    grpc_byte_buffer_reader_destroy(&r);
    return -1;
  }
  size_t off = 0;
  grpc_slice slice;
  while (grpc_byte_buffer_reader_next(&r, &slice)) {
    size_t n = GRPC_SLICE_LENGTH(slice);
    if (off + n <= len) memcpy(body + off, GRPC_SLICE_START_PTR(slice), n);
    off += n;
    grpc_slice_unref(slice);
  }
  grpc_byte_buffer_reader_destroy(&r);
  if (off != len) return -1;
  c->body = body;
  c->body_len = len;
  return 0;
}

static int64_t deadline_to_mono_ns(gpr_timespec deadline, int64_t now_ns) {
  if (deadline.tv_sec == INT64_MAX) return INT64_MAX;
  gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
  deadline = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
  int64_t left_ms = gpr_time_to_millis(gpr_time_sub(deadline, now));
  return now_ns + left_ms * 1000000;
}

static void read_metadata(unary_call *u) {
  call_ctx *c = &u->ctx;
  for (size_t i = 0; i < u->md.count; i++) {
    const grpc_metadata *m = &u->md.metadata[i];
    if (grpc_slice_str_cmp(m->key, "authorization") == 0) {
      if (c->authz_count++ == 0) {
        c->authz = (const char *)GRPC_SLICE_START_PTR(m->value);
        c->authz_len = GRPC_SLICE_LENGTH(m->value);
      }
    }
#ifdef PRODUCT_TEST_FAULTS
    else if (grpc_slice_str_cmp(m->key, "x-test-fault") == 0) {
      c->test_fault = arena_strndup(u->arena, (const char *)GRPC_SLICE_START_PTR(m->value),
                                    GRPC_SLICE_LENGTH(m->value));
    }
#endif
  }
}

/* Packs the response (len bytes packed) straight into one slice. */
static grpc_byte_buffer *pack_response(const ProtobufCMessage *msg, size_t len) {
  grpc_slice out = grpc_slice_malloc(len);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(out));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&out, 1);
  grpc_slice_unref(out);
  return bb;
}

/* True when the 1.51 core takes `s` as a plain (non -bin) metadata value:
 * printable ASCII only (grpc_validate_header_nonbin_value_is_legal). */
static bool plain_header_value(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p > 0x7e) return false;
  return true;
}

/* Counts a large reply on its connection; false when that would take the
 * connection over REPLY_HELD_MAX (the reply is then not sent). A call
 * whose connection the guard does not know is not counted. */
static bool hold_reply(unary_call *u, size_t len) {
  call_ctx *c = &u->ctx;
  if (!server_guard_conn(u->srv, c->peer, &u->held_conn)) return true;
  int64_t total = server_reply_bytes(u->srv, u->held_conn, (int64_t)len);
  if (total < 0) return true;
  if (total > REPLY_HELD_MAX) {
    server_reply_bytes(u->srv, u->held_conn, -(int64_t)len);
    return false;
  }
  u->held = len;
  return true;
}

static void answer(unary_call *u) {
  call_ctx *c = &u->ctx;
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA; /* always, even for an error */
  size_t len = c->code == RPC_OK && c->response ? protobuf_c_message_get_packed_size(c->response)
                                                 : 0;
  /* A call holds its reply twice until it is sent: the message in its
   * arena and the packed bytes (measured: 34 MB for 16 MiB packed). */
  if (len > REPLY_WATCH_BYTES && !hold_reply(u, 2 * len)) {
    c->code = RPC_RESOURCE_EXHAUSTED;
    snprintf(c->message, sizeof c->message,
             "too many large replies wait for this connection to read them; retry later");
  }
  if (c->code == RPC_OK && c->response) {
    u->response = pack_response(c->response, len);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = u->response;
  }
  /* The message goes as a grpc-message trailer of ours when the core takes
   * it as one (printable ASCII: every message the server writes itself),
   * else as status_details. On the wire the two are the same trailer
   * (percent-encoded by the core either way); status_details also makes the
   * 1.51 core copy the message into the call's absl::Status, which it then
   * formats once more as the call is destroyed, for nobody: some 5,000
   * instructions per non-OK call (bench/callgrind_calls.py, scenario n). */
  grpc_metadata trailers[3];
  size_t nt = 0;
  memset(trailers, 0, sizeof trailers);
  grpc_slice details = grpc_empty_slice();
  bool has_details = c->message[0] != '\0';
  bool details_as_trailer = has_details && plain_header_value(c->message);
  if (has_details) details = grpc_slice_from_copied_string(c->message);
  if (details_as_trailer) {
    trailers[nt].key = grpc_slice_from_static_string("grpc-message");
    trailers[nt++].value = details;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = (grpc_status_code)c->code;
  ops[n].data.send_status_from_server.status_details =
      has_details && !details_as_trailer ? &details : NULL;
  /* Retry guidance (a rate limit): the pushback trailer and the rich status.
   * The values are refcounted copies: the core keeps its own references. */
  char pushback[24];
  size_t rich_len = 0;
  uint8_t *rich = NULL;
  if (c->code != RPC_OK && c->retry_ms > 0 &&
      (rich = status_details_retry(u->arena, c->code, c->message, c->retry_ms, &rich_len))) {
    snprintf(pushback, sizeof pushback, "%lld", (long long)c->retry_ms);
    trailers[nt].key = grpc_slice_from_static_string("grpc-retry-pushback-ms");
    trailers[nt++].value = grpc_slice_from_copied_string(pushback);
    trailers[nt].key = grpc_slice_from_static_string("grpc-status-details-bin");
    trailers[nt++].value = grpc_slice_from_copied_buffer((const char *)rich, rich_len);
  }
  ops[n].data.send_status_from_server.trailing_metadata = nt ? trailers : NULL;
  ops[n].data.send_status_from_server.trailing_metadata_count = nt;
  n++;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &u->cancelled;
  grpc_call_error e = grpc_call_start_batch(u->call, ops, n, &u->on_done, NULL);
  if (has_details) grpc_slice_unref(details);
  for (size_t i = details_as_trailer ? 1 : 0; i < nt; i++) grpc_slice_unref(trailers[i].value);
  if (e != GRPC_CALL_OK) {
    log_msg(LOG_ERROR, "cannot start the reply batch");
    finish(u, true); /* no event will come for this tag */
  }
}

/* The end of a call: observers (log line, metrics) see what the client saw.
 * A cancel before the deadline came from the client: it is counted against
 * its connection (rapid reset); served calls never get there. */
static void finish(unary_call *u, bool cancelled) {
  call_ctx *c = &u->ctx;
  if (u->held) {
    server_reply_bytes(u->srv, u->held_conn, -(int64_t)u->held);
    u->held = 0;
  }
  if (cancelled && clock_mono_ns() < c->deadline_ns) server_note_cancel(u->srv, c->peer);
  if (!u->skipped) pipeline_finish(c, cancelled);
  call_release(u);
}

static void setup_call(unary_call *u) {
  call_ctx *c = &u->ctx;
  memset(c, 0, sizeof *c);
  u->skipped = false;
  c->start_ns = clock_mono_ns();
  c->method = u->method->desc;
  c->env = u->srv->opt.env;
  c->arena = u->arena;
  c->deadline_ns = deadline_to_mono_ns(u->deadline, c->start_ns);
  c->peer = server_call_peer(u->call, u->arena);
  server_trace_start(&u->md, u->arena, &c->trace);
  c->server_port = u->srv->bound_port;
}

/* Over the memory limit: refuse at once, before the pipeline allocates
 * anything, with one log line and a count. */
static void shed_call(unary_call *u) {
  call_ctx *c = &u->ctx;
  u->skipped = true;
  c->code = RPC_RESOURCE_EXHAUSTED;
  snprintf(c->message, sizeof c->message, "server overloaded: over its memory limit, retry later");
  metrics_shed_call(u->srv->opt.metrics);
  server_log_call(c->method->path, strlen(c->method->path), c->code, c->start_ns, c->peer,
                  c->message, &c->trace);
  tracing_outside_pipeline(c->env, &c->trace, c->method, c->code, c->message, c->start_ns,
                           c->peer, c->server_port);
  answer(u);
}

/* The client reset the call before its message was read: no pipeline, no
 * reply (the stream is gone), only its log line. */
static void skip_reset_call(unary_call *u) {
  call_ctx *c = &u->ctx;
  u->skipped = true;
  grpc_call_cancel(u->call, NULL);
  static const char why[] = "the client cancelled the call before it was handled";
  server_log_call(c->method->path, strlen(c->method->path), RPC_CANCELLED, c->start_ns, c->peer,
                  why, &c->trace);
  tracing_outside_pipeline(c->env, &c->trace, c->method, RPC_CANCELLED, why, c->start_ns, c->peer,
                           c->server_port);
  finish(u, true);
}

static void run_call(unary_call *u) {
  call_ctx *c = &u->ctx;
  read_metadata(u);
  if (read_body(u) != 0) {
    /* Unreadable (or compressed with an unknown codec) body. */
    c->body = NULL;
  }
  pipeline_start(u->srv->opt.pipeline, c);
  answer(u);
}

static void on_new(rpc_tag *tag, bool ok) {
  unary_call *u = container_of(tag, unary_call, on_new);
  rpc_server *s = u->srv;
  if (!ok) { /* the server is shutting down: this request will never be filled */
    call_release(u);
    return;
  }
  /* Keep the number of outstanding requests constant: replace this one first. */
  if (!atomic_load(&s->shutting_down)) unary_post(s, u->slot, u->method);
  setup_call(u);
  /* Before shedding: a reset call gets no reply either way, and must still
   * count against its connection rather than as a shed call. */
  if (!u->payload && grpc_call_failed_before_recv_message(u->call)) {
    skip_reset_call(u);
    return;
  }
  /* Health checks are answered while shedding: they are how the operator
   * learns that the server sheds. */
  if (mem_guard_shedding(s->opt.mem) && u->method->desc != &health_check_method) {
    shed_call(u);
    return;
  }
  run_call(u);
}

static void on_done(rpc_tag *tag, bool ok) {
  (void)ok; /* always 1 with RECV_CLOSE_ON_SERVER; cancelled says the rest */
  unary_call *u = container_of(tag, unary_call, on_done);
  finish(u, u->cancelled != 0);
}
