/* Connection records, symbol interposition and the report thread; see
 * h2_guard.h.
 *
 * The hot path (a read on any descriptor) costs a shift, two loads and a
 * compare when the descriptor is not a connection of ours, and a walk over
 * the 9-byte frame headers when it is: no lock (the core never reads one
 * endpoint from two threads at once) and no allocation. Everything that
 * changes which connection a record names (accept, close, a close we decide)
 * takes one mutex, so a generation checked under it names a descriptor the
 * core has not closed yet. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/clock.h"
#include "guard/h2_guard.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Two levels: 2^21 chunk pointers (16 MiB of address space, zero pages
 * until touched) x 1024 records cover every int descriptor number. */
#define CHUNK_BITS 10
#define CHUNK_RECS (1 << CHUNK_BITS)
#define DIR_SLOTS (1 << 21)
#define BUCKETS 4096
#define PEER_MAX 56
#define KEY_LEN 19
#define MAX_PENDING_LISTENERS 16
#define HELLO_BUCKETS 4096
#define RANDOM_LEN 32
/* Handshake header (4), legacy version (2), then the client random. */
#define HS_PREFIX (4 + 2 + RANDOM_LEN)
#define TLS_HANDSHAKE 22
#define TLS_CLIENT_HELLO 1
#define QUEUE_SLOTS 256
#define LOG_LINES_PER_S 10
#define UNCOVERED_LOG_NS (10 * 1000000000LL)
#define NS_PER_S 1000000000LL

enum {
  REC_NONE = 0,
  REC_PLAIN,          /* a plaintext connection accepted on our listener */
  REC_TLS,            /* a TLS one: its bytes are counted in SSL_read */
  REC_LISTEN_PENDING, /* listen(2) since the last claim */
  REC_LISTEN_PLAIN,
  REC_LISTEN_TLS,
};

/* The client random of a TLS connection, taken from its ClientHello as read
 * on the descriptor, whatever the TCP segments or TLS records it came in
 * (a client may split its hello across either). */
typedef struct tls_scan {
  uint8_t hdr[5];          /* the current record header */
  uint8_t hdr_have;
  uint8_t done;            /* the random was offered, or this is no ClientHello */
  uint16_t left;           /* payload bytes of the current record still to come */
  uint8_t hs_have;
  uint8_t hs[HS_PREFIX];   /* the first handshake bytes */
} tls_scan;

typedef struct rec {
  _Atomic uint8_t kind;
  _Atomic uint8_t refused;  /* a verdict or a close: every later read fails */
  uint8_t probe;            /* the start-up probe: the strict limits */
  uint8_t tls_tied;         /* an SSL is tied to it (under g_mu) */
  uint16_t group;           /* listeners: their claim; connections: their listener's */
  uint8_t in_hello;         /* TLS: its client random waits to be tied (under g_mu) */
  int hnext;                /* its chain of waiting randoms (under g_mu): descriptor + 1 */
  _Atomic uint64_t gen;     /* 0: no connection */
  _Atomic uint32_t rst_seen; /* RST_STREAM frames its client sent (wraps) */
  uint32_t rst_used;        /* of those, used by counted cancels (under g_mu) */
  int64_t reply_bytes;      /* large replies waiting for its client (under g_mu) */
  int64_t win_start[2];     /* conn_guard's windows (under g_mu) */
  uint32_t win_count[2];
  int next;                 /* hash chain (under g_mu): next descriptor + 1, 0 ends it */
  uint8_t key[KEY_LEN];     /* family, address, port of the peer */
  char peer[PEER_MAX];
  union {
    h2_frames f; /* REC_PLAIN: its frames (the reading thread only) */
    tls_scan ts; /* REC_TLS: the client random, read off the records (ditto) */
  } u;
} rec;

/* What a server-side SSL carries (ex-data): its frames, and once tied, the
 * connection it belongs to. */
typedef struct tls_link {
  h2_frames f;
  int fd; /* -1: not tied */
  uint64_t gen;
  uint8_t refused, probe, tries;
  uint8_t untied; /* counted in g_untied: its ClientHello matched no connection */
  char peer[PEER_MAX];
} tls_link;

typedef struct report_item {
  char peer[PEER_MAX];
  uint8_t why;
} report_item;

typedef struct guard {
  h2_limits lim, probe_lim;
  h2_guard_report_fn report;
  void *ctx;
  int ssl_index;
  /* PRODUCT_TEST_FAULTS: the accept hook skips plaintext (1) and/or TLS (2)
   * listeners, as if it were not in the path. */
  int bypass;
  /* PRODUCT_TEST_FAULTS: accepted connections (but the start-up probe)
   * get no record, as if their chunk of the table could not be allocated. */
  bool no_record;
  uint64_t uncovered_base; /* h2_guard_uncovered() at start: reports count from there */
  uint64_t untied_base;    /* h2_guard_untied() at start: likewise */
  /* the report queue */
  pthread_mutex_t qmu;
  pthread_cond_t qcv;
  report_item q[QUEUE_SLOTS];
  int qhead, qcount;
  bool qstop;
  bool thread_up;
  pthread_t thread;
  _Atomic uint64_t dropped[H2_VERDICT_COUNT];
} guard;

static guard g_guard = {.ssl_index = -1,
                        .qmu = PTHREAD_MUTEX_INITIALIZER,
                        .qcv = PTHREAD_COND_INITIALIZER};
static _Atomic(guard *) g_on; /* NULL: everything passes through */
static _Atomic(_Atomic(rec *) *) g_dir;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_bucket[BUCKETS]; /* descriptor + 1 of a chain's first record; 0: empty */
static int g_pending[MAX_PENDING_LISTENERS];
static int g_n_pending;
static uint16_t g_claims; /* claims so far (under g_mu): a claim's listener group */
static _Atomic uint64_t g_gen;
static _Atomic uint64_t g_uncovered;
/* TLS handshakes whose SSL could not be tied to a connection (no link, or a
 * ClientHello matching no waiting connection): their per-SSL frame limits
 * hold, the per-connection rapid-reset count does not. Reported as above. */
static _Atomic uint64_t g_untied;
/* The ex-data of an SSL whose link could not be allocated (counted once). */
static char g_no_link;
static _Atomic int g_probe_port;
/* The probe's own address (family, address, port): written before
 * g_probe_port is set, read after it is seen set. */
