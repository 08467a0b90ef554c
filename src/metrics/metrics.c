/* The metrics registry: sharded lock-free counters and their rendering; see
 * metrics.h.
 *
 * Layout: one shard is a flat array of 64-bit atomic counters, padded to a
 * whole number of cache lines so two shards never share a line. A thread
 * picks its shard once (round robin) and only ever adds to it; a scrape sums
 * the same counter over all shards. Histograms keep per-bucket (not
 * cumulative) counts plus a +Inf bucket, and their sum in nanoseconds, so
 * every observation is a couple of integer adds. */
#include "metrics/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_text.h"

#define SHARDS 32
#define LINE 64

/* go-grpc-prometheus' default buckets (prometheus.DefBuckets), seconds. */
static const double grpc_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
#define GRPC_NB (sizeof grpc_buckets / sizeof grpc_buckets[0])

/* Store operations take micro- to milliseconds: finer buckets. */
static const double store_buckets[] = {.0001, .00025, .0005, .001, .0025, .005, .01,
                                       .025,  .05,    .1,    .25,  .5,    1,    2.5};
#define STORE_NB (sizeof store_buckets / sizeof store_buckets[0])

/* Counters of one method, at offsets from the method's base. */
enum {
  M_STARTED = 0,
  M_RECEIVED,
  M_SENT,
  M_FAULTS,
  M_HANDLED,                               /* + code */
  M_BUCKETS = M_HANDLED + RPC_CODE_COUNT,  /* + bucket, then +Inf */
  M_SUM_NS = M_BUCKETS + GRPC_NB + 1,
  M_STRIDE,
};

/* Counters of one store operation. */
enum { S_BUCKETS = 0, S_SUM_NS = STORE_NB + 1, S_STRIDE };

static const char *const store_op_names[METRICS_STORE_OP_COUNT] = {
    "create", "get", "update", "remove", "list", "flush"};

static const char *const abuse_reason_names[METRICS_ABUSE_REASON_COUNT] = {"rapid_reset",
                                                                            "unknown_methods",
                                                                            "memory",
    "header_block", "ping_flood", "settings_flood", "empty_frames", "rst_flood", "zero_window",
    "unacked_settings", "goaway_flood", "small_data", "pending_data"};

static const char *const type_names[] = {"unary", "client_stream", "server_stream",
                                         "bidi_stream"};

struct metrics {
  metrics_method *methods;
  size_t n_methods;
  const char **reasons; /* deduplicated; index n_reasons is "other" */
  size_t n_reasons;
  size_t base_reasons, base_store, base_guard; /* counter offsets inside a shard */
  size_t shard_len;                /* counters per shard, cache-line padded */
  _Atomic uint64_t *counters;      /* SHARDS * shard_len */
  uint64_t bucket_ns[GRPC_NB];
  uint64_t store_bucket_ns[STORE_NB];
  _Atomic uint64_t jwt_keys; /* a gauge: set on every key load */
  _Atomic uint64_t spans_dropped; /* off the call path (the exporter), so one counter */
  _Atomic uint64_t guard_uncovered; /* off the call path too (the guard's report thread) */
  _Atomic uint64_t guard_untied;    /* likewise */
};

static atomic_uint next_shard;
static _Thread_local unsigned my_shard = UINT32_MAX;

static inline _Atomic uint64_t *shard_base(metrics *m) {
  if (my_shard == UINT32_MAX)
    my_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % SHARDS;
  return m->counters + (size_t)my_shard * m->shard_len;
}

static inline void add(metrics *m, size_t off, uint64_t v) {
  atomic_fetch_add_explicit(shard_base(m) + off, v, memory_order_relaxed);
}

static uint64_t sum(const metrics *m, size_t off) {
  uint64_t total = 0;
  for (size_t s = 0; s < SHARDS; s++)
    total += atomic_load_explicit(m->counters + s * m->shard_len + off, memory_order_relaxed);
  return total;
}

static size_t bucket_for(const uint64_t *bounds_ns, size_t nb, int64_t ns) {
  uint64_t v = ns < 0 ? 0 : (uint64_t)ns;
  size_t i = 0;
  while (i < nb && v > bounds_ns[i]) i++; /* le: v <= bound */
  return i;                               /* nb = +Inf */
}

