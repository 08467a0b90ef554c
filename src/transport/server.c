/* One gRPC server on the C core; see server.h and the primer's sections 3,
 * 4 and 13 for the rules followed here. */
#include "transport/server_internal.h"

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "metrics/metrics.h"

#define MAX_RECEIVE_BYTES (4 * 1024 * 1024)
/* Used when the options carry no limits (tests that build a server alone). */
static const config_limits k_default_limits = {
    .max_concurrent_streams = 100,
    .stream_window_bytes = 64 << 10,
    .max_header_list_bytes = 256 << 10,
    .handshake_timeout_ms = 10000,
    .max_connection_idle_ms = 300000,
    .ping_min_interval_ms = 300000,
    .max_ping_strikes = 2,
};
#define MAX_SERVER_ARGS 20
/* The first and the smallest read buffer of a connection. */
#define READ_CHUNK_BYTES 2048
#define GENERIC_REQUESTS_PER_CQ 2
#define WATCH_REQUESTS_PER_CQ 2
#define REFLECTION_REQUESTS_PER_CQ 1

void server_live_inc(rpc_server *s) { atomic_fetch_add(&s->live, 1); }

void server_live_dec(rpc_server *s) {
  if (atomic_fetch_sub(&s->live, 1) == 1) {
    pthread_mutex_lock(&s->live_mu);
    pthread_cond_broadcast(&s->live_cv);
    pthread_mutex_unlock(&s->live_mu);
  }
}

const char *server_call_peer(grpc_call *call, arena *a) {
  char *peer = grpc_call_get_peer(call);
  const char *copy = peer ? arena_strdup(a, peer) : NULL;
  gpr_free(peer);
  return copy ? copy : "";
}

void server_log_call(const char *method, size_t method_len, rpc_code code, int64_t start_ns,
                     const char *peer, const char *detail, const trace_ctx *t) {
  log_line l;
  log_line_begin(&l, log_level_for_code(code), NULL);
  log_line_strn(&l, "method", method, method_len);
  log_line_str(&l, "trace_id", t->trace_id_hex);
  log_line_str(&l, "span_id", t->span_id_hex);
  log_line_str(&l, "code", rpc_code_name(code));
  log_line_fixed(&l, "duration_ms", (clock_mono_ns() - start_ns) / 1000, 3);
  log_line_str(&l, "peer", peer ? peer : "");
  if (detail) log_line_str(&l, "error", detail);
  log_line_emit(&l);
}

void server_trace_start(const grpc_metadata_array *md, arena *a, trace_ctx *t) {
  const char *tp = NULL, *ts = NULL;
  size_t tp_len = 0, ts_len = 0;
  unsigned n_tp = 0;
  for (size_t i = 0; md && i < md->count; i++) {
    const grpc_metadata *m = &md->metadata[i];
    if (grpc_slice_str_cmp(m->key, "traceparent") == 0) {
      n_tp++;
      tp = (const char *)GRPC_SLICE_START_PTR(m->value);
      tp_len = GRPC_SLICE_LENGTH(m->value);
    } else if (a && grpc_slice_str_cmp(m->key, "tracestate") == 0 && !ts) {
      ts = (const char *)GRPC_SLICE_START_PTR(m->value);
      ts_len = GRPC_SLICE_LENGTH(m->value);
    }
  }
  /* Two traceparents cannot both be the parent: W3C says to start over. */
  if (n_tp != 1) tp = NULL;
  if (ts && trace_tracestate_ok(ts, ts_len)) ts = arena_strndup(a, ts, ts_len);
  else ts = NULL;
  if (trace_ctx_start(t, tp, tp_len, ts, ts ? strlen(ts) : 0) != 0)
    log_msg(LOG_ERROR, "the random generator failed: trace ids are fixed placeholders");
}

/* The guard counts, closes, and reports a close (log line, metric) from
 * its own thread. */
void server_note_cancel(rpc_server *s, const char *peer) {
  const rpc_server_guard *g = s->opt.guard;
  if (g && g->cancelled) g->cancelled(g->ctx, peer ? peer : "");
}

