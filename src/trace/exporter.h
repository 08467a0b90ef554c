#ifndef PRODUCT_TRACE_EXPORTER_H
#define PRODUCT_TRACE_EXPORTER_H
/* The span exporter: finished spans wait in a bounded queue and a thread of
 * its own (core/periodic.h) posts them in batches, as OTLP http/protobuf,
 * to the collector. A call only ever copies its spans into the queue under
 * a short lock: a full queue, a collector that is down (each failed batch,
 * then a back-off) or slow (a timeout per request) drops spans and counts
 * them, and never delays a call. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/span.h"

typedef struct tracer tracer;

/* Spans dropped (n): the metrics counter, on whichever thread dropped them. */
typedef void (*tracer_drop_fn)(void *arg, uint64_t n);

typedef struct tracer_options {
  const char *url;                /* the full POST URL ("http://c:4318/v1/traces") */
  const char *headers;            /* OTEL_EXPORTER_OTLP_HEADERS text, or NULL */
  const char *service_name;       /* resource service.name */
  const char *service_version;    /* resource service.version */
  const char *resource_attributes; /* OTEL_RESOURCE_ATTRIBUTES text, or NULL */
  size_t queue_size;              /* spans; 0: 2048 */
  size_t batch_size;              /* spans per request; 0: 512 */
  int64_t interval_ms;            /* between batches; 0: 5000 */
  int64_t timeout_ms;             /* per request; 0: 10000 */
  int64_t shutdown_ms;            /* final flush bound; 0: 3000 */
  tracer_drop_fn on_drop;         /* may be NULL */
  void *drop_arg;
} tracer_options;

/* Starts the exporter thread. Non-zero with one line in err on a bad
 * header or resource list, out of memory or no thread. */
int tracer_create(const tracer_options *opt, tracer **out, char *err, size_t errlen);
/* Flushes what is queued (and what is in flight), within shutdown_ms in
 * all, dropping (and counting) the rest; stops the thread; frees. NULL: no-op. */
void tracer_destroy(tracer *t);

/* Copies n spans into the queue, all or none: a full queue drops them and
 * counts them. What the spans own (trace_span_release) passes to the
 * exporter either way. Any thread; never blocks on I/O. */
void tracer_submit(tracer *t, const trace_span *spans, size_t n);

/* Spans dropped so far. */
uint64_t tracer_dropped(const tracer *t);

#endif
