/* Tracing: the call's server span, and the child spans recorded inside it
 * (token check, store operations), handed to the exporter once the outcome
 * is final. The ids were set by the transport from the traceparent (so that
 * calls refused before the pipeline log them too); here the sampler decides
 * and the spans are built. Only an observer: it never changes a call, and
 * the exporter's queue never blocks it. */
#include "interceptors/interceptors.h"

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/peer.h"
#include "service/env.h"
#include "trace/exporter.h"

/* The sampler decides as the call starts, so that an unsampled call records
 * no child spans at all. */
static void tracing_intercept(call_ctx *c, void *state) {
  (void)state;
  if (c->env && c->env->tracer && c->env->cfg) {
    const config_tracing *tc = &c->env->cfg->tracing;
    c->trace.recording = trace_should_sample(tc->sampler, tc->sampler_arg, &c->trace);
  }
  pipeline_next(c);
}

/* The OpenTelemetry gRPC conventions: these codes are server errors, the
 * others the client's (the span status stays unset). */
static bool server_error(rpc_code code) {
  switch (code) {
  case RPC_UNKNOWN:
  case RPC_DEADLINE_EXCEEDED:
  case RPC_UNIMPLEMENTED:
  case RPC_INTERNAL:
  case RPC_UNAVAILABLE:
  case RPC_DATA_LOSS: return true;
  default: return false;
  }
}

static uint64_t unix_ns(int64_t mono_ns, int64_t now_mono, int64_t now_wall) {
  int64_t v = now_wall - (now_mono - mono_ns);
  return v > 0 ? (uint64_t)v : 0;
}

/* The server span of a call: the contract's attributes and status. m's
 * texts live as long as the process; ts is one of the references taken for
 * the call's spans (or NULL). */
static void server_span(trace_span *s, const trace_ctx *t, trace_shared_text *ts,
                        const method_desc *m, rpc_code code, const char *message,
                        int64_t start_ns, const char *peer, int port, int64_t now_mono,
                        int64_t now_wall) {
  memset(s, 0, sizeof *s);
  memcpy(s->trace_id, t->trace_id, sizeof s->trace_id);
  memcpy(s->span_id, t->span_id, sizeof s->span_id);
  memcpy(s->parent_id, t->parent_id, sizeof s->parent_id);
  s->has_parent = t->has_parent;
  s->trace_state = ts;
  s->name = m->path[0] == '/' ? m->path + 1 : m->path;
  s->kind = TRACE_KIND_SERVER;
  s->start_unix_ns = unix_ns(start_ns, now_mono, now_wall);
  s->end_unix_ns = unix_ns(now_mono, now_mono, now_wall);
  trace_span_attr_str(s, "rpc.system", "grpc");
  trace_span_attr_str(s, "rpc.service", m->service);
  trace_span_attr_str(s, "rpc.method", m->name);
  trace_span_attr_int(s, "rpc.grpc.status_code", (int64_t)code);
  trace_span_attr_int(s, "server.port", port);
  /* "ipv4:127.0.0.1:40174" -> "127.0.0.1", "ipv6:%5B::1%5D:5" -> "::1";
   * another peer (unix:) as it is. */
  const char *host = peer ? peer : "";
  size_t host_len = strlen(host);
  peer_host(peer, &host, &host_len);
  trace_span_attr_own_n(s, "client.address", host, host_len);
  if (server_error(code)) {
    s->error = true;
    /* strdup failing leaves the description out: the span loses a field,
     * the call nothing. */
    s->status_msg = strdup(message ? message : "");
  }
}

/* One copy of the tracestate for a call's n spans; failing to copy it
 * leaves it out: the spans lose a field, the call nothing. */
static trace_shared_text *shared_tracestate(const trace_ctx *t, size_t n) {
  return t->tracestate ? trace_shared_text_new(t->tracestate, strlen(t->tracestate), n) : NULL;
}

