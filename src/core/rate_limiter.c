/* Token buckets and the sharded, bounded caller table; see rate_limiter.h. */
#include "core/rate_limiter.h"

#include <arpa/inet.h>
#include <math.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/peer.h"

#define MAX_SHARDS 64
#define MIN_SHARD_KEYS 64
#define KEY_MAX 47 /* kind byte + caller text; longer callers are stored as a digest */

static const char *const limit_names[RL_LIMIT_COUNT] = {"read", "write", "auth_failure"};

const char *rl_limit_name(rl_limit l) {
  return (unsigned)l < RL_LIMIT_COUNT ? limit_names[l] : "unknown";
}

/* ------------------------------------------------------------- bucket --- */

void rl_bucket_init(rl_bucket *b, const rl_rate *r, int64_t now_ns) {
  b->tokens = r->burst;
  b->last_ns = now_ns;
}

void rl_bucket_refill(rl_bucket *b, const rl_rate *r, int64_t now_ns) {
  if (now_ns <= b->last_ns) return; /* a step back: nothing added, last kept */
  double add = (double)(now_ns - b->last_ns) / 1e9 * r->rate;
  b->tokens = b->tokens + add >= r->burst ? r->burst : b->tokens + add;
  b->last_ns = now_ns;
}

/* Rounding slack, in milliseconds of refill: refills are sums of
 * fractions, and 0.998 + 0.002 tokens must make a whole one, not
 * 0.9999999999999999. A token due within a nanosecond counts as there, and
 * the advertised wait is rounded up from the same figure less that slack: so
 * a client that waits the advertised time always finds its token. */
#define SLACK_MS 1e-6

static double missing_ms(const rl_bucket *b, const rl_rate *r) {
  return (1.0 - b->tokens) / r->rate * 1000.0;
}

bool rl_bucket_has(rl_bucket *b, const rl_rate *r, int64_t now_ns, int64_t *wait_ms) {
  rl_bucket_refill(b, r, now_ns);
  double ms = missing_ms(b, r);
  if (ms <= SLACK_MS) return true;
  if (wait_ms) {
    ms = ceil(ms - SLACK_MS);
    *wait_ms = !(ms >= 1.0) ? 1 : ms > 1e12 ? (int64_t)1e12 : (int64_t)ms;
  }
  return false;
}

bool rl_bucket_take(rl_bucket *b, const rl_rate *r, int64_t now_ns, int64_t *wait_ms) {
  if (!rl_bucket_has(b, r, now_ns, wait_ms)) return false;
  b->tokens = b->tokens >= 1.0 ? b->tokens - 1.0 : 0.0;
  return true;
}

void rl_bucket_charge(rl_bucket *b, const rl_rate *r, int64_t now_ns) {
  rl_bucket_refill(b, r, now_ns);
  b->tokens = b->tokens >= 1.0 ? b->tokens - 1.0 : 0.0;
}

/* -------------------------------------------------------------- table --- */

/* Links are entry index + 1 (0: none), so the entry array can grow by
 * realloc without invalidating them. */
typedef struct rl_entry {
  uint64_t hash;
  uint32_t chain; /* next in the hash chain */
  uint32_t prev, next; /* recency list: head = most recently seen */
  uint8_t key_len;
  uint8_t key[KEY_MAX];
  rl_bucket b[RL_LIMIT_COUNT];
  uint8_t fresh; /* bit l: b[l] not yet initialised (the entry is reused) */
} rl_entry;

typedef struct rl_shard {
  pthread_mutex_t mu;
  uint32_t *heads; /* index_mask + 1 chain heads */
  uint32_t index_mask;
  rl_entry *entries;
  uint32_t used, allocated, capacity;
  uint32_t lru_head, lru_tail;
  char pad[64]; /* keep neighbouring shards' locks off one cache line */
} rl_shard;

struct rate_limiter {
  rl_rate rates[RL_LIMIT_COUNT];
  uint64_t seed;
  unsigned nshards;
  rl_shard shards[MAX_SHARDS];
};

typedef struct rl_key {
  uint8_t len;
  uint8_t b[KEY_MAX];
} rl_key;

static void make_key(rl_caller_kind kind, const char *caller, rl_key *k) {
  size_t n = strlen(caller);
  if (n + 1 <= KEY_MAX) {
    k->b[0] = (uint8_t)kind;
    memcpy(k->b + 1, caller, n);
    k->len = (uint8_t)(n + 1);
    return;
  }
  /* A long sub: its digest stands for it (the marker bit keeps it apart from
   * any short caller). */
  k->b[0] = (uint8_t)kind | 0x80;
  SHA256((const unsigned char *)caller, n, k->b + 1);
  k->len = 1 + SHA256_DIGEST_LENGTH;
}

/* FNV-1a from a per-process random seed: which shard and chain a caller
 * lands in cannot be chosen from outside. */