static uint8_t g_probe_key[KEY_LEN];
static _Atomic int g_probe_state;
/* TLS connections whose client random was read and no SSL is tied to yet,
 * chained through their records by a keyed hash of the random (under g_mu):
 * as many as there are such connections, so none is pushed out by others
 * (a fixed ring of 128 was, by the 129th handshake in flight, and its
 * connection then never tied: its resets uncounted). */
static int g_hello_bucket[HELLO_BUCKETS];

typedef int (*listen_fn)(int, int);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef int (*close_fn)(int);
typedef int (*ssl_read_fn)(SSL *, void *, int);
typedef int (*ssl_hs_fn)(SSL *);

/* Resolved on first use: libc and the sanitizers may read before main. The
 * store is idempotent, so a race only resolves twice. */
#define REAL(name, type)                                                \
  static _Atomic(type) real_##name;                                     \
  static type get_##name(void) {                                        \
    type fn = atomic_load_explicit(&real_##name, memory_order_relaxed); \
    if (!fn) {                                                          \
      fn = (type)dlsym(RTLD_NEXT, #name);                               \
      atomic_store_explicit(&real_##name, fn, memory_order_relaxed);    \
    }                                                                   \
    return fn;                                                          \
  }
REAL(listen, listen_fn)
REAL(accept4, accept4_fn)
REAL(accept, accept_fn)
REAL(recvmsg, recvmsg_fn)
REAL(read, read_fn)
REAL(close, close_fn)
REAL(SSL_read, ssl_read_fn)
REAL(SSL_do_handshake, ssl_hs_fn)

static guard *on(void) { return atomic_load_explicit(&g_on, memory_order_acquire); }

/* ------------------------------------------------------------ the table --- */

static rec *rec_peek(int fd) {
  _Atomic(rec *) *dir = atomic_load_explicit(&g_dir, memory_order_acquire);
  if (!dir || fd < 0) return NULL;
  rec *chunk = atomic_load_explicit(&dir[(unsigned)fd >> CHUNK_BITS], memory_order_acquire);
  return chunk ? &chunk[fd & (CHUNK_RECS - 1)] : NULL;
}

/* The record of `fd`, its chunk allocated if need be; NULL without memory. */
static rec *rec_get(int fd) {
  rec *r = rec_peek(fd);
  if (r || fd < 0) return r;
  _Atomic(rec *) *dir = atomic_load_explicit(&g_dir, memory_order_acquire);
  if (!dir) return NULL;
  /* Zero pages until a record is used: all-zero is a valid empty record. */
  rec *chunk = calloc(CHUNK_RECS, sizeof *chunk);
  if (!chunk) return NULL;
  rec *expected = NULL;
  if (!atomic_compare_exchange_strong_explicit(&dir[(unsigned)fd >> CHUNK_BITS], &expected, chunk,
                                               memory_order_acq_rel, memory_order_acquire)) {
    free(chunk); /* another thread won: use its chunk */
    chunk = expected;
  }
  return &chunk[fd & (CHUNK_RECS - 1)];
}

static bool is_conn(uint8_t kind) { return kind == REC_PLAIN || kind == REC_TLS; }

/* Keyed with random multipliers drawn once (multiply-shift over 32-bit
 * words): a client that picks its addresses and ports (an IPv6 /64 holds
 * plenty) cannot put its connections in one chain and make every accept,
 * close and cancel under g_mu walk all of them. An unkeyed hash (FNV-1a
 * here before) can be aimed at one bucket offline. */
static uint64_t g_hash_mul[(KEY_LEN + 3) / 4 + 1];
/* The same for client randoms (chosen by the client too). */
static uint64_t g_rnd_mul[RANDOM_LEN / 4 + 1];

static void hash_seed(void) {
  if (g_hash_mul[0]) return; /* once: chains built with it stay valid */
  uint64_t k[sizeof g_hash_mul / sizeof g_hash_mul[0]];
  size_t got = 0;
  while (got < sizeof k) {
    ssize_t n = getrandom((uint8_t *)k + got, sizeof k - got, 0);
    if (n > 0) got += (size_t)n;
    else if (n < 0 && errno != EINTR) break;
  }
  if (got < sizeof k) {
    /* No getrandom (very old kernel): still differs from run to run. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid() ^
                 (uint64_t)(uintptr_t)&ts;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      k[i] = x;
    }
  }
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) g_hash_mul[i] = k[i] | 1;
  /* The randoms' multipliers from the same draw, stretched (xorshift):
   * unknown to a client all the same. */
  uint64_t x = k[0] ^ 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < sizeof g_rnd_mul / sizeof g_rnd_mul[0]; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    x ^= k[i % (sizeof k / sizeof k[0])];
    g_rnd_mul[i] = x | 1;
  }
}

static uint32_t random_hash(const uint8_t *random) {
  uint64_t h = g_rnd_mul[RANDOM_LEN / 4];
  for (size_t i = 0; i < RANDOM_LEN / 4; i++) {
    uint32_t w;
    memcpy(&w, random + 4 * i, 4);
    h += g_rnd_mul[i] * w;
  }
  return (uint32_t)(h >> 52) % HELLO_BUCKETS;
}

/* A waiting TLS connection's client random (kept in its scan state, which
 * no read changes once the random has been offered). */
static const uint8_t *rec_random(rec *r) { return r->u.ts.hs + HS_PREFIX - RANDOM_LEN; }

/* Under g_mu: `fd` leaves its chain of waiting randoms. */
static void hello_remove(int fd, rec *r) {
  if (!r->in_hello) return;
  r->in_hello = 0;
  int *link = &g_hello_bucket[random_hash(rec_random(r))];
  while (*link > 0) {
    if (*link == fd + 1) {
      *link = r->hnext;
      r->hnext = 0;
      return;
    }
    rec *x = rec_peek(*link - 1);
    if (!x) return; /* cannot happen: every chained number has a record */
    link = &x->hnext;
  }
}

/* Under g_mu: the waiting connection whose random is `random`, or -1. */
static int hello_find(const uint8_t *random) {
  for (int fd = g_hello_bucket[random_hash(random)] - 1; fd >= 0;) {
    rec *x = rec_peek(fd);
    if (!x) return -1;
    if (x->in_hello && memcmp(rec_random(x), random, RANDOM_LEN) == 0) return fd;
    fd = x->hnext - 1;
  }
  return -1;
}

static uint32_t key_hash(const uint8_t *key) {
  uint8_t padded[((KEY_LEN + 3) / 4) * 4] = {0};
  memcpy(padded, key, KEY_LEN);
  uint64_t h = g_hash_mul[sizeof g_hash_mul / sizeof g_hash_mul[0] - 1];
  for (size_t i = 0; i < sizeof padded / 4; i++) {
    uint32_t w;
    memcpy(&w, padded + 4 * i, 4);
    h += g_hash_mul[i] * w;
  }
  return (uint32_t)(h >> 52) % BUCKETS; /* the top 12 bits */
}


/* Under g_mu. Chains hold descriptor + 1 (0 ends a chain). */
/* Connections in the chains (written under g_mu; read without it by
 * close_stalled, for the room it asks for). */
static _Atomic int g_n_conns;

static void hash_insert(int fd, rec *r) {
  atomic_fetch_add_explicit(&g_n_conns, 1, memory_order_relaxed);
  uint32_t b = key_hash(r->key);
  r->next = g_bucket[b];
  g_bucket[b] = fd + 1;
}

static void hash_remove(int fd, rec *r) {
  int *link = &g_bucket[key_hash(r->key)];
  while (*link > 0) {
    rec *x = rec_peek(*link - 1);
    if (*link == fd + 1) {
      *link = r->next;
      r->next = 0;
      atomic_fetch_sub_explicit(&g_n_conns, 1, memory_order_relaxed);
      return;
    }
    if (!x) return; /* cannot happen: every chained number has a record */
    link = &x->next;
  }
}

/* The key (family, address, port; a v4-mapped IPv6 address as IPv4) and the
 * text the core writes for this peer. Non-zero for other families. */
static int key_of(const struct sockaddr *sa, uint8_t key[KEY_LEN], char *text, size_t n) {
  char host[INET6_ADDRSTRLEN] = "";
  memset(key, 0, KEY_LEN);
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    key[0] = 4;
    memcpy(&key[1], &a->sin_addr, 4);
    memcpy(&key[17], &a->sin_port, 2);
    if (text && inet_ntop(AF_INET, &a->sin_addr, host, sizeof host))
      snprintf(text, n, "ipv4:%s:%d", host, ntohs(a->sin_port));
    return 0;
  }
  if (sa->sa_family != AF_INET6) return -1;
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
  memcpy(&key[17], &a->sin6_port, 2);
  /* A v4 client on the dual-stack listener: written as the core writes it
   * (ipv4:a.b.c.d:port), so every abuse line names a peer one way. */
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
    key[0] = 4;
    memcpy(&key[1], &a->sin6_addr.s6_addr[12], 4);
    if (text && inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof host))
      snprintf(text, n, "ipv4:%s:%d", host, ntohs(a->sin6_port));
    return 0;
  }
  key[0] = 6;
  memcpy(&key[1], &a->sin6_addr, 16);
  if (text && inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host))
    snprintf(text, n, "ipv6:[%s]:%d", host, ntohs(a->sin6_port));
  return 0;
}

