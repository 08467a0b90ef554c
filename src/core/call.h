#ifndef PRODUCT_CORE_CALL_H
#define PRODUCT_CORE_CALL_H
/* The per-call state that the transport fills in, the interceptor pipeline
 * passes along and the handlers answer through. No grpc_* type appears here:
 * the transport translates at the edge. Everything a call allocates lives in
 * c->arena and dies with the call, which is what makes call_panic() safe. */
#include <protobuf-c/protobuf-c.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/clock.h" /* start_ns and deadline_ns are clock_mono_ns() times */
#include "core/rpc_status.h"
#include "core/trace_context.h"

typedef struct call_ctx call_ctx;
typedef struct service_env service_env;

/* Who may call a method; read only by the auth interceptor. */
typedef enum method_policy {
  POLICY_PUBLIC = 0, /* anyone, token or not */
  POLICY_TOKEN = 1,  /* any valid token */
  POLICY_ADMIN = 2,  /* a valid token whose role is "admin" */
} method_policy;

/* A handler reads c->request and ends with call_reply() or call_fail(). */
typedef void (*handler_fn)(call_ctx *c);

/* One row of the method table: policy is data beside the handler. */
typedef struct method_desc {
  const char *path;    /* "/product.ProductService/GetProduct" */
  const char *service; /* "product.ProductService" */
  const char *name;    /* "GetProduct" */
  const ProtobufCMessageDescriptor *request;
  const ProtobufCMessageDescriptor *response;
  handler_fn handler;
  method_policy policy;
  int index; /* position in the method table (metrics arrays) */
} method_desc;

/* A recovery point; call_panic() jumps to the innermost one. */
typedef struct panic_frame {
  sigjmp_buf jump;
  struct panic_frame *prev;
} panic_frame;

struct pipeline;

struct call_ctx {
  const method_desc *method;
  const service_env *env;
  arena *arena;

  /* Request, set by the transport. Pointers stay valid until the call ends. */
  const uint8_t *body; /* raw message bytes; NULL when the client sent none */
  size_t body_len;
  const ProtobufCMessage *request; /* decoded by the pipeline, before the handler */
  const char *peer;                /* "ipv4:127.0.0.1:40174", NUL-terminated */
  const char *authz;               /* first authorization value, not NUL-terminated */
  size_t authz_len;
  unsigned authz_count;            /* how many authorization entries arrived */
  const char *bearer;              /* the token of a well-formed "Bearer <token>" authz, once an */
  size_t bearer_len;               /* interceptor has parsed it (rate_limit, before auth); else NULL */
  const char *test_fault;          /* x-test-fault value (test builds only) */
  int64_t start_ns;                /* CLOCK_MONOTONIC at arrival */
  int64_t deadline_ns;             /* CLOCK_MONOTONIC; INT64_MAX when none */
  trace_ctx trace;                 /* W3C context and this call's server span ids */
  int server_port;                 /* the port the call arrived on (span attribute) */

  /* Identity, set by the auth interceptor from a verified token. */
  bool authenticated;
  const char *sub;
  const char *role;
  const char *auth_reason; /* why a token was refused (log only, never the client) */
  int64_t token_exp;       /* the verified token's exp (seconds) */

  /* Outcome. */
  bool status_set;
  rpc_code code;
  char message[256];               /* status message for the client */
  ProtobufCMessage *response;      /* set with code RPC_OK */
  char fault_detail[256];          /* what went wrong, for the server log only */
  /* Set with a RESOURCE_EXHAUSTED from a rate limit: which one ("read",
   * "write", "auth_failure": the log field) and the wait the client is told
   * (grpc-retry-pushback-ms and a google.rpc.RetryInfo); 0: no retry
   * guidance, no status details. */
  const char *limit;
  int64_t retry_ms;

  /* Pipeline bookkeeping. */
  const struct pipeline *pipeline;
  size_t pipe_pos;
  void **istate; /* per-interceptor state, from the arena */
  panic_frame *panic;
};

/* Ends the call with OK and this response (allocated from the arena). */
void call_reply(call_ctx *c, ProtobufCMessage *response);
/* Ends the call with a non-OK status; the message goes to the client. */
void call_fail(call_ctx *c, rpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same with a message as it is (truncated to fit), for hot paths
 * that build it without printf. */
void call_fail_msg(call_ctx *c, rpc_code code, const char *message);

/* Arena allocation that panics (-> INTERNAL) when memory runs out. */
void *call_alloc(call_ctx *c, size_t size);
char *call_strdup(call_ctx *c, const char *s);

/* The call this thread is running inside the pipeline, or NULL. */
call_ctx *call_current(void);
void call_set_current(call_ctx *c);

/* A child span of the current call's server span (or of the innermost
 * child still open), from the call's arena; NULL outside a call or out of
 * memory or when the call's trace is not recorded (not sampled, no
 * exporter); call_span_end(NULL, ...) is a no-op, so callers need no test. */
trace_child *call_span_begin(const char *name);
void call_span_end(trace_child *s, bool error);

/* Abandons the current call: control returns to the recovery interceptor,
 * which answers INTERNAL with a generic message and logs the detail. Never
 * call it with a lock held or a transaction open. Outside a call (no
 * recovery frame) it logs and aborts. */
_Noreturn void call_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Test builds: a point where the x-test-fault metadata can make the call
 * panic on purpose, to prove recovery. Compiles to nothing otherwise. */
#ifdef PRODUCT_TEST_FAULTS
void call_fault_point(const char *name);
#define FAULT_POINT(name) call_fault_point(name)
#else
#define FAULT_POINT(name) ((void)0)
#endif

#endif
