/* Running the interceptor chain and, at its end, decode + handler. */
#include "interceptors/pipeline.h"

#include <stdio.h>

#include "core/wire_check.h"

static void *state_for(call_ctx *c, size_t i) {
  size_t size = c->pipeline->chain[i]->state_size;
  if (!size) return NULL;
  if (!c->istate) {
    c->istate = arena_calloc(c->arena, c->pipeline->n, sizeof(void *));
    if (!c->istate) call_panic("out of memory for interceptor state");
  }
  if (!c->istate[i]) {
    c->istate[i] = arena_calloc(c->arena, 1, size);
    if (!c->istate[i]) call_panic("out of memory for interceptor state");
  }
  return c->istate[i];
}

/* Decodes the request (UTF-8 checked on the wire first: protobuf-c does not)
 * and runs the handler. */
static void invoke_handler(call_ctx *c) {
  const method_desc *m = c->method;
  if (m->request) {
    if (!c->body) {
      call_fail(c, RPC_INVALID_ARGUMENT, "missing request message");
      return;
    }
    char err[160];
    if (wire_check(m->request, c->body, c->body_len, err, sizeof err) != 0) {
      call_fail(c, RPC_INVALID_ARGUMENT, "%s", err);
      return;
    }
    ProtobufCAllocator alloc;
    arena_pb_allocator(c->arena, &alloc);
    c->request = protobuf_c_message_unpack(m->request, &alloc, c->body_len, c->body);
    if (!c->request) {
      call_fail(c, RPC_INVALID_ARGUMENT, "request is not a valid %s message", m->request->name);
      return;
    }
  }
  FAULT_POINT("handler");
  m->handler(c);
}

void pipeline_next(call_ctx *c) {
  const pipeline *p = c->pipeline;
  size_t i = c->pipe_pos++;
  if (i < p->n) {
    p->chain[i]->intercept(c, state_for(c, i));
    return;
  }
  invoke_handler(c);
}

void pipeline_start(const pipeline *p, call_ctx *c) {
  c->pipeline = p;
  c->pipe_pos = 0;
  call_set_current(c);
  pipeline_next(c);
  call_set_current(NULL);
}

void pipeline_finish(call_ctx *c, bool cancelled) {
  const pipeline *p = c->pipeline;
  if (cancelled) {
    c->code = clock_mono_ns() >= c->deadline_ns ? RPC_DEADLINE_EXCEEDED : RPC_CANCELLED;
    c->response = NULL;
    snprintf(c->message, sizeof c->message, "%s",
             c->code == RPC_CANCELLED ? "the client cancelled the call" : "deadline exceeded");
  }
  size_t entered = c->pipe_pos < p->n ? c->pipe_pos : p->n;
  for (size_t i = entered; i-- > 0;) {
    if (p->chain[i]->on_done) p->chain[i]->on_done(c, c->istate ? c->istate[i] : NULL);
  }
}

void pipeline_run(const pipeline *p, call_ctx *c) {
  pipeline_start(p, c);
  pipeline_finish(c, false);
}
