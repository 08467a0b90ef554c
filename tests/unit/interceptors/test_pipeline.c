/* Tests for interceptors/: the chain runs in order, recovery turns a panic
 * (or a handler that never answers) into INTERNAL with the detail kept for
 * the log, observers still see the final outcome, and auth applies the
 * method's policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "google/protobuf/empty.pb-c.h"
#include "interceptors/interceptors.h"
#include "service/env.h"

/* ------------------------------------------------------------ fixtures --- */

static char trace[256];

static void record(const char *what) {
  size_t n = strlen(trace);
  snprintf(trace + n, sizeof trace - n, "%s;", what);
}

static void outer_intercept(call_ctx *c, void *state) {
  (void)state;
  record("outer");
  pipeline_next(c);
}
static void outer_done(call_ctx *c, void *state) {
  (void)state;
  char buf[64];
  snprintf(buf, sizeof buf, "outer_done=%s", rpc_code_name(c->code));
  record(buf);
}
static const interceptor outer = {.name = "outer", .intercept = outer_intercept, .on_done = outer_done};

static void stateful_intercept(call_ctx *c, void *state) {
  int *counter = state;
  assert_non_null(counter);
  assert_int_equal(*counter, 0); /* zeroed per call */
  *counter = 1;
  pipeline_next(c);
}
static const interceptor stateful = {.name = "stateful", .state_size = sizeof(int),
                                     .intercept = stateful_intercept};

static void reply_empty(call_ctx *c) {
  Google__Protobuf__Empty *e = call_alloc(c, sizeof(*e));
  google__protobuf__empty__init(e);
  record("handler");
  call_reply(c, &e->base);
}
/* Recurses so that the panic starts deep below the handler's frame. */
static int panic_deep(int depth) {
  if (depth < 0) return 0;
  if (depth == 0) call_panic("deep failure %d", 42);
  return panic_deep(depth - 1) + 1;
}
static void handler_panics(call_ctx *c) {
  (void)c;
  record("handler");
  (void)panic_deep(10);
}
static void handler_forgets(call_ctx *c) { (void)c; }
static void handler_ooms(call_ctx *c) { call_alloc(c, (size_t)1 << 30); }

static method_desc method(handler_fn h, method_policy policy) {
  method_desc m = {.path = "/test.Svc/M", .service = "test.Svc", .name = "M",
                   .request = &google__protobuf__empty__descriptor,
                   .response = &google__protobuf__empty__descriptor,
                   .handler = h, .policy = policy};
  return m;
}

static service_env env;
static const uint8_t empty_body[1];

static void run(const pipeline *p, const method_desc *m, call_ctx *c, arena *a) {
  memset(c, 0, sizeof *c);
  c->method = m;
  c->env = &env;
  c->arena = a;
  c->body = empty_body;
  c->body_len = 0;
  c->peer = "ipv4:127.0.0.1:1";
  trace[0] = '\0';
  pipeline_run(p, c);
}

/* --------------------------------------------------------------- tests --- */

static void test_chain_runs_in_order_then_handler(void **state) {
  (void)state;
  const interceptor *chain[] = {&interceptor_recovery, &outer, &stateful};
  pipeline p = {.chain = chain, .n = 3};
  method_desc m = method(reply_empty, POLICY_PUBLIC);
  arena *a = arena_create(0);
  call_ctx c;
  run(&p, &m, &c, a);
  assert_int_equal(c.code, RPC_OK);
  assert_non_null(c.response);
  assert_string_equal(trace, "outer;handler;outer_done=OK;");
  arena_destroy(a);
}

static void test_panic_becomes_internal_with_detail_for_the_log(void **state) {
  (void)state;
  const interceptor *chain[] = {&interceptor_recovery, &outer};
  pipeline p = {.chain = chain, .n = 2};
  method_desc m = method(handler_panics, POLICY_PUBLIC);
  arena *a = arena_create(0);
  call_ctx c;
  run(&p, &m, &c, a);
  assert_int_equal(c.code, RPC_INTERNAL);
  assert_null(c.response);
  assert_string_equal(c.message, "internal error"); /* generic for the client */
  assert_string_equal(c.fault_detail, "deep failure 42");
  /* The observer behind recovery still saw the final outcome. */
  assert_string_equal(trace, "outer;handler;outer_done=INTERNAL;");
  assert_null(call_current());
  /* The next call on the same thread is unaffected. */
  method_desc ok = method(reply_empty, POLICY_PUBLIC);
  arena_reset(a);
  run(&p, &ok, &c, a);
  assert_int_equal(c.code, RPC_OK);
  arena_destroy(a);
}