int metrics_create(const metrics_options *opt, metrics **out) {
  *out = NULL;
  metrics *m = calloc(1, sizeof(*m));
  if (!m) return -1;
  m->methods = calloc(opt->n_methods ? opt->n_methods : 1, sizeof(*m->methods));
  m->reasons = calloc(opt->n_auth_reasons ? opt->n_auth_reasons : 1, sizeof(*m->reasons));
  if (!m->methods || !m->reasons) goto fail;
  for (size_t i = 0; i < opt->n_methods; i++) {
    const metrics_method *mm = &opt->methods[i];
    if (!mm->service || !mm->name || !mm->name[0] || (unsigned)mm->type > METRICS_BIDI_STREAM)
      goto fail;
    m->methods[i] = *mm;
  }
  m->n_methods = opt->n_methods;
  for (size_t i = 0; i < opt->n_auth_reasons; i++) {
    const char *r = opt->auth_reasons[i];
    bool dup = !r || strcmp(r, "other") == 0;
    for (size_t k = 0; k < m->n_reasons && !dup; k++) dup = strcmp(m->reasons[k], r) == 0;
    if (!dup) m->reasons[m->n_reasons++] = r;
  }
  for (size_t i = 0; i < GRPC_NB; i++) m->bucket_ns[i] = (uint64_t)(grpc_buckets[i] * 1e9 + 0.5);
  for (size_t i = 0; i < STORE_NB; i++)
    m->store_bucket_ns[i] = (uint64_t)(store_buckets[i] * 1e9 + 0.5);

  m->base_reasons = m->n_methods * M_STRIDE;
  m->base_store = m->base_reasons + m->n_reasons + 1;
  m->base_guard = m->base_store + METRICS_STORE_OP_COUNT * S_STRIDE;
  /* shed, the abuse reasons, then the rate limits */
  size_t len = m->base_guard + 1 + METRICS_ABUSE_REASON_COUNT + RL_LIMIT_COUNT;
  size_t per_line = LINE / sizeof(uint64_t);
  m->shard_len = (len + per_line - 1) / per_line * per_line;
  size_t total = SHARDS * m->shard_len;
  m->counters = aligned_alloc(LINE, total * sizeof(*m->counters));
  if (!m->counters) goto fail;
  for (size_t i = 0; i < total; i++) atomic_init(&m->counters[i], 0);
  atomic_init(&m->jwt_keys, 0);
  atomic_init(&m->spans_dropped, 0);
  atomic_init(&m->guard_uncovered, 0);
  atomic_init(&m->guard_untied, 0);
  *out = m;
  return 0;
fail:
  metrics_destroy(m);
  return -1;
}

void metrics_destroy(metrics *m) {
  if (!m) return;
  free(m->counters);
  free(m->methods);
  free(m->reasons);
  free(m);
}

int metrics_method_of(const metrics *m, const method_desc *desc) {
  if (!m || !desc) return -1;
  /* The default registry lists the method table in order: usually a hit. */
  if (desc->index >= 0 && (size_t)desc->index < m->n_methods && m->methods[desc->index].desc == desc)
    return desc->index;
  for (size_t i = 0; i < m->n_methods; i++)
    if (m->methods[i].desc == desc) return (int)i;
  return -1;
}

int metrics_method_find(const metrics *m, const char *service, const char *name) {
  if (!m || !service || !name) return -1;
  for (size_t i = 0; i < m->n_methods; i++)
    if (strcmp(m->methods[i].service, service) == 0 && strcmp(m->methods[i].name, name) == 0)
      return (int)i;
  return -1;
}

static inline bool valid(const metrics *m, int method) {
  return m && method >= 0 && (size_t)method < m->n_methods;
}

void metrics_started(metrics *m, int method) {
  if (valid(m, method)) add(m, (size_t)method * M_STRIDE + M_STARTED, 1);
}

void metrics_msg_received(metrics *m, int method) {
  if (valid(m, method)) add(m, (size_t)method * M_STRIDE + M_RECEIVED, 1);
}

void metrics_msg_sent(metrics *m, int method) {
  if (valid(m, method)) add(m, (size_t)method * M_STRIDE + M_SENT, 1);
}

void metrics_handled(metrics *m, int method, rpc_code code, int64_t duration_ns) {
  if (!valid(m, method)) return;
  size_t base = (size_t)method * M_STRIDE;
  if ((unsigned)code >= RPC_CODE_COUNT) code = RPC_UNKNOWN;
  add(m, base + M_HANDLED + (size_t)code, 1);
  add(m, base + M_BUCKETS + bucket_for(m->bucket_ns, GRPC_NB, duration_ns), 1);
  add(m, base + M_SUM_NS, duration_ns > 0 ? (uint64_t)duration_ns : 0);
}

void metrics_fault_recovered(metrics *m, int method) {
  if (valid(m, method)) add(m, (size_t)method * M_STRIDE + M_FAULTS, 1);
}

void metrics_set_jwt_keys(metrics *m, size_t n) {
  if (m) atomic_store_explicit(&m->jwt_keys, (uint64_t)n, memory_order_relaxed);
}

