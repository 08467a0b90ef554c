/* OTLP encoding; see otlp.h. */
#include "trace/otlp.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

trace_shared_text *trace_shared_text_new(const char *text, size_t len, size_t refs) {
  trace_shared_text *t = malloc(sizeof *t + len + 1);
  if (!t) return NULL;
  atomic_init(&t->refs, refs);
  t->len = len;
  memcpy(t->text, text, len);
  t->text[len] = '\0';
  return t;
}

void trace_span_release(trace_span *s) {
  /* The spans of a call may be released on two threads (a batch posted,
   * the rest dropped at shutdown): the count is atomic. */
  if (s->trace_state && atomic_fetch_sub(&s->trace_state->refs, 1) == 1) free(s->trace_state);
  free(s->status_msg);
  free(s->own_texts);
  s->trace_state = NULL;
  s->status_msg = NULL;
  s->own_texts = NULL;
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

/* The protocol buffers wire format (protobuf.dev/programming-guides/encoding),
 * written straight from the span records into one buffer: no message tree
 * per span, no packed-size walk over it. The bytes are those protobuf-c
 * packs for the same messages (tests/unit/trace/test_otlp.c compares them):
 * fields in field-number order, a proto3 field at its zero value left out,
 * the AnyValue oneof written whatever its value. Every field number here is
 * below 16, so every tag is one byte. */
enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2 };
#define TAG(field, wire) ((uint8_t)((field) << 3 | (wire)))

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) n++;
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  for (; v >= 0x80; v >>= 7) *p++ = (uint8_t)(v | 0x80);
  *p++ = (uint8_t)v;
  return p;
}

/* A length-delimited field of n payload bytes, all told. */
static size_t len_field_size(size_t n) { return 1 + varint_size(n) + n; }

static uint8_t *put_len(uint8_t *p, unsigned field, size_t n) {
  *p++ = TAG(field, WIRE_LEN);
  return put_varint(p, n);
}

static uint8_t *put_bytes(uint8_t *p, unsigned field, const void *b, size_t n) {
  p = put_len(p, field, n);
  memcpy(p, b, n);
  return p + n;
}

/* A proto3 string: left out when empty. */
static size_t str_size(size_t n) { return n ? len_field_size(n) : 0; }
static uint8_t *put_str(uint8_t *p, unsigned field, const char *s, size_t n) {
  return n ? put_bytes(p, field, s, n) : p;
}

static uint8_t *put_fixed64(uint8_t *p, unsigned field, uint64_t v) {
  *p++ = TAG(field, WIRE_I64);
  for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> (8 * i));
  return p;
}

/* common.v1.KeyValue {1: key, 2: AnyValue {1: string_value | 3: int_value}}:
 * the AnyValue's size, and the KeyValue's, from the texts' lengths. */
typedef struct kv_sizes {
  size_t key_len, str_len, any, kv;
} kv_sizes;

static kv_sizes kv_sized(size_t key_len, size_t str_len, bool is_int, int64_t i) {
  kv_sizes z = {.key_len = key_len, .str_len = str_len};
  z.any = is_int ? 1 + varint_size((uint64_t)i) : len_field_size(str_len);
  z.kv = str_size(key_len) + len_field_size(z.any);
  return z;
}

static uint8_t *put_kv(uint8_t *p, unsigned field, const kv_sizes *z, const char *key,
                       const char *str, bool is_int, int64_t i) {
  p = put_len(p, field, z->kv);
  p = put_str(p, 1, key, z->key_len);
  p = put_len(p, 2, z->any);
  if (is_int) {
    *p++ = TAG(3, WIRE_VARINT);
    return put_varint(p, (uint64_t)i);
  }
  return put_bytes(p, 1, str, z->str_len);
}

static const char *attr_str(const trace_span *s, const trace_attr *a) {
  return a->s ? a->s : s->text;
}

static size_t attr_str_len(const trace_span *s, const trace_attr *a) {
  return a->s ? strlen(a->s) : s->text_len;
}

/* The part of a span that repeats from call to call, encoded once a batch:
 * its name and kind (fields 5 and 6), and its leading attributes that are
 * static texts or numbers (the server span's rpc.system, rpc.service,
 * rpc.method, rpc.grpc.status_code and server.port; a child's one). An
 * entry stands for the spans whose texts are the same pointers and whose
 * numbers are the same; static texts never change, so the same pointers
 * are the same bytes. A batch has a few such shapes (method x status code,
 * and the child names), so a span costs a lookup and two copies instead of
 * measuring and writing each of these fields. */
#define SHAPE_SLOTS 64  /* a power of 2 */
#define SHAPE_BYTES 240 /* a span whose static part is longer is written field by field */

typedef struct span_shape {
  bool used;
  const char *name;
  trace_span_kind kind;
  size_t n_static;
  const char *key[TRACE_SPAN_MAX_ATTRS], *val[TRACE_SPAN_MAX_ATTRS]; /* val NULL: a number */
  int64_t num[TRACE_SPAN_MAX_ATTRS];
  size_t head_len, attrs_len; /* bytes[0, head_len): fields 5-6; then the attributes */
  uint8_t bytes[SHAPE_BYTES];
} span_shape;