static void tracing_done(call_ctx *c, void *state) {
  (void)state;
  struct tracer *tr = c->env ? c->env->tracer : NULL;
  if (!tr || !c->trace.recording) return;
  size_t n = 1;
  for (const trace_child *k = c->trace.children; k; k = k->next) n++;
  /* tracer_submit copies them: a call's few spans are built on the stack,
   * where they cost the call's arena no new block (a malloc per call). */
  trace_span local[4];
  trace_span *spans = n <= sizeof local / sizeof local[0] ? local
                                                         : arena_alloc(c->arena, n * sizeof *spans);
  if (!spans) return; /* out of memory: this trace loses a span, the call nothing */
  int64_t now_mono = clock_mono_ns(), now_wall = clock_wall_us() * 1000;
  trace_shared_text *ts = shared_tracestate(&c->trace, n);
  server_span(&spans[0], &c->trace, ts, c->method, c->code, c->message, c->start_ns, c->peer,
              c->server_port, now_mono, now_wall);

  size_t i = 1;
  for (const trace_child *k = c->trace.children; k && i < n; k = k->next, i++) {
    trace_span *ch = &spans[i];
    memset(ch, 0, sizeof *ch);
    memcpy(ch->trace_id, c->trace.trace_id, sizeof ch->trace_id);
    memcpy(ch->span_id, k->span_id, sizeof ch->span_id);
    memcpy(ch->parent_id, k->parent_id, sizeof ch->parent_id);
    ch->has_parent = true;
    ch->trace_state = ts;
    ch->name = k->name;
    ch->kind = TRACE_KIND_INTERNAL;
    ch->start_unix_ns = unix_ns(k->start_ns, now_mono, now_wall);
    /* A child left open (a panic unwound past its end) ends with the call. */
    ch->end_unix_ns = unix_ns(k->end_ns ? k->end_ns : now_mono, now_mono, now_wall);
    ch->error = k->error;
    /* A static value is pointed to, which also lets the encoder write the
     * span's name and attribute as one pre-encoded run (trace/otlp.c). */
    if (k->attr_key && k->attr_static) trace_span_attr_str(ch, k->attr_key, k->attr_value);
    else if (k->attr_key) trace_span_attr_own(ch, k->attr_key, k->attr_value);
  }
  tracer_submit(tr, spans, n);
}

void tracing_outside_pipeline(const service_env *env, const trace_ctx *t, const method_desc *m,
                              rpc_code code, const char *message, int64_t start_ns,
                              const char *peer, int port) {
  struct tracer *tr = env ? env->tracer : NULL;
  if (!tr || !env->cfg || !t || !m) return;
  const config_tracing *tc = &env->cfg->tracing;
  if (!trace_should_sample(tc->sampler, tc->sampler_arg, t)) return;
  int64_t now_mono = clock_mono_ns(), now_wall = clock_wall_us() * 1000;
  trace_span s;
  server_span(&s, t, shared_tracestate(t, 1), m, code, message, start_ns, peer, port, now_mono,
              now_wall);
  tracer_submit(tr, &s, 1);
}

#define UNKNOWN_PATH_MAX 128

/* "/svc/m" of printable ASCII (no space), up to UNKNOWN_PATH_MAX bytes:
 * the offset of the second slash, else 0. */
static size_t method_split(const char *path, size_t len) {
  if (len < 4 || len > UNKNOWN_PATH_MAX || path[0] != '/') return 0;
  size_t slash = 0;
  for (size_t i = 1; i < len; i++) {
    unsigned char ch = (unsigned char)path[i];
    if (ch <= 0x20 || ch >= 0x7f) return 0;
    if (ch == '/') {
      if (slash) return 0;
      slash = i;
    }
  }
  return slash > 1 && slash < len - 1 ? slash : 0;
}

void tracing_unknown_method(const service_env *env, const trace_ctx *t, const char *path,
                            size_t len, const char *message, int64_t start_ns, const char *peer,
                            int port) {
  struct tracer *tr = env ? env->tracer : NULL;
  if (!tr || !env->cfg || !t) return;
  const config_tracing *tc = &env->cfg->tracing;
  if (!trace_should_sample(tc->sampler, tc->sampler_arg, t)) return;
  /* One block the span owns: the path, then the service and the method. */
  size_t slash = method_split(path, len);
  static const char other[] = "_OTHER";
  method_desc m = {.path = other, .service = other, .name = other};
  char *texts = NULL;
  if (slash) {
    texts = malloc(2 * len + 2);
    if (!texts) return; /* out of memory: this call loses its span, nothing else */
    memcpy(texts, path, len);
    texts[len] = '\0';
    char *svc = texts + len + 1;
    memcpy(svc, path + 1, len - 1); /* "svc/m" -> "svc\0m" */
    svc[len - 1] = '\0';
    svc[slash - 1] = '\0';
    m = (method_desc){.path = texts, .service = svc, .name = svc + slash};
  }
  int64_t now_mono = clock_mono_ns(), now_wall = clock_wall_us() * 1000;
  trace_span s;
  server_span(&s, t, shared_tracestate(t, 1), &m, RPC_UNIMPLEMENTED, message, start_ns, peer,
              port, now_mono, now_wall);
  s.own_texts = texts;
  tracer_submit(tr, &s, 1);
}

const interceptor interceptor_tracing = {
    .name = "tracing",
    .intercept = tracing_intercept,
    .on_done = tracing_done,
};
