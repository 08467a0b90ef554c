/* Auth: reads the method's policy from the method table and the bearer token
 * from the call; handlers never check roles. A refused call gets a generic
 * status; the precise reason (expired, bad_signature, ...) goes to the log
 * only. On public methods a valid token still names the caller in the log,
 * and an invalid one is ignored. */
#include "interceptors/interceptors.h"

#include <string.h>
#include <time.h>

#include "auth/bearer.h"
#include "auth/jwt_verify.h"
#include "service/env.h"

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

  const char *token;
  size_t token_len;
  bearer_result br = bearer_parse(c->authz_count, c->authz, c->authz_len, &token, &token_len);
  if (br != BEARER_OK) {
    refuse(c, bearer_result_reason(br));
    return;
  }

  jwt_identity id;
  jwt_result jr = jwt_verify(c->env->verifier, token, token_len, (int64_t)time(NULL), &id);
  if (jr != JWT_OK) {
    refuse(c, jwt_result_reason(jr));
    return;
  }
  c->authenticated = true;
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