/* How many of the span's attributes, from the first, are static texts or
 * numbers (not the span's own text). */
static size_t static_attrs(const trace_span *s) {
  size_t k = 0;
  while (k < s->n_attrs && (s->attrs[k].is_int || s->attrs[k].s)) k++;
  return k;
}

static bool shape_is(const span_shape *e, const trace_span *s, size_t n_static) {
  if (!e->used || e->name != s->name || e->kind != s->kind || e->n_static != n_static)
    return false;
  for (size_t k = 0; k < n_static; k++) {
    const trace_attr *a = &s->attrs[k];
    if (e->key[k] != a->key || (a->is_int ? e->val[k] || e->num[k] != a->i : e->val[k] != a->s))
      return false;
  }
  return true;
}

/* The span's shape from the batch's table, encoded now if it is new; NULL
 * when it does not fit or its slots hold others (an entry is never
 * replaced: the spans measured before point to it): the span is then
 * written field by field. */
static const span_shape *shape_of(span_shape *table, const trace_span *s, size_t n_static) {
  uintptr_t h = (uintptr_t)s->name;
  for (size_t k = 0; k < n_static; k++)
    h = h * 31 + (s->attrs[k].is_int ? (uintptr_t)s->attrs[k].i << 4 : (uintptr_t)s->attrs[k].s);
  span_shape *e = NULL;
  for (uintptr_t probe = 0; probe < 4; probe++) {
    span_shape *slot = &table[((h >> 4 ^ h >> 10) + probe) & (SHAPE_SLOTS - 1)];
    if (!slot->used) {
      e = slot;
      break;
    }
    if (shape_is(slot, s, n_static)) return slot;
  }
  if (!e) return NULL;
  size_t name_len = s->name ? strlen(s->name) : 0;
  size_t head = str_size(name_len) + (s->kind ? 1 + varint_size((uint64_t)s->kind) : 0);
  size_t need = head;
  kv_sizes z[TRACE_SPAN_MAX_ATTRS];
  for (size_t k = 0; k < n_static; k++) {
    const trace_attr *a = &s->attrs[k];
    z[k] = kv_sized(strlen(a->key), a->is_int ? 0 : strlen(a->s), a->is_int, a->i);
    need += len_field_size(z[k].kv);
  }
  if (need > SHAPE_BYTES) return NULL;
  uint8_t *p = put_str(e->bytes, 5, s->name, name_len);
  if (s->kind) {
    *p++ = TAG(6, WIRE_VARINT);
    p = put_varint(p, (uint64_t)s->kind);
  }
  for (size_t k = 0; k < n_static; k++) {
    const trace_attr *a = &s->attrs[k];
    p = put_kv(p, 9, &z[k], a->key, a->is_int ? NULL : a->s, a->is_int, a->i);
    e->key[k] = a->key;
    e->val[k] = a->is_int ? NULL : a->s;
    e->num[k] = a->is_int ? a->i : 0;
  }
  e->used = true;
  e->name = s->name;
  e->kind = s->kind;
  e->n_static = n_static;
  e->head_len = head;
  e->attrs_len = need - head;
  return e;
}

/* What the size pass learnt of a span, for the writing pass: each text is
 * measured once. */
typedef struct span_plan {
  size_t size; /* the Span message */
  const span_shape *shape; /* or NULL: name, kind and every attribute field by field */
  size_t name_len, msg_len;
  uint32_t key_len[TRACE_SPAN_MAX_ATTRS], str_len[TRACE_SPAN_MAX_ATTRS];
} span_plan;

/* trace.v1.Status {2: message, 3: code}; written even when empty. */
static size_t status_size(const trace_span *s, size_t msg_len) {
  return s->error ? str_size(msg_len) + 2 : 0; /* STATUS_CODE_ERROR = 2: one byte */
}

/* trace.v1.Span, fields 1-9 and 15 (flags and the dropped counts stay 0). */
static void span_measure(const trace_span *s, span_plan *pl, span_shape *shapes) {
  size_t n = len_field_size(TRACE_ID_LEN) + len_field_size(TRACE_SPAN_ID_LEN);
  if (s->trace_state) n += str_size(s->trace_state->len);
  if (s->has_parent) n += len_field_size(TRACE_SPAN_ID_LEN);
  size_t first = static_attrs(s);
  pl->shape = shape_of(shapes, s, first);
  if (pl->shape) {
    n += pl->shape->head_len + pl->shape->attrs_len;
  } else {
    first = 0;
    pl->name_len = s->name ? strlen(s->name) : 0;
    n += str_size(pl->name_len);
    if (s->kind) n += 1 + varint_size((uint64_t)s->kind);
  }
  if (s->start_unix_ns) n += 9;
  if (s->end_unix_ns) n += 9;
  for (size_t k = first; k < s->n_attrs; k++) {
    const trace_attr *a = &s->attrs[k];
    pl->key_len[k] = (uint32_t)strlen(a->key);
    pl->str_len[k] = a->is_int ? 0 : (uint32_t)attr_str_len(s, a);
    n += len_field_size(kv_sized(pl->key_len[k], pl->str_len[k], a->is_int, a->i).kv);
  }
  pl->msg_len = s->error && s->status_msg ? strlen(s->status_msg) : 0;
  pl->size = n + len_field_size(status_size(s, pl->msg_len));
}

