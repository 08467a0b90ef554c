/* Auth: reads the method's policy from the method table and the bearer token
 * from the call; handlers never check roles. A refused call gets a generic
 * status; the precise reason (expired, bad_signature, ...) goes to the log
 * only. On public methods a valid token still names the caller in the log,
 * and an invalid one is ignored. Verified tokens are remembered in a small
 * per-thread cache (auth/token_cache.h): a hit skips the HMAC and the JSON
 * decode but still checks the validity window and the role. With a key set
 * or a revocation list the call takes the snapshot in force (lock-free) and
 * the cache only answers for entries of that snapshot's generation. */
#include "interceptors/interceptors.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "auth/bearer.h"
#include "auth/jwt_verify.h"
#include "auth/keyring.h"
#include "auth/token_cache.h"
#include "service/env.h"

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;

static void cache_free(void *p) { token_cache_destroy(p); }
static void cache_key_init(void) { cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0; }

/* This thread's cache, created on first use; NULL (no caching) on OOM. */
static token_cache *thread_cache(void) {
  pthread_once(&cache_once, cache_key_init);
  if (!cache_key_ok) return NULL;
  token_cache *tc = pthread_getspecific(cache_key);
  if (!tc) {
    tc = token_cache_create();
    if (tc && pthread_setspecific(cache_key, tc) != 0) {
      token_cache_destroy(tc);
      tc = NULL;
    }
  }
  return tc;
}

static void refuse(call_ctx *c, const char *reason) {
  c->auth_reason = reason;
  if (c->method->policy == POLICY_PUBLIC) {
    pipeline_next(c);
    return;
  }
  call_fail(c, RPC_UNAUTHENTICATED, "missing or invalid bearer token");
}

static void auth_intercept(call_ctx *c, void *state) {
  (void)state;
  method_policy policy = c->method->policy;
  if (c->authz_count == 0) {
    if (policy == POLICY_PUBLIC) {
      pipeline_next(c);
      return;
    }
    refuse(c, bearer_result_reason(BEARER_MISSING));
    return;
  }

  const char *token = c->bearer; /* parsed already by the rate limiter */
  size_t token_len = c->bearer_len;
  bearer_result br = token ? BEARER_OK
                           : bearer_parse(c->authz_count, c->authz, c->authz_len, &token,
                                          &token_len);
  if (br != BEARER_OK) {
    refuse(c, bearer_result_reason(br));
    return;
  }

  jwt_identity id;
  int64_t now = (int64_t)time(NULL);
  token_cache *tc = thread_cache();
  keyring_snap *snap = c->env->keyring ? keyring_acquire(c->env->keyring) : NULL;
  uint64_t gen = snap ? keyring_snap_generation(snap) : 0;
  trace_child *span = call_span_begin("auth.verify_token");
  if (!tc || !token_cache_get(tc, token, token_len, gen, now, c->env->cfg->jwt_leeway_s, &id)) {
    if (span) {
      span->attr_key = "auth.token_cache";
      span->attr_value = "miss";
      span->attr_static = true;
    }
    jwt_result jr = snap ? keyring_verify(snap, token, token_len, now, &id)
                         : jwt_verify(c->env->verifier, token, token_len, now, &id);
    call_span_end(span, jr != JWT_OK);
    if (jr != JWT_OK) {
      keyring_release(snap);
      refuse(c, jwt_result_reason(jr));
      return;
    }
    if (tc) token_cache_put(tc, token, token_len, gen, &id);
  } else {
    if (span) {
      span->attr_key = "auth.token_cache";
      span->attr_value = "hit";
      span->attr_static = true;
    }
    call_span_end(span, false);
  }
  keyring_release(snap);
  c->authenticated = true;
  c->token_exp = id.exp;
  c->sub = call_strdup(c, id.sub);
  c->role = id.has_role ? call_strdup(c, id.role) : NULL;

  if (policy == POLICY_ADMIN && !(id.has_role && strcmp(id.role, "admin") == 0)) {
    c->auth_reason = "missing_role";
    call_fail(c, RPC_PERMISSION_DENIED, "this method requires the admin role");
    return;
  }
  pipeline_next(c);
}

const interceptor interceptor_auth = {
    .name = "auth",
    .intercept = auth_intercept,
};