static uint64_t key_hash(const rate_limiter *rl, const rl_key *k) {
  uint64_t h = 1469598103934665603ULL ^ rl->seed;
  for (size_t i = 0; i < k->len; i++) h = (h ^ k->b[i]) * 1099511628211ULL;
  return h ^ (h >> 29);
}

rate_limiter *rate_limiter_create(const rl_rate rates[RL_LIMIT_COUNT], size_t max_keys) {
  if (max_keys < 1 || max_keys > UINT32_MAX / 2) return NULL;
  rate_limiter *rl = calloc(1, sizeof *rl);
  if (!rl) return NULL;
  memcpy(rl->rates, rates, sizeof rl->rates);
  if (getrandom(&rl->seed, sizeof rl->seed, 0) != sizeof rl->seed) rl->seed = (uint64_t)(uintptr_t)rl;
  /* Shards only where contention can matter; each keeps at least
   * MIN_SHARD_KEYS, so that least-recently-seen stays meaningful. */
  unsigned n = 1;
  while (n < MAX_SHARDS && (size_t)n * 2 * MIN_SHARD_KEYS <= max_keys) n *= 2;
  rl->nshards = n;
  for (unsigned i = 0; i < n; i++) {
    rl_shard *s = &rl->shards[i];
    /* The bound is exact: the remainder goes to the first shards. */
    s->capacity = (uint32_t)(max_keys / n + (i < max_keys % n ? 1 : 0));
    uint32_t buckets = 1;
    while (buckets < s->capacity) buckets *= 2;
    s->index_mask = buckets - 1;
    s->heads = calloc(buckets, sizeof *s->heads);
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
      free(s->heads);
      s->heads = NULL;
    }
    if (!s->heads) {
      rl->nshards = i;
      rate_limiter_destroy(rl);
      return NULL;
    }
  }
  return rl;
}

void rate_limiter_destroy(rate_limiter *rl) {
  if (!rl) return;
  for (unsigned i = 0; i < rl->nshards; i++) {
    pthread_mutex_destroy(&rl->shards[i].mu);
    free(rl->shards[i].heads);
    free(rl->shards[i].entries);
  }
  free(rl);
}

bool rate_limiter_on(const rate_limiter *rl, rl_limit l) {
  return rl && (unsigned)l < RL_LIMIT_COUNT && rl->rates[l].rate > 0;
}

static rl_shard *shard_of(rate_limiter *rl, uint64_t h) {
  return &rl->shards[(h >> 58) & (rl->nshards - 1)];
}

static void lru_unlink(rl_shard *s, uint32_t i) {
  rl_entry *e = &s->entries[i - 1];
  if (e->prev) s->entries[e->prev - 1].next = e->next;
  else s->lru_head = e->next;
  if (e->next) s->entries[e->next - 1].prev = e->prev;
  else s->lru_tail = e->prev;
  e->prev = e->next = 0;
}

static void lru_push_front(rl_shard *s, uint32_t i) {
  rl_entry *e = &s->entries[i - 1];
  e->prev = 0;
  e->next = s->lru_head;
  if (s->lru_head) s->entries[s->lru_head - 1].prev = i;
  s->lru_head = i;
  if (!s->lru_tail) s->lru_tail = i;
}

static uint32_t find(rl_shard *s, uint64_t h, const rl_key *k) {
  for (uint32_t i = s->heads[h & s->index_mask]; i; i = s->entries[i - 1].chain) {
    const rl_entry *e = &s->entries[i - 1];
    if (e->hash == h && e->key_len == k->len && memcmp(e->key, k->b, k->len) == 0) return i;
  }
  return 0;
}

static void chain_remove(rl_shard *s, uint32_t i) {
  uint32_t *link = &s->heads[s->entries[i - 1].hash & s->index_mask];
  while (*link && *link != i) link = &s->entries[*link - 1].chain;
  if (*link) *link = s->entries[i - 1].chain;
}

/* A slot for a new caller: a never-used one (growing the array up to the
 * capacity), else the least recently seen caller's. 0 on out of memory. */
static uint32_t new_slot(rl_shard *s) {
  if (s->used < s->capacity) {
    if (s->used == s->allocated) {
      uint32_t want = s->allocated ? s->allocated * 2 : 16;
      if (want > s->capacity) want = s->capacity;
      rl_entry *grown = realloc(s->entries, (size_t)want * sizeof *grown);
      if (!grown) return 0;
      s->entries = grown;
      s->allocated = want;
    }
    return ++s->used;
  }
  uint32_t victim = s->lru_tail;
  lru_unlink(s, victim);
  chain_remove(s, victim);
  return victim;
}

/* The caller's entry, inserted when `insert`; the shard is locked. */
static rl_entry *lookup(rl_shard *s, uint64_t h, const rl_key *k, bool insert) {
  uint32_t i = find(s, h, k);
  if (i) {
    if (s->lru_head != i) {
      lru_unlink(s, i);
      lru_push_front(s, i);
    }
    return &s->entries[i - 1];
  }
  if (!insert || !(i = new_slot(s))) return NULL;
  rl_entry *e = &s->entries[i - 1];
  memset(e, 0, sizeof *e);
  e->hash = h;
  e->key_len = k->len;
  memcpy(e->key, k->b, k->len);
  e->fresh = (1u << RL_LIMIT_COUNT) - 1;
  e->chain = s->heads[h & s->index_mask];
  s->heads[h & s->index_mask] = i;
  lru_push_front(s, i);
  return e;
}

