/* Logging: one line per call, rejected and failed calls included, written
 * once the outcome is final. Never the token, the authorization value or a
 * request body; client-supplied text (peer, sub) is escaped by the log sink. */
#include "interceptors/interceptors.h"

#include "core/log.h"

static void logging_intercept(call_ctx *c, void *state) {
  (void)state;
  pipeline_next(c);
}

static void logging_done(call_ctx *c, void *state) {
  (void)state;
  log_line l;
  log_line_begin(&l, log_level_for_code(c->code), NULL);
  log_line_str(&l, "method", c->method->path);
  log_line_str(&l, "trace_id", c->trace.trace_id_hex);
  log_line_str(&l, "span_id", c->trace.span_id_hex);
  log_line_str(&l, "code", rpc_code_name(c->code));
  log_line_fixed(&l, "duration_ms", (clock_mono_ns() - c->start_ns) / 1000, 3);
  log_line_str(&l, "peer", c->peer ? c->peer : "");
  /* sub: from a verified token (auth), or a held one that a rate limit
   * refused before auth ran. */
  if (c->sub) {
    log_line_str(&l, "sub", c->sub);
    if (c->role && c->role[0]) log_line_str(&l, "role", c->role);
  }
  /* Why an auth check failed: "reason", the word the metric's label uses
   * too; "auth_error" is its older name, kept for existing log queries. */
  if (c->auth_reason) {
    log_line_str(&l, "reason", c->auth_reason);
    log_line_str(&l, "auth_error", c->auth_reason);
  }
  if (c->limit) log_line_str(&l, "limit", c->limit);
  if (c->code != RPC_OK && c->code != RPC_INTERNAL) log_line_str(&l, "error", c->message);
  if (c->fault_detail[0]) log_line_str(&l, "fault", c->fault_detail);
  log_line_emit(&l);
}

const interceptor interceptor_logging = {
    .name = "logging",
    .intercept = logging_intercept,
    .on_done = logging_done,
};