bool server_guard_conn(rpc_server *s, const char *peer, rpc_guard_conn *out) {
  const rpc_server_guard *g = s->opt.guard;
  *out = (rpc_guard_conn){.fd = -1, .gen = 0};
  return g && g->connection && peer && g->connection(g->ctx, peer, s->guard_listeners, out);
}

void server_note_unknown(rpc_server *s, rpc_guard_conn c) {
  const rpc_server_guard *g = s->opt.guard;
  if (g && g->unknown_method && c.gen != 0) g->unknown_method(g->ctx, c);
}

int64_t server_reply_bytes(rpc_server *s, rpc_guard_conn c, int64_t delta) {
  const rpc_server_guard *g = s->opt.guard;
  return g && g->reply_bytes && c.gen != 0 ? g->reply_bytes(g->ctx, c, delta) : -1;
}

void rpc_server_close_costliest(rpc_server *s) {
  const rpc_server_guard *g = s->opt.guard;
  if (!s->started || !g || !g->close_costliest || g->close_costliest(g->ctx) == 0) return;
  metrics_abusive_closed(s->opt.metrics, METRICS_ABUSE_MEMORY);
  log_msg(LOG_WARN, "over the memory limit: closed the connection whose client reads least");
}

static void *register_stream(grpc_server *srv, const char *path, grpc_server_register_method_payload_handling h) {
  return grpc_server_register_method(srv, path, NULL, h, 0);
}

static grpc_arg int_arg(const char *key, int64_t v) {
  return (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)key,
                    .value.integer = v > INT32_MAX ? INT32_MAX : (int)v};
}

/* The core's per-connection limits (docs/http2-limits.md). */
static size_t server_args(const config_limits *k, grpc_arg *args, grpc_resource_quota **quota) {
  size_t n = 0;
  args[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, MAX_RECEIVE_BYTES);
  args[n++] = int_arg(GRPC_ARG_MAX_METADATA_SIZE, k->max_header_list_bytes);
  args[n++] = int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, k->max_concurrent_streams);
  /* A fixed window: BDP probing would grow it toward 4 MiB per stream on a
   * fast link, the memory a hostile client makes us buffer. */
  args[n++] = int_arg(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args[n++] = int_arg(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, k->stream_window_bytes);
  args[n++] = int_arg(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, k->handshake_timeout_ms);
  args[n++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                      k->ping_min_interval_ms);
  args[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PING_STRIKES, k->max_ping_strikes);
  /* 0 in the core would mean "at once"; ours means never: leave it out. */
  if (k->max_connection_idle_ms > 0)
    args[n++] = int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, k->max_connection_idle_ms);
  if (k->max_connection_age_ms > 0)
    args[n++] = int_arg(GRPC_ARG_MAX_CONNECTION_AGE_MS, k->max_connection_age_ms);
  /* grpc turns SO_REUSEPORT on by default: a second server would share our
   * port silently, and "port in use" must be an error. */
  args[n++] = int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0);
  /* Nothing serves channelz; its per-connection socket node cost about
   * 0.45 KB of every idle connection (docs/http2-limits.md). */
  args[n++] = int_arg(GRPC_ARG_ENABLE_CHANNELZ, 0);
  /* An idle connection keeps the unused tail of its last read buffer. With
   * the core's tcp_read_chunks experiment off (grpc_tuning.c) the buffers
   * are sized from these and the core's estimate of what the connection
   * sends (doubling while reads fill them), so an idle one holds about
   * 2 KiB instead of 8 KiB. Not smaller: the 1.51 HPACK parser copies the
   * whole unparsed part of a header block again for every piece that
   * arrives, and at 256-byte reads a CONTINUATION-fed 1 GiB literal cost
   * the server 5 times the CPU before the frame guard closed it
   * (docs/http2-limits.md). */
  args[n++] = int_arg(GRPC_ARG_TCP_READ_CHUNK_SIZE, READ_CHUNK_BYTES);
  args[n++] = int_arg(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, READ_CHUNK_BYTES);
  /* Zero-copy sends stay off (the core's default); at 0 the core also skips
   * their per-connection send records, about 1.3 KB of every connection. */
  args[n++] = int_arg(GRPC_ARG_TCP_TX_ZEROCOPY_MAX_SIMULT_SENDS, 0);
  /* Requests are taken uncompressed only. The 1.51 core inflates a gzip or
   * deflate message whole before the 4 MiB limit is checked, and checks
   * that limit against the compressed size: 1 MB sent grew the server by
   * 1.1 GB. A compressed request gets UNIMPLEMENTED, and the client is told
   * (grpc-accept-encoding: identity) to send it plain. */
  args[n++] = int_arg(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET,
                      1u << GRPC_COMPRESS_NONE);
  /* The core shrinks its read buffers and windows as its memory nears the
   * quota; the memory guard refuses calls at the same limit. */
  if (k->memory_limit_bytes > 0 && (*quota = grpc_resource_quota_create("product-server"))) {
    grpc_resource_quota_resize(*quota, (size_t)k->memory_limit_bytes);
    args[n].type = GRPC_ARG_POINTER;
    args[n].key = (char *)GRPC_ARG_RESOURCE_QUOTA;
    args[n].value.pointer.p = *quota;
    args[n++].value.pointer.vtable = grpc_resource_quota_arg_vtable();
  }
  return n;
}

