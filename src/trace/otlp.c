/* OTLP encoding with protobuf-c; see otlp.h. */
#include "trace/otlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_msg;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_msg;
typedef Opentelemetry__Proto__Trace__V1__Span span_msg;

void trace_span_attr_str(trace_span *s, const char *key, const char *value) {
  if (s->n_attrs >= TRACE_SPAN_MAX_ATTRS) return;
  trace_attr *a = &s->attrs[s->n_attrs++];
  a->key = key;
  a->is_int = false;
  a->s = value ? value : "";
}

void trace_span_attr_own(trace_span *s, const char *key, const char *value) {
  if (s->n_attrs >= TRACE_SPAN_MAX_ATTRS) return;
  trace_attr *a = &s->attrs[s->n_attrs++];
  a->key = key;
  a->is_int = false;
  a->s = NULL; /* read from s->text wherever the span has been copied to */
  snprintf(s->text, sizeof s->text, "%s", value ? value : "");
}

void trace_span_release(trace_span *s) {
  free(s->trace_state);
  free(s->status_msg);
  s->trace_state = s->status_msg = NULL;
}

void trace_span_attr_int(trace_span *s, const char *key, int64_t value) {
  if (s->n_attrs >= TRACE_SPAN_MAX_ATTRS) return;
  trace_attr *a = &s->attrs[s->n_attrs++];
  a->key = key;
  a->is_int = true;
  a->i = value;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Trimmed, percent-decoded copy of [b, e); NULL on out of memory or a bad
 * escape. */
static char *decoded(const char *b, const char *e) {
  while (b < e && (*b == ' ' || *b == '\t')) b++;
  while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
  char *out = malloc((size_t)(e - b) + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (const char *p = b; p < e; p++) {
    if (*p == '%') {
      if (e - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0) {
        free(out);
        return NULL;
      }
      out[o++] = (char)(hexval(p[1]) << 4 | hexval(p[2]));
      p += 2;
    } else {
      out[o++] = *p;
    }
  }
  out[o] = '\0';
  return out;
}

void otlp_kv_free(otlp_kv *kv, size_t n) {
  for (size_t i = 0; kv && i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

int otlp_parse_kv_list(const char *text, otlp_kv **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!text || !*text) return 0;
  size_t cap = 1;
  for (const char *p = text; *p; p++) cap += *p == ',';
  otlp_kv *kv = calloc(cap, sizeof *kv);
  size_t k = 0;
  if (!kv) return -1;
  const char *item = text;
  for (;;) {
    const char *end = strchr(item, ',');
    if (!end) end = item + strlen(item);
    const char *eq = memchr(item, '=', (size_t)(end - item));
    bool blank = true;
    for (const char *p = item; p < end; p++) blank = blank && (*p == ' ' || *p == '\t');
    if (!blank) {
      if (!eq) goto fail;
      kv[k].key = decoded(item, eq);
      kv[k].value = decoded(eq + 1, end);
      k++;
      if (!kv[k - 1].key || !kv[k - 1].value || !kv[k - 1].key[0]) goto fail;
    }
    if (!*end) break;
    item = end + 1;
  }
  *out = kv;
  *n = k;
  return 0;
fail:
  otlp_kv_free(kv, k);
  return -1;
}

static void set_str(kv_msg *kv, any_msg *v, const char *key, const char *value) {
  opentelemetry__proto__common__v1__key_value__init(kv);
  opentelemetry__proto__common__v1__any_value__init(v);
  kv->key = (char *)key;
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v->string_value = (char *)value;
  kv->value = v;
}

static void set_int(kv_msg *kv, any_msg *v, const char *key, int64_t value) {
  opentelemetry__proto__common__v1__key_value__init(kv);
  opentelemetry__proto__common__v1__any_value__init(v);
  kv->key = (char *)key;
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  v->int_value = value;
  kv->value = v;
}

int otlp_encode(const otlp_kv *resource, size_t n_resource, const trace_span *spans, size_t n,
                uint8_t **body, size_t *len) {
  int rc = -1;
  *body = NULL;
  *len = 0;
  size_t n_attr = n_resource;
  for (size_t i = 0; i < n; i++) n_attr += spans[i].n_attrs;
  kv_msg *kvs = calloc(n_attr ? n_attr : 1, sizeof *kvs);
  kv_msg **kvp = calloc(n_attr ? n_attr : 1, sizeof *kvp);
  any_msg *vals = calloc(n_attr ? n_attr : 1, sizeof *vals);
  span_msg *sm = calloc(n ? n : 1, sizeof *sm);
  span_msg **smp = calloc(n ? n : 1, sizeof *smp);
  Opentelemetry__Proto__Trace__V1__Status *st = calloc(n ? n : 1, sizeof *st);
  if (!kvs || !kvp || !vals || !sm || !smp || !st) goto cleanup;

  size_t a = 0;
  for (size_t i = 0; i < n_resource; i++, a++) {
    set_str(&kvs[a], &vals[a], resource[i].key, resource[i].value);
    kvp[a] = &kvs[a];
  }
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.n_attributes = n_resource;
  res.attributes = kvp;

  for (size_t i = 0; i < n; i++) {
    const trace_span *s = &spans[i];
    span_msg *m = &sm[i];
    opentelemetry__proto__trace__v1__span__init(m);
    m->trace_id = (ProtobufCBinaryData){TRACE_ID_LEN, (uint8_t *)s->trace_id};
    m->span_id = (ProtobufCBinaryData){TRACE_SPAN_ID_LEN, (uint8_t *)s->span_id};
    if (s->has_parent)
      m->parent_span_id = (ProtobufCBinaryData){TRACE_SPAN_ID_LEN, (uint8_t *)s->parent_id};
    m->trace_state = s->trace_state ? s->trace_state : "";
    m->name = (char *)(s->name ? s->name : "");
    m->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
    m->start_time_unix_nano = s->start_unix_ns;
    m->end_time_unix_nano = s->end_unix_ns;
    m->n_attributes = s->n_attrs;
    m->attributes = kvp + a;
    for (size_t k = 0; k < s->n_attrs; k++, a++) {
      const trace_attr *at = &s->attrs[k];
      if (at->is_int) set_int(&kvs[a], &vals[a], at->key, at->i);
      else set_str(&kvs[a], &vals[a], at->key, at->s ? at->s : s->text);
      kvp[a] = &kvs[a];
    }
    opentelemetry__proto__trace__v1__status__init(&st[i]);
    if (s->error) {
      st[i].code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
      st[i].message = s->status_msg ? s->status_msg : "";
    }
    m->status = &st[i];
    smp[i] = m;
  }

  Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  scope.name = "product-server";
  scope.version = PRODUCT_VERSION;
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ss.scope = &scope;
  ss.n_spans = n;
  ss.spans = smp;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  rs.resource = &res;
  rs.n_scope_spans = 1;
  rs.scope_spans = &ssp;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.n_resource_spans = 1;
  req.resource_spans = &rsp;

  size_t sz = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
  uint8_t *buf = malloc(sz ? sz : 1);
  if (!buf) goto cleanup;
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
  *body = buf;
  *len = sz;
  rc = 0;
cleanup:
  free(kvs);
  free(kvp);
  free(vals);
  free(sm);
  free(smp);
  free(st);
  return rc;
}