/* "ipv4:1.2.3.4:5", "ipv6:[::1]:5" (or with %5B/%5D). */
int h2_guard_parse_peer(const char *peer, struct sockaddr_storage *out) {
  char host[INET6_ADDRSTRLEN + 8];
  const char *p;
  memset(out, 0, sizeof *out);
  if (strncmp(peer, "ipv4:", 5) == 0) {
    p = peer + 5;
    const char *colon = strrchr(p, ':');
    if (!colon || (size_t)(colon - p) >= sizeof host) return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1) return -1;
    a->sin_port = htons((uint16_t)port);
    return 0;
  }
  if (strncmp(peer, "ipv6:", 5) != 0) return -1;
  p = peer + 5;
  size_t open = 0;
  if (*p == '[')
    open = 1;
  else if (strncasecmp(p, "%5B", 3) == 0)
    open = 3;
  else
    return -1;
  p += open;
  const char *close_br = strchr(p, ']');
  if (open == 3) {
    close_br = strstr(p, "%5D");
    if (!close_br) close_br = strstr(p, "%5d");
  }
  if (!close_br || (size_t)(close_br - p) >= sizeof host) return -1;
  memcpy(host, p, (size_t)(close_br - p));
  host[close_br - p] = '\0';
  const char *rest = close_br + open;
  if (*rest != ':') return -1;
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
  a->sin6_family = AF_INET6;
  char *pct = strchr(host, '%'); /* a zone: matched by address alone */
  if (pct) *pct = '\0';
  if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
  char *end;
  long port = strtol(rest + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || end == rest + 1) return -1;
  a->sin6_port = htons((uint16_t)port);
  return 0;
}

int h2_guard_bucket_of(const char *peer) {
  struct sockaddr_storage ss;
  uint8_t key[KEY_LEN];
  if (!peer || h2_guard_parse_peer(peer, &ss) != 0 || key_of((struct sockaddr *)&ss, key, NULL, 0) != 0)
    return -1;
  return (int)key_hash(key);
}

/* ------------------------------------------------------------- reports --- */

static void enqueue(guard *gd, const char *peer, h2_verdict why) {
  if (!gd->report) return;
  pthread_mutex_lock(&gd->qmu);
  if (gd->qcount < QUEUE_SLOTS && gd->thread_up) {
    report_item *it = &gd->q[(gd->qhead + gd->qcount) % QUEUE_SLOTS];
    snprintf(it->peer, sizeof it->peer, "%s", peer);
    it->why = (uint8_t)why;
    gd->qcount++;
    pthread_cond_signal(&gd->qcv);
  } else {
    /* Full: still counted (the thread reports it, unlogged). */
    atomic_fetch_add(&gd->dropped[why], 1);
  }
  pthread_mutex_unlock(&gd->qmu);
}

typedef struct rate {
  int64_t window;
  int lines;
  uint64_t suppressed;
} rate;

static void deliver(guard *gd, rate *rt, const char *peer, h2_verdict why, bool may_log) {
  int64_t now = clock_mono_coarse_ns();
  if (now - rt->window >= NS_PER_S) {
    rt->window = now;
    rt->lines = 0;
  }
  h2_guard_report r = {.peer = peer, .why = why};
  if (may_log && rt->lines < LOG_LINES_PER_S) {
    rt->lines++;
    r.log = true;
    r.suppressed = rt->suppressed;
    rt->suppressed = 0;
  } else {
    rt->suppressed++;
  }
  gd->report(gd->ctx, &r);
}