static rl_bucket *bucket_of(rate_limiter *rl, rl_entry *e, rl_limit l, int64_t now_ns) {
  if (e->fresh & (1u << l)) {
    rl_bucket_init(&e->b[l], &rl->rates[l], now_ns);
    e->fresh &= (uint8_t)~(1u << l);
  }
  return &e->b[l];
}

typedef enum op { OP_TAKE, OP_HAS, OP_CHARGE } op;

static bool apply(rate_limiter *rl, op o, rl_limit l, rl_caller_kind kind, const char *caller,
                  int64_t now_ns, int64_t *wait_ms) {
  if (!rate_limiter_on(rl, l) || !caller) return true;
  rl_key k;
  make_key(kind, caller, &k);
  uint64_t h = key_hash(rl, &k);
  rl_shard *s = shard_of(rl, h);
  const rl_rate *r = &rl->rates[l];
  bool ok = true;
  pthread_mutex_lock(&s->mu);
  rl_entry *e = lookup(s, h, &k, o != OP_HAS);
  if (e) {
    rl_bucket *b = bucket_of(rl, e, l, now_ns);
    if (o == OP_TAKE) ok = rl_bucket_take(b, r, now_ns, wait_ms);
    else if (o == OP_HAS) ok = rl_bucket_has(b, r, now_ns, wait_ms);
    else rl_bucket_charge(b, r, now_ns);
  }
  /* No entry (out of memory, or OP_HAS on an unknown caller): a full bucket. */
  pthread_mutex_unlock(&s->mu);
  return ok;
}

bool rate_limiter_take(rate_limiter *rl, rl_limit l, rl_caller_kind kind, const char *caller,
                       int64_t now_ns, int64_t *wait_ms) {
  return apply(rl, OP_TAKE, l, kind, caller, now_ns, wait_ms);
}

bool rate_limiter_has(rate_limiter *rl, rl_limit l, rl_caller_kind kind, const char *caller,
                      int64_t now_ns, int64_t *wait_ms) {
  return apply(rl, OP_HAS, l, kind, caller, now_ns, wait_ms);
}

void rate_limiter_charge(rate_limiter *rl, rl_limit l, rl_caller_kind kind, const char *caller,
                         int64_t now_ns) {
  (void)apply(rl, OP_CHARGE, l, kind, caller, now_ns, NULL);
}

size_t rate_limiter_keys(rate_limiter *rl) {
  size_t n = 0;
  for (unsigned i = 0; i < rl->nshards; i++) {
    pthread_mutex_lock(&rl->shards[i].mu);
    n += rl->shards[i].used;
    pthread_mutex_unlock(&rl->shards[i].mu);
  }
  return n;
}

size_t rate_limiter_bytes(rate_limiter *rl) {
  size_t n = sizeof *rl;
  for (unsigned i = 0; i < rl->nshards; i++) {
    rl_shard *s = &rl->shards[i];
    pthread_mutex_lock(&s->mu);
    n += ((size_t)s->index_mask + 1) * sizeof *s->heads + (size_t)s->allocated * sizeof(rl_entry);
    pthread_mutex_unlock(&s->mu);
  }
  return n;
}

/* ---------------------------------------------------------- addresses --- */

void rl_peer_address(const char *peer, char *out, size_t outlen) {
  if (!outlen) return;
  out[0] = '\0';
  if (!peer) return;
  const char *ip;
  size_t n;
  if (peer_host(peer, &ip, &n) && strncmp(peer, "ipv4:", 5) == 0) {
    if (n >= outlen) n = outlen - 1; /* truncated, as snprintf would */
    memcpy(out, ip, n);
    out[n] = '\0';
    return;
  }
  if (strncmp(peer, "ipv6:", 5) == 0) { /* peer_host has read it */
    char text[INET6_ADDRSTRLEN + 1];
    /* A zone ("%eth0") or a percent-encoded one ("%25eth0") is not part of
     * the address. */
    const char *pct = memchr(ip, '%', n);
    if (pct) n = (size_t)(pct - ip);
    struct in6_addr a;
    if (n < sizeof text) {
      memcpy(text, ip, n);
      text[n] = '\0';
      if (inet_pton(AF_INET6, text, &a) == 1) {
        memset(a.s6_addr + 8, 0, 8);
        char buf[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &a, buf, sizeof buf)) {
          snprintf(out, outlen, "%s/64", buf);
          return;
        }
      }
    }
  }
  if (strncmp(peer, "unix:", 5) == 0) {
    snprintf(out, outlen, "unix");
    return;
  }
  snprintf(out, outlen, "%s", peer);
}
