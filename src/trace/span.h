#ifndef PRODUCT_TRACE_SPAN_H
#define PRODUCT_TRACE_SPAN_H
/* A finished span as the exporter queues it: plain bytes, no pointers, so
 * a slot of the queue is a copy and nothing outlives the call that made it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/trace_context.h"

#define TRACE_SPAN_MAX_ATTRS 8

typedef enum trace_span_kind {
  TRACE_KIND_INTERNAL = 1, /* OTLP SpanKind numbers */
  TRACE_KIND_SERVER = 2,
} trace_span_kind;

typedef struct trace_attr {
  const char *key; /* static text */
  bool is_int;
  int64_t i;
  char s[112];
} trace_attr;

typedef struct trace_span {
  uint8_t trace_id[TRACE_ID_LEN];
  uint8_t span_id[TRACE_SPAN_ID_LEN];
  uint8_t parent_id[TRACE_SPAN_ID_LEN];
  bool has_parent;
  char trace_state[TRACE_TRACESTATE_MAX + 1]; /* "" when none */
  char name[112];
  trace_span_kind kind;
  uint64_t start_unix_ns;
  uint64_t end_unix_ns;
  bool error;           /* status ERROR, else unset */
  char status_msg[256]; /* the description with ERROR */
  trace_attr attrs[TRACE_SPAN_MAX_ATTRS];
  size_t n_attrs;
} trace_span;

/* Appends an attribute when there is room (silently not otherwise: the
 * table of attributes is fixed at compile time and fits). */
void trace_span_attr_str(trace_span *s, const char *key, const char *value);
void trace_span_attr_int(trace_span *s, const char *key, int64_t value);

#endif
