/* Rate limits: the per-caller call limits by method class and the
 * failed-authentication budget of a client address (product-server(8),
 * "Rate limits"). It sits right before auth, so a refused call costs no HMAC
 * and no store work, and after logging and metrics, which see it.
 *
 * The caller is the sub of a valid token, else the client address. Before
 * auth runs, a token is known to be valid only if the server verified it
 * before and still holds it (auth/verified_tokens.h): its sub is then known
 * without an HMAC. A token not held is new: while the address's failed-
 * authentication bucket is empty such a call is refused before auth looks at
 * it; otherwise auth verifies it, and its call is counted once the outcome
 * is known (on_done), against the sub it turned out to carry or the address.
 * So only a first use of a token can pass a bucket that is already empty,
 * and each such call paid for an HMAC. Health checks and reflection are
 * never limited. */
#include "interceptors/interceptors.h"

#include <string.h>
#include <time.h>

#include "auth/bearer.h"
#include "auth/jwt_verify.h"
#include "auth/verified_tokens.h"
#include "core/rate_limiter.h"
#include "metrics/metrics.h"
#include "service/env.h"

typedef struct rl_state {
  bool on;           /* the call is subject to the limits */
  bool has_class;    /* a product method: read or write */
  rl_limit cls;
  bool known;        /* the token was in the verified set */
  const char *token; /* a parseable bearer token, else NULL */
  size_t token_len;
  char addr[64];     /* the client address (rl_peer_address) */
} rl_state;

static bool class_of(const method_desc *m, rl_limit *out) {
  static const char service[] = "product.ProductService";
  if (!m->service || strcmp(m->service, service) != 0) return false;
  if (strcmp(m->name, "GetProduct") == 0 || strcmp(m->name, "ListProducts") == 0) {
    *out = RL_READ;
    return true;
  }
  if (strcmp(m->name, "CreateProduct") == 0 || strcmp(m->name, "UpdateProduct") == 0 ||
      strcmp(m->name, "DeleteProduct") == 0) {
    *out = RL_WRITE;
    return true;
  }
  return false;
}

/* Refuses the call: "<what>; retry in <wait_ms> ms", put together without
 * printf (it is on every refused call's path). */
static void refuse(call_ctx *c, rl_limit l, int64_t wait_ms) {
  c->limit = rl_limit_name(l);
  c->retry_ms = wait_ms;
  metrics_rate_limited(c->env->metrics, l);
  char digits[24], *d = digits + sizeof digits;
  uint64_t v = wait_ms > 0 ? (uint64_t)wait_ms : 0;
  do {
    *--d = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  const char *parts[] = {l == RL_AUTH_FAILURE ? "too many failed authentications"
                                              : "rate limit exceeded for ",
                         l == RL_AUTH_FAILURE ? "" : rl_limit_name(l), "; retry in ", d, " ms"};
  size_t lens[] = {strlen(parts[0]), strlen(parts[1]), 11, (size_t)(digits + sizeof digits - d),
                   3};
  char msg[96], *m = msg; /* at most 31 + 5 + 11 + 20 + 3 bytes */
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    memcpy(m, parts[i], lens[i]);
    m += lens[i];
  }
  *m = '\0';
  call_fail_msg(c, RPC_RESOURCE_EXHAUSTED, msg);
}

static void rate_limit_intercept(call_ctx *c, void *state) {
  rl_state *st = state;
  rate_limiter *rl = c->env ? c->env->limiter : NULL;
  rl_limit cls = RL_READ;
  if (!rl || !class_of(c->method, &cls)) { /* off, or health */
    pipeline_next(c);
    return;
  }
  st->on = true;
  st->cls = cls;
  st->has_class = rate_limiter_on(rl, cls);
  rl_peer_address(c->peer, st->addr, sizeof st->addr);
  int64_t now = clock_mono_ns(), wait_ms = 0;

  char sub[JWT_SUB_MAX + 1];
  if (c->authz_count > 0 &&
      bearer_parse(c->authz_count, c->authz, c->authz_len, &st->token, &st->token_len) ==
          BEARER_OK) {
    c->bearer = st->token; /* auth does not parse it again */
    c->bearer_len = st->token_len;
    st->known = verified_tokens_get(c->env->verified, st->token, st->token_len,
                                    (int64_t)time(NULL), sub, sizeof sub);
  } else {
    st->token = NULL;
  }
  /* A token the server has not verified, from an address out of budget: no
   * HMAC for it. A call without a token is served as usual. */
  if (c->authz_count > 0 && !st->known &&
      !rate_limiter_has(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, st->addr, now, &wait_ms)) {
    refuse(c, RL_AUTH_FAILURE, wait_ms);
    return;
  }
  if (st->has_class) {
    if (st->known) {
      if (!rate_limiter_take(rl, cls, RL_CALLER_SUB, sub, now, &wait_ms)) {
        /* For the log line: who was refused (a token verified before;
         * the call is still not authenticated). */
        c->sub = call_strdup(c, sub);
        refuse(c, cls, wait_ms);
        return;
      }
    } else if (st->token) {
      /* Who the caller is, only auth can say: counted in on_done. */
    } else if (!rate_limiter_take(rl, cls, RL_CALLER_ADDR, st->addr, now, &wait_ms)) {
      refuse(c, cls, wait_ms); /* no token, or one that cannot be valid */
      return;
    }
  }
  pipeline_next(c);
}

static void rate_limit_done(call_ctx *c, void *state) {
  rl_state *st = state;
  if (!st || !st->on) return;
  rate_limiter *rl = c->env->limiter;
  /* A new token's call that this interceptor let through (it set no limit)
   * is counted now, against the caller auth found. */
  bool deferred = st->has_class && st->token && !st->known && !c->limit;
  bool failed = c->code == RPC_UNAUTHENTICATED;
  if (st->token && !st->known && c->authenticated && c->sub) {
    int64_t leeway = c->env->cfg ? c->env->cfg->jwt_leeway_s : 0;
    int64_t until = c->token_exp > INT64_MAX - leeway ? INT64_MAX : c->token_exp + leeway;
    verified_tokens_put(c->env->verified, st->token, st->token_len, c->sub, until);
  }
  if (!failed && !deferred) return; /* nothing to charge: no clock read */
  int64_t now = clock_mono_ns();
  if (failed) {
    rate_limiter_charge(rl, RL_AUTH_FAILURE, RL_CALLER_ADDR, st->addr, now);
    /* Held but refused after all (a new revocation, a removed key). */
    if (st->known) verified_tokens_remove(c->env->verified, st->token, st->token_len);
  }
  if (deferred) {
    if (c->authenticated && c->sub)
      rate_limiter_charge(rl, st->cls, RL_CALLER_SUB, c->sub, now);
    else
      rate_limiter_charge(rl, st->cls, RL_CALLER_ADDR, st->addr, now);
  }
}

const interceptor interceptor_rate_limit = {
    .name = "rate_limit",
    .state_size = sizeof(rl_state),
    .intercept = rate_limit_intercept,
    .on_done = rate_limit_done,
};