static void test_handler_without_answer_is_internal(void **state) {
  (void)state;
  const interceptor *chain[] = {&interceptor_recovery};
  pipeline p = {.chain = chain, .n = 1};
  method_desc m = method(handler_forgets, POLICY_PUBLIC);
  arena *a = arena_create(0);
  call_ctx c;
  run(&p, &m, &c, a);
  assert_int_equal(c.code, RPC_INTERNAL);
  assert_non_null(strstr(c.fault_detail, "without a response"));
  arena_destroy(a);
}

static void test_allocation_failure_is_internal(void **state) {
  (void)state;
  const interceptor *chain[] = {&interceptor_recovery};
  pipeline p = {.chain = chain, .n = 1};
  method_desc m = method(handler_ooms, POLICY_PUBLIC);
  arena *a = arena_create(0);
  call_ctx c;
  run(&p, &m, &c, a);
  assert_int_equal(c.code, RPC_INTERNAL);
  assert_non_null(strstr(c.fault_detail, "out of memory"));
  arena_destroy(a);
}

static void test_undecodable_body_is_invalid_argument(void **state) {
  (void)state;
  const interceptor *chain[] = {&interceptor_recovery};
  pipeline p = {.chain = chain, .n = 1};
  method_desc m = method(reply_empty, POLICY_PUBLIC);
  arena *a = arena_create(0);
  call_ctx c;
  static const uint8_t garbage[] = {0xff, 0xff, 0xff};
  memset(&c, 0, sizeof c);
  c.method = &m;
  c.env = &env;
  c.arena = a;
  c.body = garbage;
  c.body_len = sizeof garbage;
  pipeline_run(&p, &c);
  assert_int_equal(c.code, RPC_INVALID_ARGUMENT);
  arena_reset(a);
  memset(&c, 0, sizeof c);
  c.method = &m;
  c.env = &env;
  c.arena = a;
  c.body = NULL; /* the client sent no message at all */
  pipeline_run(&p, &c);
  assert_int_equal(c.code, RPC_INVALID_ARGUMENT);
  arena_destroy(a);
}

static void test_a_call_the_client_left_is_observed_as_cancelled(void **state) {
  (void)state;
  const interceptor *chain[] = {&interceptor_recovery, &outer};
  pipeline p = {.chain = chain, .n = 2};
  method_desc m = method(reply_empty, POLICY_PUBLIC);
  arena *a = arena_create(0);
  call_ctx c;
  memset(&c, 0, sizeof c);
  c.method = &m;
  c.env = &env;
  c.arena = a;
  c.body = empty_body;
  c.deadline_ns = INT64_MAX;
  trace[0] = '\0';
  pipeline_start(&p, &c);
  assert_int_equal(c.code, RPC_OK);
  assert_string_equal(trace, "outer;handler;"); /* observers wait for the finish */
  pipeline_finish(&c, true);
  assert_string_equal(trace, "outer;handler;outer_done=CANCELLED;");
  /* Past its deadline, the same is a DEADLINE_EXCEEDED. */
  arena_reset(a);
  memset(&c, 0, sizeof c);
  c.method = &m;
  c.env = &env;
  c.arena = a;
  c.body = empty_body;
  c.deadline_ns = clock_mono_ns() - 1;
  trace[0] = '\0';
  pipeline_start(&p, &c);
  pipeline_finish(&c, true);
  assert_string_equal(trace, "outer;handler;outer_done=DEADLINE_EXCEEDED;");
  arena_destroy(a);
}

/* ---------------------------------------------------------------- auth --- */

static const char test_secret[] = "0123456789abcdef0123456789abcdef-test-only";

static void b64url(const unsigned char *in, size_t n, char *out) {
  static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = al[v >> 18];
    out[o++] = al[(v >> 12) & 63];
    out[o++] = al[(v >> 6) & 63];
    out[o++] = al[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)in[i] << 16;
    out[o++] = al[v >> 18];
    out[o++] = al[(v >> 12) & 63];
  } else if (n - i == 2) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
    out[o++] = al[v >> 18];
    out[o++] = al[(v >> 12) & 63];
    out[o++] = al[(v >> 6) & 63];
  }
  out[o] = '\0';
}

/* "Bearer <HS256 token>" with the given role (NULL: none). */
static void bearer(const char *role, int64_t exp_offset, char *out, size_t outlen) {
  char payload[512], hdr64[64], pay64[700], sig64[64], input[800];
  long now = (long)time(NULL);
  if (role)
    snprintf(payload, sizeof payload,
             "{\"sub\":\"alice\",\"role\":\"%s\",\"iss\":\"product-service\",\"aud\":\"client\","
             "\"iat\":%ld,\"exp\":%ld}", role, now, now + (long)exp_offset);
  else
    snprintf(payload, sizeof payload,
             "{\"sub\":\"alice\",\"iss\":\"product-service\",\"aud\":\"client\",\"iat\":%ld,"
             "\"exp\":%ld}", now, now + (long)exp_offset);
  static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  b64url((const unsigned char *)hdr, strlen(hdr), hdr64);
  b64url((const unsigned char *)payload, strlen(payload), pay64);
  snprintf(input, sizeof input, "%s.%s", hdr64, pay64);
  unsigned char mac[32];
  unsigned maclen = 0;
  HMAC(EVP_sha256(), test_secret, (int)strlen(test_secret), (const unsigned char *)input, strlen(input), mac,
       &maclen);
  b64url(mac, maclen, sig64);
  snprintf(out, outlen, "Bearer %s.%s", input, sig64);
}

