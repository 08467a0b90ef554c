#ifndef PRODUCT_INTERCEPTORS_PIPELINE_H
#define PRODUCT_INTERCEPTORS_PIPELINE_H
/* The server-side interceptor chain. An interceptor is a named, const table
 * plus the size of its per-call state; it passes the call on with an explicit
 * pipeline_next(c), or ends it by setting a status (call_fail) and returning.
 * The chain itself is data (see pipeline_default.c): adding metrics or rate
 * limiting is one new file and one table entry. After the last interceptor the
 * pipeline decodes the request and runs the method's handler. Observers
 * (logging, metrics) work in on_done, which runs however the call ended. */
#include <stdbool.h>
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

/* Runs the chain, decode and handler on c (c->body filled in); the outcome
 * is in c. The on_done hooks wait for pipeline_finish. */
void pipeline_start(const pipeline *p, call_ctx *c);
/* Once the answer has gone out (or the transport knows it never will): the
 * outcome is final, the on_done hooks run. cancelled: the client went away
 * or the deadline passed before it got the answer; the outcome is then
 * DEADLINE_EXCEEDED or CANCELLED, which is what the client saw. */
void pipeline_finish(call_ctx *c, bool cancelled);
/* pipeline_start then pipeline_finish (not cancelled): tests, simple callers. */
void pipeline_run(const pipeline *p, call_ctx *c);
/* Passes the call to the next interceptor, or to decode + handler. */
void pipeline_next(call_ctx *c);

/* The server's chain: recovery -> logging -> [metrics] -> rate_limit -> auth. */
const pipeline *pipeline_default(void);

#endif
