/* Direct-mapped cache of verified tokens; see token_cache.h. */
#include "auth/token_cache.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 64 /* power of two */
#define TOKEN_MAX 512
#define SUB_MAX 128
#define ROLE_MAX 32

typedef struct entry {
  bool used;
  uint16_t token_len;
  uint64_t hash;
  uint64_t gen;
  int64_t exp;
  int64_t nbf;
  bool has_role;
  char token[TOKEN_MAX];
  char sub[SUB_MAX + 1];
  char role[ROLE_MAX + 1];
} entry;

struct token_cache {
  entry slots[CACHE_SLOTS];
};

/* FNV-1a over the signature segment's tail: the HMAC makes it uniformly
 * distributed for real tokens, and a collision only costs a memcmp. */
static uint64_t key_hash(const char *t, size_t len) {
  size_t n = len < 32 ? len : 32;
  const unsigned char *p = (const unsigned char *)t + len - n;
  uint64_t h = 1469598103934665603ULL ^ len;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

/* a + b clamped to int64 (a token may carry exp = 2^63 - 1). */
static int64_t sat_add(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
  return a + b;
}

token_cache *token_cache_create(void) { return calloc(1, sizeof(token_cache)); }

void token_cache_clear(token_cache *c) {
  if (c) OPENSSL_cleanse(c, sizeof *c);
}

void token_cache_destroy(token_cache *c) {
  token_cache_clear(c);
  free(c);
}

bool token_cache_get(token_cache *c, const char *token, size_t len, uint64_t gen, int64_t now,
                     int64_t leeway, jwt_identity *out) {
  if (len == 0 || len > TOKEN_MAX) return false;
  uint64_t h = key_hash(token, len);
  entry *e = &c->slots[h & (CACHE_SLOTS - 1)];
  if (!e->used || e->hash != h || e->gen != gen || e->token_len != len || memcmp(e->token, token, len) != 0)
    return false;
  if (!(now < sat_add(e->exp, leeway))) return false;
  if (e->nbf != INT64_MIN && now < sat_add(e->nbf, -leeway)) return false;
  memcpy(out->sub, e->sub, sizeof e->sub);
  memcpy(out->role, e->role, sizeof e->role);
  out->has_role = e->has_role;
  out->exp = e->exp;
  out->nbf = e->nbf;
  return true;
}

void token_cache_put(token_cache *c, const char *token, size_t len, uint64_t gen,
                     const jwt_identity *id) {
  size_t sub_len = strlen(id->sub), role_len = strlen(id->role);
  if (len == 0 || len > TOKEN_MAX || sub_len > SUB_MAX || role_len > ROLE_MAX) return;
  uint64_t h = key_hash(token, len);
  entry *e = &c->slots[h & (CACHE_SLOTS - 1)];
  e->used = true;
  e->hash = h;
  e->gen = gen;
  e->token_len = (uint16_t)len;
  memcpy(e->token, token, len);
  memcpy(e->sub, id->sub, sub_len + 1);
  memcpy(e->role, id->role, role_len + 1);
  e->has_role = id->has_role;
  e->exp = id->exp;
  e->nbf = id->nbf;
}