static void run_auth(method_policy policy, const char *authz, unsigned count, call_ctx *c, arena *a) {
  static const interceptor *chain[] = {&interceptor_recovery, &interceptor_auth};
  static const pipeline p = {.chain = chain, .n = 2};
  static method_desc m;
  m = method(reply_empty, policy);
  arena_reset(a);
  memset(c, 0, sizeof *c);
  c->method = &m;
  c->env = &env;
  c->arena = a;
  c->body = empty_body;
  c->authz = authz;
  c->authz_len = authz ? strlen(authz) : 0;
  c->authz_count = count;
  pipeline_run(&p, c);
}

static int auth_setup(void **state) {
  (void)state;
  static config cfg;
  cfg.jwt_leeway_s = 30;
  jwt_verifier *v;
  jwt_verifier_options o = {.secret = (const unsigned char *)test_secret, .secret_len = strlen(test_secret),
                            .issuer = "product-service", .audience = "client", .leeway_s = 30};
  if (jwt_verifier_create(&o, &v) != 0) return -1;
  env.verifier = v;
  env.cfg = &cfg;
  return 0;
}

static int auth_teardown(void **state) {
  (void)state;
  jwt_verifier_destroy((jwt_verifier *)env.verifier);
  return 0;
}

static void test_auth_policies(void **state) {
  (void)state;
  arena *a = arena_create(0);
  call_ctx c;
  char user[1024], admin[1024], expired[1024];
  bearer("user", 3600, user, sizeof user);
  bearer("admin", 3600, admin, sizeof admin);
  bearer("admin", -3600, expired, sizeof expired);

  run_auth(POLICY_PUBLIC, NULL, 0, &c, a);
  assert_int_equal(c.code, RPC_OK);
  assert_false(c.authenticated);
  run_auth(POLICY_PUBLIC, "Bearer garbage", 1, &c, a); /* ignored on public methods */
  assert_int_equal(c.code, RPC_OK);
  run_auth(POLICY_PUBLIC, user, 1, &c, a); /* but a valid one names the caller */
  assert_true(c.authenticated);
  assert_string_equal(c.sub, "alice");

  run_auth(POLICY_TOKEN, NULL, 0, &c, a);
  assert_int_equal(c.code, RPC_UNAUTHENTICATED);
  run_auth(POLICY_TOKEN, "Bearer garbage", 1, &c, a);
  assert_int_equal(c.code, RPC_UNAUTHENTICATED);
  assert_string_equal(c.auth_reason, "malformed");
  run_auth(POLICY_TOKEN, expired, 1, &c, a);
  assert_int_equal(c.code, RPC_UNAUTHENTICATED);
  assert_string_equal(c.auth_reason, "expired");
  run_auth(POLICY_TOKEN, user, 2, &c, a); /* two authorization entries */
  assert_int_equal(c.code, RPC_UNAUTHENTICATED);
  run_auth(POLICY_TOKEN, user, 1, &c, a);
  assert_int_equal(c.code, RPC_OK);
  run_auth(POLICY_TOKEN, user, 1, &c, a); /* again: from the cache */
  assert_int_equal(c.code, RPC_OK);
  assert_string_equal(c.role, "user");

  run_auth(POLICY_ADMIN, user, 1, &c, a);
  assert_int_equal(c.code, RPC_PERMISSION_DENIED);
  run_auth(POLICY_ADMIN, user, 1, &c, a); /* a cache hit still checks the role */
  assert_int_equal(c.code, RPC_PERMISSION_DENIED);
  run_auth(POLICY_ADMIN, admin, 1, &c, a);
  assert_int_equal(c.code, RPC_OK);
  /* The status never echoes the token. */
  run_auth(POLICY_TOKEN, expired, 1, &c, a);
  assert_null(strstr(c.message, expired + 7));
  arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_runs_in_order_then_handler),
      cmocka_unit_test(test_panic_becomes_internal_with_detail_for_the_log),
      cmocka_unit_test(test_handler_without_answer_is_internal),
      cmocka_unit_test(test_allocation_failure_is_internal),
      cmocka_unit_test(test_undecodable_body_is_invalid_argument),
      cmocka_unit_test(test_a_call_the_client_left_is_observed_as_cancelled),
      cmocka_unit_test_setup_teardown(test_auth_policies, auth_setup, auth_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