static uint8_t *put_span(uint8_t *p, const trace_span *s, const span_plan *pl) {
  p = put_len(p, 2, pl->size); /* ScopeSpans.spans */
  p = put_bytes(p, 1, s->trace_id, TRACE_ID_LEN);
  p = put_bytes(p, 2, s->span_id, TRACE_SPAN_ID_LEN);
  if (s->trace_state) p = put_str(p, 3, s->trace_state->text, s->trace_state->len);
  if (s->has_parent) p = put_bytes(p, 4, s->parent_id, TRACE_SPAN_ID_LEN);
  const span_shape *sh = pl->shape;
  if (sh) {
    memcpy(p, sh->bytes, sh->head_len);
    p += sh->head_len;
  } else {
    p = put_str(p, 5, s->name, pl->name_len);
    if (s->kind) {
      *p++ = TAG(6, WIRE_VARINT);
      p = put_varint(p, (uint64_t)s->kind);
    }
  }
  if (s->start_unix_ns) p = put_fixed64(p, 7, s->start_unix_ns);
  if (s->end_unix_ns) p = put_fixed64(p, 8, s->end_unix_ns);
  if (sh) {
    memcpy(p, sh->bytes + sh->head_len, sh->attrs_len);
    p += sh->attrs_len;
  }
  for (size_t k = sh ? sh->n_static : 0; k < s->n_attrs; k++) {
    const trace_attr *a = &s->attrs[k];
    kv_sizes z = kv_sized(pl->key_len[k], pl->str_len[k], a->is_int, a->i);
    p = put_kv(p, 9, &z, a->key, a->is_int ? NULL : attr_str(s, a), a->is_int, a->i);
  }
  p = put_len(p, 15, status_size(s, pl->msg_len));
  if (s->error) {
    p = put_str(p, 2, s->status_msg, pl->msg_len);
    *p++ = TAG(3, WIRE_VARINT);
    *p++ = 2; /* STATUS_CODE_ERROR */
  }
  return p;
}

#define SCOPE_NAME "product-server"

static kv_sizes resource_kv(const otlp_kv *kv) {
  return kv_sized(strlen(kv->key), strlen(kv->value), false, 0);
}

int otlp_encode(const otlp_kv *resource, size_t n_resource, const trace_span *spans, size_t n,
                uint8_t **body, size_t *len) {
  *body = NULL;
  *len = 0;
  span_plan *plan = malloc((n ? n : 1) * sizeof *plan);
  /* Not calloc: of the table's 12 KiB only the flags need clearing. */
  span_shape *shapes = malloc(SHAPE_SLOTS * sizeof *shapes);
  if (!plan || !shapes) {
    free(plan);
    free(shapes);
    return -1;
  }
  for (size_t i = 0; i < SHAPE_SLOTS; i++) shapes[i].used = false;
  /* Sizes first, inside out: a length prefix comes before what it counts. */
  size_t res = 0; /* resource.v1.Resource: 1: attributes */
  for (size_t i = 0; i < n_resource; i++) res += len_field_size(resource_kv(&resource[i]).kv);
  size_t scope = str_size(strlen(SCOPE_NAME)) + str_size(strlen(PRODUCT_VERSION));
  size_t ss = len_field_size(scope); /* trace.v1.ScopeSpans: 1: scope, 2: spans */
  for (size_t i = 0; i < n; i++) {
    span_measure(&spans[i], &plan[i], shapes);
    ss += len_field_size(plan[i].size);
  }
  size_t rs = len_field_size(res) + len_field_size(ss); /* ResourceSpans: 1: resource, 2 */
  size_t total = len_field_size(rs); /* ExportTraceServiceRequest: 1: resource_spans */

  uint8_t *buf = malloc(total);
  if (!buf) {
    free(plan);
    free(shapes);
    return -1;
  }
  uint8_t *p = put_len(buf, 1, rs);
  p = put_len(p, 1, res);
  for (size_t i = 0; i < n_resource; i++) {
    kv_sizes z = resource_kv(&resource[i]);
    p = put_kv(p, 1, &z, resource[i].key, resource[i].value, false, 0);
  }
  p = put_len(p, 2, ss);
  p = put_len(p, 1, scope);
  p = put_str(p, 1, SCOPE_NAME, strlen(SCOPE_NAME));
  p = put_str(p, 2, PRODUCT_VERSION, strlen(PRODUCT_VERSION));
  for (size_t i = 0; i < n; i++) p = put_span(p, &spans[i], &plan[i]);
  free(plan);
  free(shapes);
  /* The sizes and the writer disagree only through a bug here: better no
   * export than a malformed one. */
  if ((size_t)(p - buf) != total) {
    free(buf);
    return -1;
  }
  *body = buf;
  *len = total;
  return 0;
}