/* Connections left uncovered since the last look: counted every time,
 * logged at most once every UNCOVERED_LOG_NS. The report thread only. */
typedef struct uncovered_state {
  uint64_t seen;      /* g_uncovered at the last report */
  uint64_t unlogged;  /* reported since the last logged one */
  int64_t logged_ns;  /* when one was last logged; 0: never */
} uncovered_state;

static void report_uncovered(guard *gd, uncovered_state *u, _Atomic uint64_t *counter, bool untied) {
  uint64_t now_total = atomic_load(counter);
  if (now_total == u->seen) return;
  h2_guard_report r = {.peer = "", .why = H2_OK, .untied = untied,
                       .uncovered = now_total - u->seen, .uncovered_total = now_total};
  u->seen = now_total;
  int64_t now = clock_mono_coarse_ns();
  if (u->logged_ns == 0 || now - u->logged_ns >= UNCOVERED_LOG_NS) {
    r.log = true;
    r.suppressed = u->unlogged;
    u->unlogged = 0;
    u->logged_ns = now;
  } else {
    u->unlogged += r.uncovered;
  }
  gd->report(gd->ctx, &r);
}

static void *report_thread(void *arg) {
  guard *gd = arg;
  rate rt = {0};
  uncovered_state us = {.seen = gd->uncovered_base}, ut = {.seen = gd->untied_base};
  report_item batch[QUEUE_SLOTS];
  pthread_mutex_lock(&gd->qmu);
  for (;;) {
    if (gd->qcount == 0 && !gd->qstop) {
      /* Woken by a report, else once a second for the dropped counts. */
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += 1;
      pthread_cond_timedwait(&gd->qcv, &gd->qmu, &until);
    }
    int n = 0;
    while (gd->qcount > 0) {
      batch[n++] = gd->q[gd->qhead];
      gd->qhead = (gd->qhead + 1) % QUEUE_SLOTS;
      gd->qcount--;
    }
    bool stop = gd->qstop;
    pthread_mutex_unlock(&gd->qmu);
    for (int i = 0; i < n; i++) deliver(gd, &rt, batch[i].peer, (h2_verdict)batch[i].why, true);
    for (int v = 0; v < H2_VERDICT_COUNT; v++)
      for (uint64_t k = atomic_exchange(&gd->dropped[v], 0); k > 0; k--)
        deliver(gd, &rt, "", (h2_verdict)v, false);
    report_uncovered(gd, &us, &g_uncovered, false);
    report_uncovered(gd, &ut, &g_untied, true);
    pthread_mutex_lock(&gd->qmu);
    if (stop && gd->qcount == 0) break;
  }
  pthread_mutex_unlock(&gd->qmu);
  return NULL;
}

/* ------------------------------------------------------------- listeners --- */

int listen(int fd, int backlog) {
  int r = get_listen()(fd, backlog);
  guard *gd = on();
  if (r != 0 || !gd) return r;
  rec *l = rec_get(fd);
  if (!l) return r;
  pthread_mutex_lock(&g_mu);
  if (atomic_load(&l->kind) == REC_NONE && g_n_pending < MAX_PENDING_LISTENERS) {
    atomic_store(&l->kind, REC_LISTEN_PENDING);
    g_pending[g_n_pending++] = fd;
  }
  pthread_mutex_unlock(&g_mu);
  return r;
}

int h2_guard_claim(bool tls, int *group) {
  int n = 0;
  pthread_mutex_lock(&g_mu);
  /* 1..65535, never 0 ("any"); after 65535 claims groups repeat, which
   * only makes a lookup less selective. */
  if (++g_claims == 0) g_claims = 1;
  for (int i = 0; i < g_n_pending; i++) {
    rec *l = rec_peek(g_pending[i]);
    if (!l || atomic_load(&l->kind) != REC_LISTEN_PENDING) continue;
    l->group = g_claims;
    atomic_store_explicit(&l->kind, tls ? REC_LISTEN_TLS : REC_LISTEN_PLAIN, memory_order_release);
    n++;
  }
  g_n_pending = 0;
  if (group) *group = g_claims;
  pthread_mutex_unlock(&g_mu);
  return n;
}

int h2_guard_claim_listeners(bool tls) { return h2_guard_claim(tls, NULL); }

/* ----------------------------------------------------------- connections --- */

/* A connection accepted on one of our listeners: a new record. */
static void conn_born(int c, bool tls, uint16_t group) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  uint8_t key[KEY_LEN];
  char peer[PEER_MAX] = "";
  if (getpeername(c, (struct sockaddr *)&ss, &len) != 0 ||
      key_of((struct sockaddr *)&ss, key, peer, sizeof peer) != 0)
    return; /* not an IP peer: the core refuses nothing of it either */
  int port = key[17] << 8 | key[18]; /* network order */
  int want = atomic_load(&g_probe_port);
  /* The whole address, not the port alone: a client elsewhere that happens
   * to (or chooses to) use the probe's port would take its place and fail
   * the start-up self-test, or pass it for the probe. */
  bool probe = want > 0 && want == port && memcmp(g_probe_key, key, KEY_LEN) == 0 &&
               atomic_compare_exchange_strong(&g_probe_port, &want, 0);
  guard *gd = on();
  rec *r = gd && gd->no_record && !probe ? NULL : rec_get(c);
  if (!r) {
    atomic_fetch_add(&g_uncovered, 1); /* the report thread says so */
    return;
  }
  pthread_mutex_lock(&g_mu);
  uint8_t old = atomic_load(&r->kind);
  if (is_conn(old)) { /* closed behind our back */
    hash_remove(c, r);
    hello_remove(c, r);
  }
  if (old == REC_PLAIN) h2_frames_release(&r->u.f);
  if (tls)
    memset(&r->u.ts, 0, sizeof r->u.ts);
  else
    h2_frames_reset(&r->u.f);
  atomic_store(&r->refused, 0);
  atomic_store(&r->rst_seen, 0);
  r->rst_used = 0;
  r->reply_bytes = 0;
  memset(r->win_start, 0, sizeof r->win_start);
  memset(r->win_count, 0, sizeof r->win_count);
  r->probe = probe;
  r->tls_tied = 0;
  r->group = group;
  memcpy(r->key, key, KEY_LEN);
  memcpy(r->peer, peer, PEER_MAX);
  atomic_store(&r->gen, atomic_fetch_add(&g_gen, 1) + 1);
  hash_insert(c, r);
  atomic_store_explicit(&r->kind, tls ? REC_TLS : REC_PLAIN, memory_order_release);
  pthread_mutex_unlock(&g_mu);
  if (probe) atomic_fetch_or(&g_probe_state, PROBE_ACCEPTED);
}

