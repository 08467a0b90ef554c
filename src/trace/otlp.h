#ifndef PRODUCT_TRACE_OTLP_H
#define PRODUCT_TRACE_OTLP_H
/* OTLP/HTTP protobuf: spans into an ExportTraceServiceRequest, with the
 * process's resource. The messages are the subset in proto/opentelemetry/;
 * the encoder writes their wire format itself, the bytes protobuf-c would
 * pack for them (tests/unit/trace/test_otlp.c holds it to that). */
#include <stddef.h>
#include <stdint.h>

#include "trace/span.h"

typedef struct otlp_kv {
  char *key;
  char *value;
} otlp_kv;

/* Parses a W3C-baggage-like list "k1=v1,k2=v2" (OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_EXPORTER_OTLP_HEADERS): spaces around items trimmed, values
 * percent-decoded. *out (n entries) is the caller's (otlp_kv_free). A
 * malformed list is -1 and nothing. */
int otlp_parse_kv_list(const char *text, otlp_kv **out, size_t *n);
void otlp_kv_free(otlp_kv *kv, size_t n);

/* The request body for n spans with these resource attributes (service.name
 * first). malloc'd into *body; non-zero on out of memory. */
int otlp_encode(const otlp_kv *resource, size_t n_resource, const trace_span *spans, size_t n,
                uint8_t **body, size_t *len);

#endif
