/* Tests for interceptors/rate_limit.c, without sockets: the interceptor runs
 * in a pipeline (recovery, rate_limit, a scripted auth) on a hand-made call,
 * and the test sees whether auth and the handler ran and what the call's
 * outcome was.
 *
 * The interceptor reads clock_mono_ns() itself (the clock is not injected
 * there), so every limit here refills at one token per 10^6 s: no refill can
 * happen while a test runs, however slow the machine, and a refused call's
 * wait is close to 10^9 ms whatever the wall time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/bearer.h"
#include "auth/verified_tokens.h"
#include "core/rate_limiter.h"
#include "google/protobuf/empty.pb-c.h"
#include "interceptors/interceptors.h"
#include "service/env.h"

/* ------------------------------------------------------------ fixtures --- */

#define SLOW_RATE 1e-6         /* tokens per second: one per 10^6 s */
#define FULL_WAIT_MS 1000000000 /* the wait for one token at SLOW_RATE */
#define READ_BURST 2
#define WRITE_BURST 1
#define AUTH_FAILURE_BURST 2

static service_env env;
static int auth_runs, handler_runs;

/* Stands in for the auth interceptor: no token is public (passes
 * unauthenticated); a token "bad..." is refused; any other token "<sub>.<x>"
 * names the caller <sub>. */
static void fake_auth_intercept(call_ctx *c, void *state) {
  (void)state;
  auth_runs++;
  /* Like auth: the token rate_limit parsed, else its own parse (health and
   * reflection calls skip rate_limit's). */
  if (!c->bearer && c->authz_count > 0 &&
      bearer_parse(c->authz_count, c->authz, c->authz_len, &c->bearer, &c->bearer_len) !=
          BEARER_OK)
    c->bearer = NULL;
  if (c->bearer) {
    if (c->bearer_len >= 3 && memcmp(c->bearer, "bad", 3) == 0) {
      c->auth_reason = "bad_signature";
      call_fail(c, RPC_UNAUTHENTICATED, "invalid token");
      return;
    }
    const char *dot = memchr(c->bearer, '.', c->bearer_len);
    size_t n = dot ? (size_t)(dot - c->bearer) : c->bearer_len;
    char *sub = call_alloc(c, n + 1);
    memcpy(sub, c->bearer, n);
    sub[n] = '\0';
    c->authenticated = true;
    c->sub = sub;
    c->token_exp = (int64_t)time(NULL) + 3600;
  }
  pipeline_next(c);
}
static const interceptor fake_auth = {.name = "fake_auth", .intercept = fake_auth_intercept};

static void reply_empty(call_ctx *c) {
  Google__Protobuf__Empty *e = call_alloc(c, sizeof(*e));
  google__protobuf__empty__init(e);
  handler_runs++;
  call_reply(c, &e->base);
}

static method_desc method(const char *service, const char *name) {
  method_desc m = {.path = "/x/y", .service = service, .name = name,
                   .request = &google__protobuf__empty__descriptor,
                   .response = &google__protobuf__empty__descriptor,
                   .handler = reply_empty, .policy = POLICY_PUBLIC};
  return m;
}

static method_desc get_product, create_product, health_check, reflection;