static void after_accept(int lfd, int c) {
  guard *gd = on();
  if (c < 0 || !gd) return;
  rec *l = rec_peek(lfd);
  uint8_t k = l ? atomic_load_explicit(&l->kind, memory_order_acquire) : REC_NONE;
  if (k != REC_LISTEN_PLAIN && k != REC_LISTEN_TLS) return;
  if (gd->bypass & (k == REC_LISTEN_TLS ? 2 : 1)) return;
  conn_born(c, k == REC_LISTEN_TLS, l->group);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  int c = get_accept4()(fd, addr, len, flags);
  after_accept(fd, c);
  return c;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  int c = get_accept()(fd, addr, len);
  after_accept(fd, c);
  return c;
}

int close(int fd) {
  rec *r = rec_peek(fd);
  if (r && atomic_load_explicit(&r->kind, memory_order_relaxed) != REC_NONE) {
    pthread_mutex_lock(&g_mu);
    uint8_t k = atomic_load(&r->kind);
    if (is_conn(k)) {
      hash_remove(fd, r);
      hello_remove(fd, r);
    }
    /* The core has stopped reading it: its reading thread is done with f. */
    if (k == REC_PLAIN) h2_frames_release(&r->u.f);
    atomic_store(&r->gen, 0);
    atomic_store(&r->kind, REC_NONE); /* the number may next be a file, not a client */
    pthread_mutex_unlock(&g_mu);
  }
  return get_close()(fd);
}

/* ----------------------------------------------------------------- reads --- */

static const h2_limits *limits_for(guard *gd, bool probe) { return probe ? &gd->probe_lim : &gd->lim; }

/* A plaintext connection over a limit: fail this read and every later one.
 * Shut down here, on the read of this very descriptor: the core cannot
 * close it meanwhile. */
static ssize_t refuse_fd(guard *gd, rec *r, int fd, h2_verdict v) {
  atomic_store(&r->refused, 1);
  /* Before the shutdown: the probe reads the state once it sees the end. */
  if (r->probe) atomic_fetch_or(&g_probe_state, PROBE_REFUSED);
  shutdown(fd, SHUT_RDWR);
  if (!r->probe) enqueue(gd, r->peer, v);
  errno = ECONNRESET;
  return -1;
}

/* Offers the client random of TLS connection `fd` for tying. False if a
 * live connection not tied yet offered the same random: a replayed
 * ClientHello, which could get its SSL tied to the other connection (or the
 * other's to it) and its abuse counted on the wrong one. */
static bool offer_random(rec *r, int fd) {
  const uint8_t *random = rec_random(r); /* read off its records: no copy */
  pthread_mutex_lock(&g_mu);
  bool dup = hello_find(random) >= 0;
  /* (The reading thread owns the descriptor: its record is live.) */
  if (!dup && atomic_load(&r->kind) == REC_TLS && !r->in_hello) {
    uint32_t b = random_hash(random);
    r->hnext = g_hello_bucket[b];
    g_hello_bucket[b] = fd + 1;
    r->in_hello = 1;
  }
  pthread_mutex_unlock(&g_mu);
  return !dup;
}

/* Walks the TLS records a connection sent until its ClientHello's random
 * has been read. False when the connection must be refused (an all-zero
 * random, or see offer_random). Anything but a handshake record first is left to OpenSSL
 * to refuse (the connection stays untied). */
static bool scan_hello(rec *r, int fd, const uint8_t *p, size_t n) {
  tls_scan *ts = &r->u.ts;
  const uint8_t *end = p + n;
  while (p < end && !ts->done) {
    if (ts->left == 0) {
      ts->hdr[ts->hdr_have++] = *p++;
      if (ts->hdr_have < sizeof ts->hdr) continue;
      ts->hdr_have = 0;
      if (ts->hdr[0] != TLS_HANDSHAKE) {
        ts->done = 1;
        break;
      }
      ts->left = (uint16_t)(ts->hdr[3] << 8 | ts->hdr[4]);
      continue;
    }
    size_t k = (size_t)(end - p);
    if (k > ts->left) k = ts->left;
    if (k > (size_t)(HS_PREFIX - ts->hs_have)) k = (size_t)(HS_PREFIX - ts->hs_have);
    memcpy(ts->hs + ts->hs_have, p, k);
    ts->hs_have = (uint8_t)(ts->hs_have + k);
    ts->left = (uint16_t)(ts->left - k);
    p += k;
    if (ts->hs_have < HS_PREFIX) continue;
    ts->done = 1;
    if (ts->hs[0] != TLS_CLIENT_HELLO) break;
    /* All zero is what SSL_get_client_random gives before any hello: such
     * a connection could never be tied (no client makes it by chance). */
    static const uint8_t zero[RANDOM_LEN];
    const uint8_t *random = ts->hs + HS_PREFIX - RANDOM_LEN;
    return memcmp(random, zero, RANDOM_LEN) != 0 && offer_random(r, fd);
  }
  return true;
}

/* A TLS connection whose ClientHello repeats another's, or has an all-zero
 * random: fail this read and every later one (the core never sees the
 * hello, so its SSL never has that random). */
