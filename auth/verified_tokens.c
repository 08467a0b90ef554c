/* A direct-mapped set of verified tokens with striped locks; see
 * verified_tokens.h. */
#include "auth/verified_tokens.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LOCKS 64 /* power of two */

typedef struct slot {
  uint64_t hash;
  size_t len;
  char *token; /* NULL: empty */
  char *sub;
  int64_t valid_until;
} slot;

struct verified_tokens {
  slot *slots;
  size_t mask;
  uint64_t seed;
  pthread_mutex_t locks[LOCKS];
};

/* FNV-1a from a per-process seed over the length and the token's last 32
 * bytes (the signature: uniformly distributed for real tokens); a collision
 * only costs a memcmp, and only verified tokens are ever put in. */
static uint64_t token_hash(const verified_tokens *v, const char *t, size_t len) {
  size_t n = len < 32 ? len : 32;
  const unsigned char *p = (const unsigned char *)t + len - n;
  uint64_t h = (1469598103934665603ULL ^ v->seed ^ len) * 1099511628211ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h ^ (h >> 31);
}

verified_tokens *verified_tokens_create(size_t slots) {
  size_t n = 1;
  while (n < slots && n < ((size_t)1 << 24)) n *= 2;
  verified_tokens *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->slots = calloc(n, sizeof *v->slots);
  if (!v->slots) {
    free(v);
    return NULL;
  }
  v->mask = n - 1;
  if (getrandom(&v->seed, sizeof v->seed, 0) != sizeof v->seed) v->seed = (uint64_t)(uintptr_t)v;
  for (size_t i = 0; i < LOCKS; i++) pthread_mutex_init(&v->locks[i], NULL);
  return v;
}

static void slot_clear(slot *s) {
  if (s->token) {
    OPENSSL_cleanse(s->token, s->len);
    free(s->token);
  }
  free(s->sub);
  memset(s, 0, sizeof *s);
}

void verified_tokens_destroy(verified_tokens *v) {
  if (!v) return;
  for (size_t i = 0; i <= v->mask; i++) slot_clear(&v->slots[i]);
  for (size_t i = 0; i < LOCKS; i++) pthread_mutex_destroy(&v->locks[i]);
  free(v->slots);
  free(v);
}

static bool same(const slot *s, uint64_t h, const char *token, size_t len) {
  return s->token && s->hash == h && s->len == len && memcmp(s->token, token, len) == 0;
}

bool verified_tokens_get(verified_tokens *v, const char *token, size_t len, int64_t now,
                         char *sub, size_t subcap) {
  if (!v || len == 0 || len > VERIFIED_TOKEN_MAX) return false;
  uint64_t h = token_hash(v, token, len);
  size_t i = h & v->mask;
  pthread_mutex_t *mu = &v->locks[i & (LOCKS - 1)];
  bool hit = false;
  pthread_mutex_lock(mu);
  slot *s = &v->slots[i];
  if (same(s, h, token, len) && now < s->valid_until) {
    snprintf(sub, subcap, "%s", s->sub);
    hit = true;
  }
  pthread_mutex_unlock(mu);
  return hit;
}

void verified_tokens_put(verified_tokens *v, const char *token, size_t len, const char *sub,
                         int64_t valid_until) {
  if (!v || len == 0 || len > VERIFIED_TOKEN_MAX || !sub) return;
  uint64_t h = token_hash(v, token, len);
  size_t i = h & v->mask;
  /* Copies made outside the lock; nothing changes when they fail. */
  char *t = malloc(len);
  char *u = strdup(sub);
  if (!t || !u) {
    free(t);
    free(u);
    return;
  }
  memcpy(t, token, len);
  pthread_mutex_t *mu = &v->locks[i & (LOCKS - 1)];
  pthread_mutex_lock(mu);
  slot old = v->slots[i];
  v->slots[i] = (slot){.hash = h, .len = len, .token = t, .sub = u, .valid_until = valid_until};
  pthread_mutex_unlock(mu);
  slot_clear(&old);
}

void verified_tokens_remove(verified_tokens *v, const char *token, size_t len) {
  if (!v || len == 0 || len > VERIFIED_TOKEN_MAX) return;
  uint64_t h = token_hash(v, token, len);
  size_t i = h & v->mask;
  slot old = {0};
  pthread_mutex_t *mu = &v->locks[i & (LOCKS - 1)];
  pthread_mutex_lock(mu);
  if (same(&v->slots[i], h, token, len)) {
    old = v->slots[i];
    memset(&v->slots[i], 0, sizeof v->slots[i]);
  }
  pthread_mutex_unlock(mu);
  slot_clear(&old);
}