int rpc_server_create(const rpc_server_options *opt, rpc_server **out, char *err, size_t errlen) {
  grpc_server_credentials *creds = opt->creds;
  rpc_server *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    grpc_server_credentials_release(creds);
    return -1;
  }
  s->opt = *opt;
  s->opt.creds = NULL;
  if (s->opt.requests_per_method <= 0) s->opt.requests_per_method = 16;
  pthread_mutex_init(&s->live_mu, NULL);
  pthread_cond_init(&s->live_cv, NULL);
  atomic_init(&s->live, 0);
  atomic_init(&s->shutting_down, false);

  grpc_arg args[MAX_SERVER_ARGS];
  grpc_resource_quota *quota = NULL;
  size_t nargs = server_args(opt->limits ? opt->limits : &k_default_limits, args, &quota);
  grpc_channel_args ca = {.num_args = nargs, .args = args};
  s->server = grpc_server_create(&ca, NULL);
  if (quota) grpc_resource_quota_unref(quota); /* the server holds its own ref */
  s->shutdown_cq = grpc_completion_queue_create_for_next(NULL);
  s->n_slots = rpc_workers_count(opt->workers);
  s->slots = calloc((size_t)s->n_slots, sizeof(*s->slots));
  s->methods = calloc(opt->n_methods ? opt->n_methods : 1, sizeof(*s->methods));
  if (!s->server || !s->shutdown_cq || !s->slots || !s->methods) {
    snprintf(err, errlen, "out of memory creating the %s server", opt->name);
    goto fail;
  }
  grpc_server_register_completion_queue(s->server, s->shutdown_cq, NULL);
  for (int i = 0; i < s->n_slots; i++) {
    s->slots[i].cq = rpc_workers_cq(opt->workers, i);
    pthread_mutex_init(&s->slots[i].mu, NULL);
    grpc_server_register_completion_queue(s->server, s->slots[i].cq, NULL);
  }
  for (size_t i = 0; i < opt->n_methods; i++) {
    s->methods[i].desc = opt->methods[i];
    s->methods[i].handle = register_stream(s->server, opt->methods[i]->path,
                                           GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER);
    if (!s->methods[i].handle) {
      snprintf(err, errlen, "cannot register %s", opt->methods[i]->path);
      goto fail;
    }
    s->n_methods++;
  }
  if (opt->serve_health_watch)
    s->watch_handle = register_stream(s->server, "/grpc.health.v1.Health/Watch",
                                      GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER);
  if (opt->serve_reflection) {
    s->reflection_handle[0] = register_stream(
        s->server, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", GRPC_SRM_PAYLOAD_NONE);
    s->reflection_handle[1] =
        register_stream(s->server, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                        GRPC_SRM_PAYLOAD_NONE);
  }

  /* The core reports every failure as port 0; main.c checks files and the
   * address first so that the operator gets a precise reason. */
  s->bound_port = grpc_server_add_http2_port(s->server, opt->listen->text, creds);
  grpc_server_credentials_release(creds);
  creds = NULL;
  if (s->bound_port == 0) {
    snprintf(err, errlen, "cannot listen on %s: address in use or not available",
             opt->listen->text);
    goto fail;
  }
  if (opt->guard && opt->guard->listening && opt->guard->listening(opt->guard->ctx, opt->tls, &s->guard_listeners) != 0) {
    snprintf(err, errlen, "the HTTP/2 guard did not see the listener of %s (its listen hook is not "
             "in the path)", opt->listen->text);
    goto fail;
  }
  *out = s;
  return 0;

fail:
  if (creds) grpc_server_credentials_release(creds);
  rpc_server_destroy(s);
  return -1;
}