static ssize_t refuse_replay(rec *r, int fd) {
  atomic_store(&r->refused, 1);
  shutdown(fd, SHUT_RDWR);
  errno = ECONNRESET;
  return -1;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  guard *gd = on();
  rec *r = gd ? rec_peek(fd) : NULL;
  uint8_t k = r ? atomic_load_explicit(&r->kind, memory_order_acquire) : REC_NONE;
  if (!is_conn(k) || (flags & (MSG_ERRQUEUE | MSG_PEEK))) return get_recvmsg()(fd, msg, flags);
  if (atomic_load_explicit(&r->refused, memory_order_relaxed)) {
    errno = ECONNRESET;
    return -1;
  }
  ssize_t n = get_recvmsg()(fd, msg, flags);
  if (n <= 0) return n;
  if (k == REC_TLS) {
    size_t left = (size_t)n;
    for (size_t i = 0; i < msg->msg_iovlen && left && !r->u.ts.done; i++) {
      size_t part = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
      if (!scan_hello(r, fd, msg->msg_iov[i].iov_base, part)) return refuse_replay(r, fd);
      left -= part;
    }
    return n;
  }
  int64_t now = clock_mono_coarse_ns();
  size_t left = (size_t)n;
  for (size_t i = 0; i < msg->msg_iovlen && left; i++) {
    size_t part = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
    h2_verdict v = h2_frames_feed(&r->u.f, limits_for(gd, r->probe), msg->msg_iov[i].iov_base, part, now);
    atomic_store_explicit(&r->rst_seen, r->u.f.rst_total, memory_order_release);
    if (v != H2_OK) return refuse_fd(gd, r, fd, v);
    left -= part;
  }
  return n;
}

ssize_t read(int fd, void *buf, size_t count) {
  guard *gd = on();
  rec *r = gd ? rec_peek(fd) : NULL;
  uint8_t k = r ? atomic_load_explicit(&r->kind, memory_order_acquire) : REC_NONE;
  if (!is_conn(k)) return get_read()(fd, buf, count);
  if (atomic_load_explicit(&r->refused, memory_order_relaxed)) {
    errno = ECONNRESET;
    return -1;
  }
  ssize_t n = get_read()(fd, buf, count);
  if (n <= 0) return n;
  if (k == REC_TLS) {
    if (!r->u.ts.done && !scan_hello(r, fd, buf, (size_t)n)) return refuse_replay(r, fd);
    return n;
  }
  h2_verdict v = h2_frames_feed(&r->u.f, limits_for(gd, r->probe), buf, (size_t)n, clock_mono_coarse_ns());
  atomic_store_explicit(&r->rst_seen, r->u.f.rst_total, memory_order_release);
  return v == H2_OK ? n : refuse_fd(gd, r, fd, v);
}

/* ------------------------------------------------------------------- TLS --- */

static void ssl_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp) {
  (void)parent;
  (void)ad;
  (void)idx;
  (void)argl;
  (void)argp;
  if (ptr && ptr != &g_no_link) h2_frames_release(&((tls_link *)ptr)->f);
  if (ptr != &g_no_link) free(ptr);
}

static tls_link *link_of(guard *gd, SSL *ssl) {
  tls_link *t = SSL_get_ex_data(ssl, gd->ssl_index);
  if (t == (void *)&g_no_link) return NULL;
  if (t) return t;
  t = calloc(1, sizeof *t);
  if (!t) {
    /* Without memory: its frames are not counted. Counted once per SSL
     * (the mark needs no memory of ours; if OpenSSL's fails, once a call). */
    (void)SSL_set_ex_data(ssl, gd->ssl_index, &g_no_link);
    atomic_fetch_add(&g_untied, 1);
    return NULL;
  }
  h2_frames_reset(&t->f);
  t->fd = -1;
  if (SSL_set_ex_data(ssl, gd->ssl_index, t) != 1) {
    free(t);
    return NULL;
  }
  return t;
}

/* Ties an SSL to its connection: the client random of the ClientHello it
 * has read is the one a TLS connection of ours read on its descriptor.
 * grpc's tsi runs TLS on a memory BIO pair, so the SSL has no descriptor of
 * its own. Called after a handshake step: the random is known once the
 * whole ClientHello has reached the SSL, however it was split. */
static void try_tie(tls_link *t, SSL *ssl) {
  static const uint8_t zero[RANDOM_LEN];
  uint8_t random[RANDOM_LEN];
  if (t->fd >= 0 || t->tries >= 4) return;
  if (SSL_get_client_random(ssl, random, RANDOM_LEN) != RANDOM_LEN ||
      memcmp(random, zero, RANDOM_LEN) == 0)
    return; /* no ClientHello yet */
  t->tries++;
  pthread_mutex_lock(&g_mu);
  int fd = hello_find(random);
  rec *r = fd >= 0 ? rec_peek(fd) : NULL;
  if (r && atomic_load(&r->kind) == REC_TLS && !r->tls_tied) {
    hello_remove(fd, r);
    r->tls_tied = 1;
    t->fd = fd;
    t->gen = atomic_load(&r->gen);
    t->probe = r->probe;
    memcpy(t->peer, r->peer, PEER_MAX);
  }
  pthread_mutex_unlock(&g_mu);
  if (t->fd >= 0 && t->probe) atomic_fetch_or(&g_probe_state, PROBE_TLS_TIED);
  /* The reading thread offers a random before the SSL can read its hello:
   * a miss is a connection whose resets go uncounted (or no connection of
   * ours at all, e.g. a first record that was no handshake). Once per SSL. */
  if (t->fd < 0 && !t->untied) {
    t->untied = 1;
    atomic_fetch_add(&g_untied, 1);
  }
}

int SSL_do_handshake(SSL *ssl) {
  int ret = get_SSL_do_handshake()(ssl);
  guard *gd = on();
  if (gd && gd->ssl_index >= 0 && SSL_is_server(ssl)) {
    int saved = errno; /* the caller reads SSL_get_error, which may look at errno */
    tls_link *t = link_of(gd, ssl);
    if (t) try_tie(t, ssl);
    errno = saved;
  }
  return ret;
}

/* The OpenSSL error that makes tsi report a protocol failure and the core
 * close the connection. */
static int refuse_ssl(void) {
  ERR_raise(ERR_LIB_SSL, SSL_R_EXCESSIVE_MESSAGE_SIZE);
  return -1;
}

int SSL_read(SSL *ssl, void *buf, int num) {
  guard *gd = on();
  if (!gd || gd->ssl_index < 0 || !SSL_is_server(ssl)) return get_SSL_read()(ssl, buf, num);
  tls_link *t = link_of(gd, ssl);
  if (!t) return get_SSL_read()(ssl, buf, num);
  rec *r = t->fd >= 0 ? rec_peek(t->fd) : NULL;
  if (r && atomic_load_explicit(&r->gen, memory_order_acquire) != t->gen) r = NULL;
  if (t->refused || (r && atomic_load_explicit(&r->refused, memory_order_relaxed))) {
    t->refused = 1;
    return refuse_ssl();
  }
  int n = get_SSL_read()(ssl, buf, num);
  if (n <= 0) return n;
  h2_verdict v = h2_frames_feed(&t->f, limits_for(gd, t->probe), buf, (size_t)n, clock_mono_coarse_ns());
  if (r) atomic_store_explicit(&r->rst_seen, t->f.rst_total, memory_order_release);
  if (v == H2_OK) return n;
  t->refused = 1;
  if (t->probe) atomic_fetch_or(&g_probe_state, PROBE_REFUSED); /* before the end is seen */
  if (r) {
    atomic_store(&r->refused, 1);
    shutdown(t->fd, SHUT_RDWR); /* on the read of this connection: still its descriptor */
  }
  if (!t->probe) enqueue(gd, t->peer, v);
  return refuse_ssl();
}

