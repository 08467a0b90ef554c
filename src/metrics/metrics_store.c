/* The timing store decorator; see metrics_store.h. */
#include "metrics/metrics_store.h"

#include <stdlib.h>

typedef struct timed_store {
  store base; /* first: a store * is a timed_store * */
  store_ops ops; /* timed_ops under the inner backend's name */
  store *inner;
  metrics *m;
} timed_store;

static timed_store *timed(store *s) { return (timed_store *)s; }

/* Each operation is timed into the registry and, when the call's trace is
 * recorded, is a child span of the call (core/call.h), which reads its own
 * clock. Installed for tracing alone, the wrapper reads no clock for a
 * registry that is not there. */
static int64_t started(const timed_store *t) { return t->m ? clock_mono_ns() : 0; }

static void observe(timed_store *t, metrics_store_op op, int64_t start_ns) {
  if (t->m) metrics_store_observe(t->m, op, clock_mono_ns() - start_ns);
}

static trace_child *span_begin(const char *name, store *s) {
  trace_child *span = call_span_begin(name);
  /* The backends' names are static texts (their ops tables). */
  if (span) {
    span->attr_key = "db.system";
    span->attr_value = s->ops->name;
    span->attr_static = true;
  }
  return span;
}

/* Not found, a stale etag and a reused request id are answers, not
 * failures of the store. */
static store_status span_end(trace_child *span, store_status st) {
  call_span_end(span, st != STORE_OK && st != STORE_NOT_FOUND && st != STORE_CONFLICT &&
                          st != STORE_MISMATCH);
  return st;
}

static store_status t_create(store *s, const product *p) {
  int64_t start = started(timed(s));
  trace_child *span = span_begin("store.create", s);
  store_status st = span_end(span, store_create(timed(s)->inner, p));
  observe(timed(s), METRICS_STORE_CREATE, start);
  return st;
}

static store_status t_get(store *s, const char *id, arena *a, product *out) {
  int64_t start = started(timed(s));
  trace_child *span = span_begin("store.get", s);
  store_status st = span_end(span, store_get(timed(s)->inner, id, a, out));
  observe(timed(s), METRICS_STORE_GET, start);
  return st;
}

static store_status t_update(store *s, const char *id, const product_patch *patch, arena *a,
                             product *out) {
  int64_t start = started(timed(s));
  trace_child *span = span_begin("store.update", s);
  store_status st = span_end(span, store_update(timed(s)->inner, id, patch, a, out));
  observe(timed(s), METRICS_STORE_UPDATE, start);
  return st;
}

static store_status t_remove(store *s, const char *id, const int64_t *if_updated_us) {
  int64_t start = started(timed(s));
  trace_child *span = span_begin("store.remove", s);
  store *in = timed(s)->inner;
  store_status st = span_end(span, in->ops->remove(in, id, if_updated_us));
  observe(timed(s), METRICS_STORE_REMOVE, start);
  return st;
}

/* Timed as a create: it is one, with its request id. */
static store_status t_create_once(store *s, const product *p, const store_request *req, arena *a,
                                  product *out) {
  int64_t start = started(timed(s));
  trace_child *span = span_begin("store.create", s);
  store_status st = span_end(span, store_create_once(timed(s)->inner, p, req, a, out));
  observe(timed(s), METRICS_STORE_CREATE, start);
  return st;
}

static store_status t_list(store *s, const struct filter *f, const store_cursor *after,
                           size_t limit, arena *a, store_list_result *out) {
  int64_t start = started(timed(s));
  trace_child *span = span_begin("store.list", s);
  store_status st = span_end(span, store_list(timed(s)->inner, f, after, limit, a, out));
  observe(timed(s), METRICS_STORE_LIST, start);
  return st;
}

static store_status t_flush(store *s) {
  int64_t start = started(timed(s));
  trace_child *span = span_begin("store.flush", s);
  store_status st = span_end(span, store_flush(timed(s)->inner));
  observe(timed(s), METRICS_STORE_FLUSH, start);
  return st;
}

static bool t_healthy(store *s) { return store_healthy(timed(s)->inner); }

static void t_destroy(store *s) {
  store_destroy(timed(s)->inner);
  free(s);
}

static const store_ops timed_ops = {
    .name = "timed", /* replaced by the inner backend's name */
    .create = t_create,
    .get = t_get,
    .update = t_update,
    .remove = t_remove,
    .create_once = t_create_once,
    .list = t_list,
    .flush = t_flush,
    .healthy = t_healthy,
    .destroy = t_destroy,
};

store *metrics_store_wrap(metrics *m, store *inner) {
  timed_store *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->ops = timed_ops;
  t->ops.name = inner->ops->name;
  t->base.ops = &t->ops;
  t->inner = inner;
  t->m = m;
  return &t->base;
}