void metrics_auth_rejected(metrics *m, const char *reason) {
  if (!m) return;
  size_t i = 0;
  if (reason)
    while (i < m->n_reasons && strcmp(m->reasons[i], reason) != 0) i++;
  else
    i = m->n_reasons;
  add(m, m->base_reasons + i, 1);
}

void metrics_store_observe(metrics *m, metrics_store_op op, int64_t duration_ns) {
  if (!m || (unsigned)op >= METRICS_STORE_OP_COUNT) return;
  size_t base = m->base_store + (size_t)op * S_STRIDE;
  add(m, base + S_BUCKETS + bucket_for(m->store_bucket_ns, STORE_NB, duration_ns), 1);
  add(m, base + S_SUM_NS, duration_ns > 0 ? (uint64_t)duration_ns : 0);
}

void metrics_guard_uncovered(metrics *m, uint64_t n) {
  if (m) atomic_fetch_add_explicit(&m->guard_uncovered, n, memory_order_relaxed);
}

void metrics_guard_untied(metrics *m, uint64_t n) {
  if (m) atomic_fetch_add_explicit(&m->guard_untied, n, memory_order_relaxed);
}

void metrics_spans_dropped(metrics *m, uint64_t n) {
  if (m) atomic_fetch_add_explicit(&m->spans_dropped, n, memory_order_relaxed);
}

void metrics_shed_call(metrics *m) {
  if (m) add(m, m->base_guard, 1);
}

void metrics_abusive_closed(metrics *m, metrics_abuse_reason reason) {
  if (m && (unsigned)reason < METRICS_ABUSE_REASON_COUNT) add(m, m->base_guard + 1 + reason, 1);
}

void metrics_rate_limited(metrics *m, rl_limit limit) {
  if (m && (unsigned)limit < RL_LIMIT_COUNT)
    add(m, m->base_guard + 1 + METRICS_ABUSE_REASON_COUNT + limit, 1);
}

/* -------------------------------------------------------------- render --- */

/* Labels in the order the Go client prints them (sorted by name). */
static size_t method_labels(const metrics_method *mm, const char *code, mlabel *out) {
  size_t n = 0;
  if (code) out[n++] = (mlabel){"grpc_code", code};
  out[n++] = (mlabel){"grpc_method", mm->name};
  out[n++] = (mlabel){"grpc_service", mm->service};
  out[n++] = (mlabel){"grpc_type", type_names[mm->type]};
  return n;
}

static void render_method_counter(const metrics *m, mtext *t, const char *name, const char *help,
                                  size_t which) {
  mtext_family(t, name, "counter", help);
  for (size_t i = 0; i < m->n_methods; i++) {
    mlabel l[4];
    size_t n = method_labels(&m->methods[i], NULL, l);
    mtext_sample_u64(t, name, l, n, sum(m, i * M_STRIDE + which));
  }
}

/* One histogram series: cumulative buckets, +Inf, _sum (seconds), _count. */
static void render_histogram(const metrics *m, mtext *t, const char *name, const mlabel *labels,
                             size_t n, const double *bounds, size_t nb, size_t base,
                             size_t sum_off) {
  char bname[128], le[40];
  mlabel l[8];
  memcpy(l, labels, n * sizeof *l);
  snprintf(bname, sizeof bname, "%s_bucket", name);
  uint64_t cum = 0;
  for (size_t b = 0; b <= nb; b++) {
    cum += sum(m, base + b);
    if (b < nb) mtext_format_f64(le, sizeof le, bounds[b]);
    else snprintf(le, sizeof le, "+Inf");
    l[n] = (mlabel){"le", le};
    mtext_sample_u64(t, bname, l, n + 1, cum);
  }
  char sname[128], cname[128];
  snprintf(sname, sizeof sname, "%s_sum", name);
  snprintf(cname, sizeof cname, "%s_count", name);
  mtext_sample_f64(t, sname, labels, n, (double)sum(m, sum_off) / 1e9);
  mtext_sample_u64(t, cname, labels, n, cum);
}

