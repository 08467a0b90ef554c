#ifndef PRODUCT_TRACE_SPAN_H
#define PRODUCT_TRACE_SPAN_H
/* A finished span as the exporter queues it, kept small (a queue slot is a
 * copy): texts that live as long as the process (the method table, span
 * names, attribute keys and fixed values) are pointers; the one text a span
 * has of its own (client.address, a child's attribute) is inline; the rare
 * long ones are malloc'd: an ERROR description, owned by its span, and the
 * tracestate, one copy shared by the spans of a call. The span owns them
 * from tracer_submit on. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/trace_context.h"

#define TRACE_SPAN_MAX_ATTRS 6 /* the server span has 6 */

typedef enum trace_span_kind {
  TRACE_KIND_INTERNAL = 1, /* OTLP SpanKind numbers */
  TRACE_KIND_SERVER = 2,
} trace_span_kind;

typedef struct trace_attr {
  const char *key; /* static text */
  union {
    const char *s; /* static text, or NULL: the span's own text[] */
    int64_t i;     /* with is_int */
  };
  bool is_int;
} trace_attr;

/* A tracestate the spans of one call share: copied once per call, freed
 * with the last of them (trace_span_release). */
typedef struct trace_shared_text {
  _Atomic size_t refs;
  size_t len;
  char text[]; /* NUL-terminated */
} trace_shared_text;

/* A copy of len bytes of text for refs spans; NULL on out of memory. */
trace_shared_text *trace_shared_text_new(const char *text, size_t len, size_t refs);

typedef struct trace_span {
  uint8_t trace_id[TRACE_ID_LEN];
  uint8_t span_id[TRACE_SPAN_ID_LEN];
  uint8_t parent_id[TRACE_SPAN_ID_LEN];
  bool has_parent;
  trace_shared_text *trace_state; /* one reference, or NULL when none */
  const char *name;     /* static text */
  trace_span_kind kind;
  uint64_t start_unix_ns;
  uint64_t end_unix_ns;
  bool error;           /* status ERROR, else unset */
  char *status_msg;     /* malloc'd description with ERROR, or NULL */
  char *own_texts;      /* malloc'd texts the name and attributes point into, or NULL
                           (a call to a method nobody serves) */
  char text[64];        /* the one attribute value of its own */
  uint8_t text_len;     /* its length (text[] is NUL-terminated too) */
  trace_attr attrs[TRACE_SPAN_MAX_ATTRS];
  size_t n_attrs;
} trace_span;

/* Appends an attribute when there is room (silently not otherwise: the
 * table of attributes is fixed at compile time and fits). value must live
 * as long as the process. Inline: a call builds a few spans of a few
 * attributes each. */
static inline void trace_span_attr_str(trace_span *s, const char *key, const char *value) {
  if (s->n_attrs >= TRACE_SPAN_MAX_ATTRS) return;
  trace_attr *a = &s->attrs[s->n_attrs++];
  a->key = key;
  a->is_int = false;
  a->s = value ? value : "";
}

/* The same with len bytes of value (not NUL-terminated) copied into the
 * span (truncated to its text[]); once per span. */
static inline void trace_span_attr_own_n(trace_span *s, const char *key, const char *value,
                                         size_t len) {
  if (s->n_attrs >= TRACE_SPAN_MAX_ATTRS) return;
  trace_attr *a = &s->attrs[s->n_attrs++];
  a->key = key;
  a->is_int = false;
  a->s = NULL; /* read from s->text wherever the span has been copied to */
  if (len > sizeof s->text - 1) len = sizeof s->text - 1;
  if (len) memcpy(s->text, value, len);
  s->text[len] = '\0';
  s->text_len = (uint8_t)len;
}

/* The same with a NUL-terminated value. */
static inline void trace_span_attr_own(trace_span *s, const char *key, const char *value) {
  trace_span_attr_own_n(s, key, value ? value : "",
                        value ? strnlen(value, sizeof s->text - 1) : 0);
}

static inline void trace_span_attr_int(trace_span *s, const char *key, int64_t value) {
  if (s->n_attrs >= TRACE_SPAN_MAX_ATTRS) return;
  trace_attr *a = &s->attrs[s->n_attrs++];
  a->key = key;
  a->is_int = true;
  a->i = value;
}
/* Frees what the span owns (its description, its reference to the
 * tracestate); the slot stays. */
void trace_span_release(trace_span *s);

#endif
