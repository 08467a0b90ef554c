/* Metrics: go-grpc-prometheus' server counters for every unary call, plus
 * auth refusals and recovered faults. It sits right after logging, before
 * auth, so refused calls are counted too. `started` and `msg_received` count
 * when the call reaches the chain; everything that depends on the outcome is
 * counted in on_done, which runs however the call ended (a panic included).
 * Only an observer: it never changes a call. No lock: see src/metrics/. */
#include "interceptors/interceptors.h"

#include "metrics/metrics.h"
#include "service/env.h"

static metrics *registry(const call_ctx *c) { return c->env ? c->env->metrics : NULL; }

/* No per-call state: the registry id is found again in on_done (a compare
 * or two), which keeps this interceptor free of arena allocations. */
static void metrics_intercept(call_ctx *c, void *state) {
  (void)state;
  metrics *m = registry(c);
  int id = metrics_method_of(m, c->method);
  if (id >= 0) {
    metrics_started(m, id);
    /* A unary call carries one request message, unless the client sent
     * none at all (then the pipeline answers INVALID_ARGUMENT). */
    if (c->body) metrics_msg_received(m, id);
  }
  pipeline_next(c);
}

static void metrics_done(call_ctx *c, void *state) {
  (void)state;
  metrics *m = registry(c);
  if (!m) return;
  int id = metrics_method_of(m, c->method);
  if (id >= 0) {
    if (c->code == RPC_OK && c->response) metrics_msg_sent(m, id);
    metrics_handled(m, id, c->code, clock_mono_ns() - c->start_ns);
    if (c->code == RPC_INTERNAL && c->fault_detail[0]) metrics_fault_recovered(m, id);
  }
  /* auth_reason is also set when a public method ignores a bad token; only
   * a refusal counts. */
  if (c->auth_reason && (c->code == RPC_UNAUTHENTICATED || c->code == RPC_PERMISSION_DENIED))
    metrics_auth_rejected(m, c->auth_reason);
}

const interceptor interceptor_metrics = {
    .name = "metrics",
    .intercept = metrics_intercept,
    .on_done = metrics_done,
};