int rpc_server_start(rpc_server *s, int *bound_port, char *err, size_t errlen) {
  grpc_server_start(s->server);
  s->started = true;
  /* Requests are posted only after start (primer section 3). */
  for (int slot = 0; slot < s->n_slots; slot++) {
    for (size_t m = 0; m < s->n_methods; m++)
      for (int k = 0; k < s->opt.requests_per_method; k++)
        if (unary_post(s, slot, &s->methods[m]) != 0) goto fail;
    for (int k = 0; k < GENERIC_REQUESTS_PER_CQ; k++)
      if (generic_post(s, slot) != 0) goto fail;
    if (s->watch_handle)
      for (int k = 0; k < WATCH_REQUESTS_PER_CQ; k++)
        if (health_watch_post(s, slot) != 0) goto fail;
    for (int v = 0; v < 2; v++)
      if (s->reflection_handle[v])
        for (int k = 0; k < REFLECTION_REQUESTS_PER_CQ; k++)
          if (reflection_post(s, slot, v) != 0) goto fail;
  }
  *bound_port = s->bound_port;
  return 0;
fail:
  snprintf(err, errlen, "cannot post call requests on the %s server", s->opt.name);
  return -1;
}

static void shutdown_done(rpc_tag *tag, bool ok) {
  (void)tag;
  (void)ok;
}

void rpc_server_begin_shutdown(rpc_server *s) {
  if (!s->started || s->shutdown_started) return;
  s->shutdown_started = true;
  atomic_store(&s->shutting_down, true);
  s->shutdown_tag.fn = shutdown_done;
  grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, &s->shutdown_tag);
}

void rpc_server_finish_shutdown(rpc_server *s, int64_t deadline_ns) {
  if (!s->shutdown_started) return;
  int64_t left_ns = deadline_ns - clock_mono_ns();
  if (left_ns < 0) left_ns = 0;
  gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                    gpr_time_from_nanos(left_ns, GPR_TIMESPAN));
  grpc_event ev = grpc_completion_queue_next(s->shutdown_cq, until, NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) {
    log_msg(LOG_WARN, "drain time over: cancelling the calls still running");
    grpc_server_cancel_all_calls(s->server);
    grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  }
  /* Every context that owns a tag must be gone before the queues shut down:
   * a batch started on a call whose queue is shut down aborts the process. */
  pthread_mutex_lock(&s->live_mu);
  while (atomic_load(&s->live) > 0) pthread_cond_wait(&s->live_cv, &s->live_mu);
  pthread_mutex_unlock(&s->live_mu);
}

void rpc_server_destroy(rpc_server *s) {
  if (!s) return;
  if (s->server) {
    if (!s->shutdown_started) {
      /* Never started, or a failed start: shut down what exists. */
      rpc_server_begin_shutdown(s);
      if (!s->started) {
        s->shutdown_tag.fn = shutdown_done;
        grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, &s->shutdown_tag);
        s->shutdown_started = true;
      }
      rpc_server_finish_shutdown(s, clock_mono_ns());
    }
    grpc_server_destroy(s->server);
  }
  if (s->shutdown_cq) {
    grpc_completion_queue_shutdown(s->shutdown_cq);
    while (grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->shutdown_cq);
  }
  if (s->slots) {
    for (int i = 0; i < s->n_slots; i++) {
      unary_free_slot(&s->slots[i]);
      pthread_mutex_destroy(&s->slots[i].mu);
    }
  }
  free(s->slots);
  free(s->methods);
  pthread_mutex_destroy(&s->live_mu);
  pthread_cond_destroy(&s->live_cv);
  free(s);
}