static int setup(void **state) {
  (void)state;
  memset(&env, 0, sizeof env);
  rl_rate rates[RL_LIMIT_COUNT] = {
      [RL_READ] = {.rate = SLOW_RATE, .burst = READ_BURST},
      [RL_WRITE] = {.rate = SLOW_RATE, .burst = WRITE_BURST},
      [RL_AUTH_FAILURE] = {.rate = SLOW_RATE, .burst = AUTH_FAILURE_BURST},
  };
  env.limiter = rate_limiter_create(rates, 1024);
  env.verified = verified_tokens_create(64);
  if (!env.limiter || !env.verified) return -1;
  get_product = method("product.ProductService", "GetProduct");
  create_product = method("product.ProductService", "CreateProduct");
  health_check = method("grpc.health.v1.Health", "Check");
  reflection = method("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rate_limiter_destroy(env.limiter);
  verified_tokens_destroy(env.verified);
  memset(&env, 0, sizeof env);
  return 0;
}

typedef struct outcome {
  rpc_code code;
  char message[256];
  const char *limit; /* a string literal from rl_limit_name, or NULL */
  int64_t retry_ms;
  bool auth_ran, handler_ran;
  char sub[64]; /* c->sub when set */
} outcome;

static const uint8_t empty_body[1];

/* One call of m from peer with authz (a whole "Bearer ..." value, or NULL
 * for none), through recovery, rate_limit and the scripted auth; on_done
 * hooks run before it returns. */
static outcome call(const method_desc *m, const char *peer, const char *authz) {
  static const interceptor *chain[] = {&interceptor_recovery, &interceptor_rate_limit,
                                       &fake_auth};
  pipeline p = {.chain = chain, .n = 3};
  arena *a = arena_create(0);
  assert_non_null(a);
  call_ctx c;
  memset(&c, 0, sizeof c);
  c.method = m;
  c.env = &env;
  c.arena = a;
  c.body = empty_body;
  c.peer = peer;
  c.authz = authz;
  c.authz_len = authz ? strlen(authz) : 0;
  c.authz_count = authz ? 1 : 0;
  c.deadline_ns = INT64_MAX;
  int auth_before = auth_runs, handler_before = handler_runs;
  pipeline_run(&p, &c);
  outcome o = {.code = c.code, .limit = c.limit, .retry_ms = c.retry_ms,
               .auth_ran = auth_runs > auth_before, .handler_ran = handler_runs > handler_before};
  snprintf(o.message, sizeof o.message, "%s", c.message);
  if (c.sub) snprintf(o.sub, sizeof o.sub, "%s", c.sub);
  arena_destroy(a);
  return o;
}

static void assert_passed(const outcome *o) {
  assert_int_equal(o->code, RPC_OK);
  assert_true(o->auth_ran);
  assert_true(o->handler_ran);
  assert_null(o->limit);
  assert_int_equal(o->retry_ms, 0);
}

/* Refused by a rate limit: RESOURCE_EXHAUSTED, the limit for the log, a wait
 * near one token's refill at SLOW_RATE, the message the contract gives, and
 * neither auth nor the handler ran. */
static void assert_refused(const outcome *o, const char *limit, const char *what) {
  assert_int_equal(o->code, RPC_RESOURCE_EXHAUSTED);
  assert_non_null(o->limit);
  assert_string_equal(o->limit, limit);
  /* Rounded up, so at most the whole wait; far more than half of it (the
   * bucket is empty, nothing refilled: not a speed budget). */
  assert_true(o->retry_ms > FULL_WAIT_MS / 2);
  assert_true(o->retry_ms <= FULL_WAIT_MS);
  char want[256];
  snprintf(want, sizeof want, "%s; retry in %" PRId64 " ms", what, o->retry_ms);
  assert_string_equal(o->message, want);
  assert_false(o->auth_ran);
  assert_false(o->handler_ran);
}

/* Holds token as verified before, for its sub (as auth would have). */
static void hold(const char *token, const char *sub) {
  verified_tokens_put(env.verified, token, strlen(token), sub, (int64_t)time(NULL) + 3600);
}

#define PEER_A "ipv4:10.0.0.7:5123"
#define PEER_B "ipv4:10.0.0.8:5123"

/* --------------------------------------------------------------- tests --- */

static void test_within_bucket_passes_beyond_refused(void **state) {
  (void)state;
  for (int i = 0; i < READ_BURST; i++) {
    outcome o = call(&get_product, PEER_A, NULL);
    assert_passed(&o);
  }
  outcome o = call(&get_product, PEER_A, NULL);
  assert_refused(&o, "read", "rate limit exceeded for read");
  /* Still refused: the refusal took nothing back. */
  o = call(&get_product, PEER_A, NULL);
  assert_refused(&o, "read", "rate limit exceeded for read");
}

static void test_write_class_has_its_own_bucket(void **state) {
  (void)state;
  outcome o = call(&create_product, PEER_A, NULL);
  assert_passed(&o);
  o = call(&create_product, PEER_A, NULL);
  assert_refused(&o, "write", "rate limit exceeded for write");
  /* The read bucket is untouched by writes. */
  for (int i = 0; i < READ_BURST; i++) {
    o = call(&get_product, PEER_A, NULL);
    assert_passed(&o);
  }
  o = call(&get_product, PEER_A, NULL);
  assert_refused(&o, "read", "rate limit exceeded for read");
}

static void test_health_and_reflection_never_limited(void **state) {
  (void)state;
  for (int i = 0; i < READ_BURST; i++) (void)call(&get_product, PEER_A, NULL);
  outcome o = call(&get_product, PEER_A, NULL);
  assert_int_equal(o.code, RPC_RESOURCE_EXHAUSTED); /* this address is out of budget */
  /* Out of failed-authentication budget too. */
  for (int i = 0; i < AUTH_FAILURE_BURST; i++) (void)call(&get_product, PEER_A, "Bearer bad.1");
  for (int i = 0; i < 10 * READ_BURST; i++) {
    o = call(&health_check, PEER_A, NULL);
    assert_passed(&o);
    o = call(&reflection, PEER_A, NULL);
    assert_passed(&o);
    o = call(&health_check, PEER_A, "Bearer bad.2");
    assert_int_equal(o.code, RPC_UNAUTHENTICATED); /* auth decided, not the limiter */
    assert_true(o.auth_ran);
    assert_null(o.limit);
  }
}

static void test_limits_off_never_limit(void **state) {
  (void)state;
  rate_limiter *rl = env.limiter;
  env.limiter = NULL; /* every limit off */
  for (int i = 0; i < 10 * READ_BURST; i++) {
    outcome o = call(&get_product, PEER_A, NULL);
    assert_passed(&o);
  }
  env.limiter = rl;
}

static void test_callers_do_not_share_a_bucket(void **state) {
  (void)state;
  hold("alice.t1", "alice");
  hold("bob.t1", "bob");
  for (int i = 0; i < READ_BURST; i++) {
    outcome o = call(&get_product, PEER_A, "Bearer alice.t1");
    assert_passed(&o);
  }
  outcome o = call(&get_product, PEER_A, "Bearer alice.t1");
  assert_refused(&o, "read", "rate limit exceeded for read");
  assert_string_equal(o.sub, "alice"); /* who was refused, for the log */
  /* bob, from the same address, has his own bucket. */
  for (int i = 0; i < READ_BURST; i++) {
    o = call(&get_product, PEER_A, "Bearer bob.t1");
    assert_passed(&o);
  }
  o = call(&get_product, PEER_A, "Bearer bob.t1");
  assert_refused(&o, "read", "rate limit exceeded for read");
  assert_string_equal(o.sub, "bob");
  /* And the address's own bucket (calls without a token) is a third one;
   * another address is a fourth. */
  for (int i = 0; i < READ_BURST; i++) {
    o = call(&get_product, PEER_A, NULL);
    assert_passed(&o);
    o = call(&get_product, PEER_B, NULL);
    assert_passed(&o);
  }
  o = call(&get_product, PEER_B, NULL);
  assert_refused(&o, "read", "rate limit exceeded for read");
}

/* A token not verified before: auth must name its caller, so its call is
 * let through and counted afterwards (on_done) against the sub auth found. */
static void test_new_token_counted_once_auth_named_the_caller(void **state) {
  (void)state;
  outcome o = call(&get_product, PEER_A, "Bearer carol.t1"); /* new: deferred */
  assert_passed(&o);
  /* It was counted against carol: one token left of READ_BURST, and the
   * token is now held, so the next calls are checked before auth. */
  o = call(&get_product, PEER_A, "Bearer carol.t1");
  assert_passed(&o);
  o = call(&get_product, PEER_A, "Bearer carol.t1");
  assert_refused(&o, "read", "rate limit exceeded for read");
  assert_string_equal(o.sub, "carol");
  /* A second, new token of carol's: its first use passes though her bucket
   * is empty (only auth can tell whose it is; it paid for an HMAC) ... */
  o = call(&get_product, PEER_A, "Bearer carol.t2");
  assert_passed(&o);
  /* ... and is refused from then on. */
  o = call(&get_product, PEER_A, "Bearer carol.t2");
  assert_refused(&o, "read", "rate limit exceeded for read");
  /* Not against the address: a call without a token still has its bucket. */
  for (int i = 0; i < READ_BURST; i++) {
    o = call(&get_product, PEER_A, NULL);
    assert_passed(&o);
  }
}

/* A new token that auth refuses is counted against the address, for the
 * class and for failed authentications. */
static void test_refused_new_token_counted_against_address(void **state) {
  (void)state;
  outcome o = call(&get_product, PEER_A, "Bearer bad.1");
  assert_int_equal(o.code, RPC_UNAUTHENTICATED);
  assert_true(o.auth_ran);
  assert_false(o.handler_ran);
  /* One read token of the address is gone. */
  o = call(&get_product, PEER_A, NULL);
  assert_passed(&o);
  o = call(&get_product, PEER_A, NULL);
  assert_refused(&o, "read", "rate limit exceeded for read");
}

static void test_failed_authentications_empty_the_address_budget(void **state) {
  (void)state;
  hold("dave.t1", "dave");
  for (int i = 0; i < AUTH_FAILURE_BURST; i++) {
    outcome o = call(&create_product, PEER_A, "Bearer bad.1");
    assert_int_equal(o.code, RPC_UNAUTHENTICATED);
    assert_true(o.auth_ran);
  }
  /* Budget empty: a token not verified before is refused before auth. */
  outcome o = call(&get_product, PEER_A, "Bearer bad.2");
  assert_refused(&o, "auth_failure", "too many failed authentications");
  o = call(&get_product, PEER_A, "Bearer erin.t1"); /* even one that would be valid */
  assert_refused(&o, "auth_failure", "too many failed authentications");
  /* A call without a token (public) is served as usual. */
  o = call(&get_product, PEER_A, NULL);
  assert_passed(&o);
  /* A token verified before is known valid: it passes. */
  o = call(&get_product, PEER_A, "Bearer dave.t1");
  assert_passed(&o);
  /* Another address has its own budget. */
  o = call(&get_product, PEER_B, "Bearer bad.3");
  assert_int_equal(o.code, RPC_UNAUTHENTICATED);
  assert_true(o.auth_ran);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_within_bucket_passes_beyond_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_class_has_its_own_bucket, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_and_reflection_never_limited, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limits_off_never_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_callers_do_not_share_a_bucket, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_token_counted_once_auth_named_the_caller, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refused_new_token_counted_against_address, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_failed_authentications_empty_the_address_budget,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