/* ------------------------------------------------- decisions off the path --- */

/* Under g_mu: one reset `r`'s client sent that no cancel has used yet. */
static bool take_reset_locked(rec *r) {
  uint32_t seen = atomic_load_explicit(&r->rst_seen, memory_order_acquire);
  if ((int32_t)(seen - r->rst_used) <= 0) return false;
  r->rst_used++;
  return true;
}

/* The key of a peer text; non-zero if it is not an address. */
static int peer_key(const char *peer, uint8_t key[KEY_LEN]) {
  struct sockaddr_storage ss;
  if (!peer || h2_guard_parse_peer(peer, &ss) != 0) return -1;
  return key_of((struct sockaddr *)&ss, key, NULL, 0);
}

/* Under g_mu: the live connection whose peer key is `key` (its descriptor
 * in *fd), accepted on a listener of `group` (0: any); with `reset`, one
 * whose client sent a reset not used yet (taken). One peer address and port may hold several live connections at
 * once (one to each of our listeners, the same source port towards each):
 * a cancel is counted on one that sent a reset, not on whichever was
 * accepted last. */
static rec *find_locked(const uint8_t *key, int group, bool reset, int *fd_out) {
  for (int fd = g_bucket[key_hash(key)] - 1; fd >= 0;) {
    rec *r = rec_peek(fd);
    if (!r) break;
    if (is_conn(atomic_load(&r->kind)) && memcmp(r->key, key, KEY_LEN) == 0 &&
        (group == 0 || r->group == group) && (!reset || take_reset_locked(r))) {
      *fd_out = fd;
      return r;
    }
    fd = r->next - 1;
  }
  return NULL;
}

bool h2_guard_find_on(const char *peer, int group, h2_conn *out) {
  uint8_t key[KEY_LEN];
  if (peer_key(peer, key) != 0 || !atomic_load(&g_dir)) return false;
  pthread_mutex_lock(&g_mu);
  int fd = -1;
  rec *r = find_locked(key, group, false, &fd);
  if (r) *out = (h2_conn){.fd = fd, .gen = atomic_load(&r->gen)};
  pthread_mutex_unlock(&g_mu);
  return r != NULL;
}

bool h2_guard_find(const char *peer, h2_conn *out) { return h2_guard_find_on(peer, 0, out); }

/* Under g_mu: the record of `c` if it still names that connection. */
static rec *rec_of_conn(h2_conn c) {
  rec *r = rec_peek(c.fd);
  if (!r || c.gen == 0 || atomic_load(&r->gen) != c.gen || !is_conn(atomic_load(&r->kind)))
    return NULL;
  return r;
}

bool h2_guard_take_reset(h2_conn c) {
  bool ok = false;
  pthread_mutex_lock(&g_mu);
  rec *r = rec_of_conn(c);
  if (r) ok = take_reset_locked(r);
  pthread_mutex_unlock(&g_mu);
  return ok;
}

/* Under g_mu: one event in `r`'s one-second window of `slot`; true when it
 * is over `limit`. */
static bool count_locked(rec *r, int slot, int64_t limit, int64_t now) {
  if (r->win_count[slot] == 0 || now - r->win_start[slot] >= NS_PER_S || now < r->win_start[slot]) {
    r->win_start[slot] = now;
    r->win_count[slot] = 0;
  }
  if (r->win_count[slot] < UINT32_MAX) r->win_count[slot]++;
  return r->win_count[slot] > limit;
}

bool h2_guard_note(const char *peer, h2_conn c, int slot, int64_t limit, int64_t now) {
  if (slot < 0 || slot > 1 || limit <= 0) return false;
  bool by_peer = c.gen == 0;
  uint8_t key[KEY_LEN];
  if ((by_peer && peer_key(peer, key) != 0) || !atomic_load(&g_dir)) return false;
  char text[PEER_MAX] = "";
  bool done = false;
  /* One critical section: find (and take the reset), count, decide, shut
   * down. Nothing changes which connection the number names meanwhile. */
  pthread_mutex_lock(&g_mu);
  int fd = c.fd;
  rec *r = by_peer ? find_locked(key, 0, slot == 0, &fd) : rec_of_conn(c);
  if (r && count_locked(r, slot, limit, now) && !atomic_load(&r->refused)) {
    atomic_store(&r->refused, 1);
    done = shutdown(fd, SHUT_RDWR) == 0;
    memcpy(text, r->peer, PEER_MAX);
  }
  pthread_mutex_unlock(&g_mu);
  guard *gd = on();
  if (done && gd) enqueue(gd, text, slot == 0 ? H2_RAPID_RESET : H2_UNKNOWN_METHODS);
  return done;
}

int64_t h2_guard_reply_bytes(h2_conn c, int64_t delta) {
  int64_t total = -1;
  pthread_mutex_lock(&g_mu);
  rec *r = rec_of_conn(c);
  if (r) {
    r->reply_bytes += delta;
    if (r->reply_bytes < 0) r->reply_bytes = 0;
    total = r->reply_bytes;
  }
  pthread_mutex_unlock(&g_mu);
  return total;
}

bool h2_guard_close(h2_conn c, h2_verdict why) {
  char peer[PEER_MAX] = "";
  bool done = false;
  pthread_mutex_lock(&g_mu);
  rec *r = rec_of_conn(c);
  /* Under the lock the close hook takes too: this number is still the
   * connection the generation names. */
  if (r && !atomic_load(&r->refused)) {
    atomic_store(&r->refused, 1);
    done = shutdown(c.fd, SHUT_RDWR) == 0;
    memcpy(peer, r->peer, PEER_MAX);
  }
  pthread_mutex_unlock(&g_mu);
  guard *gd = on();
  if (done && gd) enqueue(gd, peer, why);
  return done;
}

