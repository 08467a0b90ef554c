/* Ending a call, per-call allocation and the panic path; see call.h. */
#include "core/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

static _Thread_local call_ctx *t_current;

call_ctx *call_current(void) { return t_current; }
void call_set_current(call_ctx *c) { t_current = c; }

void call_reply(call_ctx *c, ProtobufCMessage *response) {
  c->response = response;
  c->code = RPC_OK;
  c->message[0] = '\0';
  c->status_set = true;
}

void call_fail(call_ctx *c, rpc_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->message, sizeof c->message, fmt, ap);
  va_end(ap);
  c->response = NULL;
  c->code = code;
  c->status_set = true;
}

void call_fail_msg(call_ctx *c, rpc_code code, const char *message) {
  size_t n = strlen(message);
  if (n >= sizeof c->message) n = sizeof c->message - 1;
  memcpy(c->message, message, n);
  c->message[n] = '\0';
  c->response = NULL;
  c->code = code;
  c->status_set = true;
}

_Noreturn void call_panic(const char *fmt, ...) {
  call_ctx *c = t_current;
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (!c || !c->panic) {
    log_line l;
    log_line_begin(&l, LOG_ERROR, "panic outside a call");
    log_line_str(&l, "detail", detail);
    log_line_emit(&l);
    log_flush();
    abort();
  }
  memcpy(c->fault_detail, detail, sizeof detail);
  siglongjmp(c->panic->jump, 1);
}

void *call_alloc(call_ctx *c, size_t size) {
  void *p = arena_alloc(c->arena, size);
  if (!p) call_panic("out of memory allocating %zu bytes", size);
  return p;
}

char *call_strdup(call_ctx *c, const char *s) {
  char *p = arena_strdup(c->arena, s);
  if (!p) call_panic("out of memory copying a string");
  return p;
}

#ifdef PRODUCT_TEST_FAULTS
void call_fault_point(const char *name) {
  call_ctx *c = t_current;
  if (c && c->test_fault && strcmp(c->test_fault, name) == 0)
    call_panic("test fault '%s' triggered on purpose", name);
}
#endif


trace_child *call_span_begin(const char *name) {
  call_ctx *c = call_current();
  if (!c || !c->arena || !c->trace.recording) return NULL;
  trace_child *s = arena_alloc(c->arena, sizeof *s);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  if (trace_random_id(s->span_id, sizeof s->span_id) != 0) return NULL;
  s->name = name;
  memcpy(s->parent_id, c->trace.span_id, sizeof s->parent_id);
  for (const trace_child *o = c->trace.children; o; o = o->next) {
    if (o->end_ns == 0) { /* newest open one first: the innermost */
      memcpy(s->parent_id, o->span_id, sizeof s->parent_id);
      break;
    }
  }
  s->start_ns = clock_mono_ns();
  s->next = c->trace.children;
  c->trace.children = s;
  return s;
}

void call_span_end(trace_child *s, bool error) {
  if (!s) return;
  s->end_ns = clock_mono_ns();
  s->error = error;
}
