/* Recovery: the outermost interceptor. A panic anywhere below it (call_panic:
 * an explicit fault, an allocation failure) unwinds here with siglongjmp; the
 * call answers INTERNAL with a generic message and the detail goes to the log
 * only. Memory needs no unwinding: it all belongs to the call's arena. A
 * handler that returns with neither a response nor a status is a fault too. */
#include "interceptors/interceptors.h"

#include "core/log.h"

static void fail_internal(call_ctx *c) {
  c->response = NULL;
  c->code = RPC_INTERNAL;
  snprintf(c->message, sizeof c->message, "internal error");
  c->status_set = true;
}

/* A fault gets a line of its own (no "method" key: it is not a call line,
 * product-server(8) "Logs"), written at once, besides the call's own line. */
static void log_fault(const call_ctx *c) {
  log_line l;
  log_line_begin(&l, LOG_ERROR, "recovered from a fault in a call");
  log_line_str(&l, "rpc", c->method->path);
  log_line_str(&l, "fault", c->fault_detail);
  log_line_emit(&l);
}

static void recovery_intercept(call_ctx *c, void *state) {
  (void)state;
  panic_frame frame;
  frame.prev = c->panic;
  c->panic = &frame;
  if (sigsetjmp(frame.jump, 0) == 0) {
    pipeline_next(c);
  } else {
    fail_internal(c); /* c->fault_detail was filled in by call_panic */
    log_fault(c);
  }
  c->panic = frame.prev;
  if (!c->status_set || (c->code == RPC_OK && !c->response)) {
    snprintf(c->fault_detail, sizeof c->fault_detail,
             "handler returned without a response or a status");
    fail_internal(c);
    log_fault(c);
  }
}

const interceptor interceptor_recovery = {
    .name = "recovery",
    .intercept = recovery_intercept,
};