#ifdef PRODUCT_TEST_FAULTS
void (*h2_guard_test_after_measure)(int fd);
#endif

int h2_guard_close_stalled(int min_unsent) {
  /* Under the lock only the walk that copies handles; the ioctl per
   * connection runs outside it, so accepts, closes and conn_guard's
   * decisions do not wait for N syscalls. */
  /* Connections accepted after this count was read may be left out of
   * this round (the next one, a second later, sees them). */
  int cap = atomic_load_explicit(&g_n_conns, memory_order_relaxed) + 16;
  h2_conn *list = malloc((size_t)cap * sizeof *list);
  if (!list) return 0;
  int n = 0;
  pthread_mutex_lock(&g_mu);
  for (int b = 0; b < BUCKETS && n < cap; b++) {
    for (int fd = g_bucket[b] - 1; fd >= 0 && n < cap;) {
      rec *r = rec_peek(fd);
      if (!r) break;
      /* One already shut down keeps its unsent bytes until the core closes
       * it: not a candidate, or the same socket would be picked each time. */
      if (is_conn(atomic_load(&r->kind)) && !atomic_load(&r->refused))
        list[n++] = (h2_conn){.fd = fd, .gen = atomic_load(&r->gen)};
      fd = r->next - 1;
    }
  }
  pthread_mutex_unlock(&g_mu);
  h2_conn worst = {.fd = -1, .gen = 0};
  int worst_unsent = min_unsent - 1;
  for (int i = 0; i < n; i++) {
    rec *r = rec_peek(list[i].fd);
    int unsent = 0;
    if (!r || ioctl(list[i].fd, SIOCOUTQ, &unsent) != 0) continue;
#ifdef PRODUCT_TEST_FAULTS
    if (h2_guard_test_after_measure) h2_guard_test_after_measure(list[i].fd);
#endif
    /* Still that connection after the ioctl: the close hook clears the
     * generation before the real close, so the number was not closed (and
     * perhaps reused) before the ioctl read it. */
    if (atomic_load(&r->gen) != list[i].gen || unsent <= worst_unsent) continue;
    worst = list[i];
    worst_unsent = unsent;
  }
  free(list);
  int closed = 0;
  if (worst.gen != 0) {
    pthread_mutex_lock(&g_mu);
    rec *r = rec_of_conn(worst); /* still it, and not closed by another decision */
    if (r && !atomic_load(&r->refused)) {
      atomic_store(&r->refused, 1);
      closed = shutdown(worst.fd, SHUT_RDWR) == 0;
    }
    pthread_mutex_unlock(&g_mu);
  }
  return closed;
}

/* ----------------------------------------------------------- the probe --- */

void h2_guard_probe_expect(const struct sockaddr *from) {
  uint8_t key[KEY_LEN];
  atomic_store(&g_probe_port, 0);
  atomic_store(&g_probe_state, 0);
  if (!from || key_of(from, key, NULL, 0) != 0) return;
  memcpy(g_probe_key, key, KEY_LEN);
  atomic_store(&g_probe_port, key[17] << 8 | key[18]);
}

int h2_guard_probe_state(void) { return atomic_load(&g_probe_state); }

uint64_t h2_guard_uncovered(void) { return atomic_load(&g_uncovered); }

uint64_t h2_guard_untied(void) { return atomic_load(&g_untied); }

/* --------------------------------------------------------------- life --- */

int h2_guard_start(const h2_limits *lim, h2_guard_report_fn report, void *ctx) {
  guard *gd = &g_guard;
  h2_guard_stop();
  if (!atomic_load(&g_dir)) {
    hash_seed(); /* before the first record is chained */
    /* calloc of this size maps zero pages: only touched slots become resident. */
    _Atomic(rec *) *dir = calloc(DIR_SLOTS, sizeof *dir);
    if (!dir) return -1;
    atomic_store_explicit(&g_dir, dir, memory_order_release);
  }
  gd->lim = *lim;
  /* The start-up probe breaks this one, whatever the configured limits. */
  gd->probe_lim = *lim;
  gd->probe_lim.pings_per_s = 1;
  gd->report = report;
  gd->ctx = ctx;
  gd->bypass = 0;
#ifdef PRODUCT_TEST_FAULTS
  /* "1": every listener, "plain" or "tls": those only. */
  const char *fault = getenv("PRODUCT_FAULT_GUARD_BYPASS");
  if (fault) gd->bypass = strcmp(fault, "1") == 0 ? 3 : strcmp(fault, "plain") == 0 ? 1
                          : strcmp(fault, "tls") == 0 ? 2 : 0;
#endif
  gd->uncovered_base = atomic_load(&g_uncovered);
  gd->untied_base = atomic_load(&g_untied);
  gd->no_record = false;
#ifdef PRODUCT_TEST_FAULTS
  gd->no_record = getenv("PRODUCT_FAULT_GUARD_NO_RECORD") != NULL;
#endif
  for (int v = 0; v < H2_VERDICT_COUNT; v++) atomic_store(&gd->dropped[v], 0);
  if (gd->ssl_index < 0) gd->ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_state_free);
  /* The queue's lock and condition are static: an I/O thread still inside
   * a read when the guard stops may queue a report (then counted as dropped). */
  pthread_mutex_lock(&gd->qmu);
  gd->qhead = gd->qcount = 0;
  gd->qstop = false;
  gd->thread_up = false;
  if (report) {
    if (pthread_create(&gd->thread, NULL, report_thread, gd) != 0) {
      pthread_mutex_unlock(&gd->qmu);
      return -1;
    }
    gd->thread_up = true;
  }
  pthread_mutex_unlock(&gd->qmu);
  atomic_store_explicit(&g_on, gd, memory_order_release);
  return 0;
}

void h2_guard_stop(void) {
  guard *gd = atomic_exchange(&g_on, NULL);
  /* The records stay: a core thread may still be inside a read. */
  if (!gd) return;
  pthread_mutex_lock(&gd->qmu);
  bool up = gd->thread_up;
  gd->qstop = true;
  pthread_cond_signal(&gd->qcv);
  pthread_mutex_unlock(&gd->qmu);
  if (up) pthread_join(gd->thread, NULL); /* it delivers what is queued first */
  pthread_mutex_lock(&gd->qmu);
  gd->thread_up = false;
  pthread_mutex_unlock(&gd->qmu);
}
