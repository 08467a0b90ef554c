#ifndef PRODUCT_CORE_TRACE_CONTEXT_H
#define PRODUCT_CORE_TRACE_CONTEXT_H
/* W3C Trace Context for one call: the incoming `traceparent` parsed strictly
 * (https://www.w3.org/TR/trace-context/ section 3.2), this call's server span
 * ids, the samplers of the OpenTelemetry SDK, and the child spans a call
 * records while it runs. No I/O here: the export lives in src/trace/. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_ID_LEN 16
#define TRACE_SPAN_ID_LEN 8
#define TRACE_TRACESTATE_MAX 512 /* W3C: at most 32 members of ~16 bytes */

/* A span a call records inside its server span (token check, store
 * operation); allocated from the call's arena, listed newest first. */
typedef struct trace_child {
  const char *name; /* static text: "auth.verify_token", "store.get" */
  uint8_t span_id[TRACE_SPAN_ID_LEN];
  uint8_t parent_id[TRACE_SPAN_ID_LEN]; /* the server span, or another child */
  int64_t start_ns;                     /* CLOCK_MONOTONIC */
  int64_t end_ns;                       /* 0 while open */
  bool error;
  const char *attr_key; /* one optional string attribute (static key) */
  const char *attr_value;
  bool attr_static;     /* attr_value is static text too: the span need not copy it */
  struct trace_child *next;
} trace_child;

typedef struct trace_ctx {
  uint8_t trace_id[TRACE_ID_LEN];
  uint8_t span_id[TRACE_SPAN_ID_LEN];   /* this call's server span */
  uint8_t parent_id[TRACE_SPAN_ID_LEN]; /* the caller's span; zero without one */
  bool has_parent;                      /* a valid traceparent arrived */
  bool parent_sampled;                  /* its sampled flag */
  char trace_id_hex[2 * TRACE_ID_LEN + 1];
  char span_id_hex[2 * TRACE_SPAN_ID_LEN + 1];
  const char *tracestate; /* as received when valid-looking, else NULL (arena) */
  bool recording;         /* sampled and exported: child spans are kept */
  trace_child *children;
} trace_ctx;

/* The samplers of OTEL_TRACES_SAMPLER. */
typedef enum trace_sampler {
  TRACE_SAMPLER_PARENTBASED_ALWAYS_ON = 0, /* the default */
  TRACE_SAMPLER_ALWAYS_ON,
  TRACE_SAMPLER_ALWAYS_OFF,
  TRACE_SAMPLER_TRACEIDRATIO,
  TRACE_SAMPLER_PARENTBASED_ALWAYS_OFF,
  TRACE_SAMPLER_PARENTBASED_TRACEIDRATIO,
} trace_sampler;

/* Parses a traceparent value (len bytes, not NUL-terminated). 0 and the ids
 * and flags when valid; -1 otherwise: a length other than 55 for version 00
 * (a later version may be longer when a '-' follows the 55th byte),
 * anything but lowercase hex, version ff, an all-zero trace or parent id. */
int trace_parse_traceparent(const char *v, size_t len, uint8_t trace_id[TRACE_ID_LEN],
                            uint8_t parent_id[TRACE_SPAN_ID_LEN], uint8_t *flags);

/* A tracestate value worth passing on: printable ASCII, at most 512 bytes,
 * with at least one key=value (the W3C list syntax checked loosely: a bad
 * one is dropped, never an error). */
bool trace_tracestate_ok(const char *v, size_t len);

/* n random bytes from OpenSSL's RAND_bytes, drawn through a per-thread
 * buffer so that a call costs a copy, not a RAND_bytes call. Never all zero
 * for n >= 1 id (an all-zero id is invalid): a zero draw is drawn again. */
int trace_random_id(uint8_t *out, size_t n);

/* Fills t for a new call: a child of the traceparent when it is valid
 * (tp may be NULL), a new trace otherwise; a new span id either way. The
 * tracestate is kept (not copied) only with a valid parent. Non-zero only
 * when the random generator fails (t then holds fixed non-zero ids). */
int trace_ctx_start(trace_ctx *t, const char *tp, size_t tp_len, const char *ts, size_t ts_len);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void trace_hex(const uint8_t *in, size_t n, char *out);

/* "always_on", "parentbased_traceidratio", ...: 0 and *out, -1 if unknown. */
int trace_sampler_parse(const char *name, trace_sampler *out);
const char *trace_sampler_name(trace_sampler s);
/* The sampler's decision for this call's span (ratio in [0, 1]). */
bool trace_should_sample(trace_sampler s, double ratio, const trace_ctx *t);

#endif
