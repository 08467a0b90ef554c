#ifndef PRODUCT_INTERCEPTORS_PIPELINE_H
#define PRODUCT_INTERCEPTORS_PIPELINE_H
/* The server-side interceptor chain. An interceptor is a named, const table
 * plus the size of its per-call state; it passes the call on with an explicit
 * pipeline_next(c), or ends it by setting a status (call_fail) and returning.
 * The chain itself is data (see pipeline_default.c): adding metrics or rate
 * limiting is one new file and one table entry. After the last interceptor the
 * pipeline decodes the request and runs the method's handler. Observers
 * (logging, metrics) work in on_done, which runs however the call ended. */
#include <stddef.h>

#include "core/call.h"

typedef struct interceptor {
  const char *name;
  size_t state_size; /* per-call state, zeroed, from the call's arena */
  /* Must call pipeline_next(c) to continue, or set a status and return. */
  void (*intercept)(call_ctx *c, void *state);
  /* Optional: runs once the call's outcome is final, innermost first, for
   * every interceptor that was entered, even when a panic unwound the chain
   * past it. Must not panic. */
  void (*on_done)(call_ctx *c, void *state);
} interceptor;

typedef struct pipeline {
  const interceptor *const *chain;
  size_t n;
} pipeline;

/* Runs the whole chain on c (c->pipeline set, c->body filled in). */
void pipeline_run(const pipeline *p, call_ctx *c);
/* Passes the call to the next interceptor, or to decode + handler. */
void pipeline_next(call_ctx *c);

/* The server's chain: recovery -> logging -> [metrics] -> auth. */
const pipeline *pipeline_default(void);

#endif