static void render_grpc(const metrics *m, mtext *t) {
  static const char handled[] = "grpc_server_handled_total";
  mtext_family(t, handled, "counter",
               "Total number of RPCs completed on the server, regardless of success or failure.");
  for (size_t i = 0; i < m->n_methods; i++) {
    for (int code = 0; code < RPC_CODE_COUNT; code++) {
      mlabel l[4];
      size_t n = method_labels(&m->methods[i], rpc_code_go_name((rpc_code)code), l);
      mtext_sample_u64(t, handled, l, n, sum(m, i * M_STRIDE + M_HANDLED + (size_t)code));
    }
  }
  static const char hist[] = "grpc_server_handling_seconds";
  mtext_family(t, hist, "histogram",
               "Histogram of response latency (seconds) of gRPC that had been application-level "
               "handled by the server.");
  for (size_t i = 0; i < m->n_methods; i++) {
    mlabel l[4];
    size_t n = method_labels(&m->methods[i], NULL, l);
    render_histogram(m, t, hist, l, n, grpc_buckets, GRPC_NB, i * M_STRIDE + M_BUCKETS,
                     i * M_STRIDE + M_SUM_NS);
  }
  render_method_counter(m, t, "grpc_server_msg_received_total",
                        "Total number of RPC stream messages received on the server.", M_RECEIVED);
  render_method_counter(m, t, "grpc_server_msg_sent_total",
                        "Total number of gRPC stream messages sent by the server.", M_SENT);
  render_method_counter(m, t, "grpc_server_started_total",
                        "Total number of RPCs started on the server.", M_STARTED);
}

static void render_own(const metrics *m, mtext *t) {
  static const char auth[] = "product_auth_rejections_total";
  mtext_family(t, auth, "counter",
               "Calls refused by the auth interceptor (UNAUTHENTICATED or PERMISSION_DENIED), by "
               "reason.");
  for (size_t i = 0; i <= m->n_reasons; i++) {
    mlabel l = {"reason", i < m->n_reasons ? m->reasons[i] : "other"};
    mtext_sample_u64(t, auth, &l, 1, sum(m, m->base_reasons + i));
  }
  render_method_counter(m, t, "product_recovered_faults_total",
                        "Calls that failed inside the server and were answered INTERNAL while the "
                        "server kept serving.",
                        M_FAULTS);
  mtext_single_u64(t, "product_jwt_keys", "gauge", "Token signing keys in force.",
                   atomic_load_explicit(&m->jwt_keys, memory_order_relaxed));
  static const char store[] = "product_store_operation_seconds";
  mtext_family(t, store, "histogram", "Latency of store operations (seconds), by operation.");
  for (size_t op = 0; op < METRICS_STORE_OP_COUNT; op++) {
    mlabel l = {"operation", store_op_names[op]};
    size_t base = m->base_store + op * S_STRIDE;
    render_histogram(m, t, store, &l, 1, store_buckets, STORE_NB, base + S_BUCKETS,
                     base + S_SUM_NS);
  }
  mtext_single_u64(t, "product_shed_calls_total", "counter",
                   "Calls refused with RESOURCE_EXHAUSTED because the server was over its memory "
                   "limit.",
                   sum(m, m->base_guard));
  static const char abusive[] = "product_abusive_connections_closed_total";
  mtext_family(t, abusive, "counter", "Connections the server closed for abusing HTTP/2, by reason.");
  for (size_t r = 0; r < METRICS_ABUSE_REASON_COUNT; r++) {
    mlabel l = {"reason", abuse_reason_names[r]};
    mtext_sample_u64(t, abusive, &l, 1, sum(m, m->base_guard + 1 + r));
  }
  mtext_single_u64(t, "product_guard_uncovered_connections_total", "counter",
                   "Connections the HTTP/2 guard could not give a record (out of memory): served "
                   "without its limits.",
                   atomic_load_explicit(&m->guard_uncovered, memory_order_relaxed));
  mtext_single_u64(t, "product_guard_untied_tls_connections_total", "counter",
                   "TLS connections whose SSL the HTTP/2 guard could not tie to the connection: "
                   "per-SSL frame limits apply, the per-connection rapid-reset count does not.",
                   atomic_load_explicit(&m->guard_untied, memory_order_relaxed));
  static const char limited[] = "product_rate_limited_total";
  mtext_family(t, limited, "counter",
               "Calls refused with RESOURCE_EXHAUSTED by a rate limit, by limit.");
  for (unsigned r = 0; r < RL_LIMIT_COUNT; r++) {
    mlabel l = {"limit", rl_limit_name((rl_limit)r)};
    mtext_sample_u64(t, limited, &l, 1,
                     sum(m, m->base_guard + 1 + METRICS_ABUSE_REASON_COUNT + r));
  }
  mtext_single_u64(t, "product_spans_dropped_total", "counter",
                   "Trace spans dropped: the export queue was full or the collector failed.",
                   atomic_load_explicit(&m->spans_dropped, memory_order_relaxed));
}

int metrics_render(const metrics *m, char **out, size_t *len) {
  mtext t;
  mtext_init(&t);
  render_grpc(m, &t);
  mtext_process_metrics(&t);
  render_own(m, &t);
  if (t.oom || !t.buf) {
    mtext_free(&t);
    return -1;
  }
  *out = t.buf;
  *len = t.len;
  return 0;
}
