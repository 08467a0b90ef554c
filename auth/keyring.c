/* See keyring.h.
 *
 * Reclaiming a snapshot: a reader loads the pointer and then takes a
 * reference; between the two the writer may already have swapped the
 * pointer and dropped its own reference. So readers announce themselves in
 * `entering` for those two steps, and the writer, after the swap, waits
 * (a few instructions at most) until no reader is between them before it
 * drops the old snapshot's reference. Every reader that saw the old pointer
 * then holds a reference of its own, and the last one frees it. */
#include "auth/keyring.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwks.h"
#include "auth/revocations.h"
#include "core/call.h"
#include "core/file_watch.h"
#include "core/periodic.h"
#include "auth/page_token.h"

#define KEYRING_DEFAULT_INTERVAL_MS 1000
#define KEYRING_WAKE_MS 200 /* the thread's tick; file_watch limits the stat()s */

/* A part of a snapshot, shared by consecutive snapshots while its file does
 * not change. */
typedef struct part {
  atomic_uint refs;
  jwt_verifier *v;    /* the keys part */
  page_keyset *pages; /* with a key set: its page-token keys */
  revocations *rl;    /* the revocations part */
  size_t n;           /* keys, or entries */
  bool borrowed;      /* the single-secret verifier: the keyring owns it */
} part;

struct keyring_snap {
  atomic_uint refs;
  uint64_t gen;
  part *keys;
  part *revs; /* NULL without a revocation list */
};

struct keyring {
  _Atomic(keyring_snap *) cur;
  atomic_uint entering;
  /* Writer side, under mu: the watching thread and keyring_poll. */
  pthread_mutex_t mu;
  periodic *watcher; /* NULL until keyring_start */
  char *keys_path, *revs_path;
  file_watch *keys_watch, *revs_watch;
  jwt_verifier_options base; /* issuer and audience point into our copies */
  char *issuer, *audience;
  jwt_verifier *single;
  uint64_t gen;
  char kids[512]; /* the kids in force, for logs */
  keyring_keys_fn on_keys;
  void *on_keys_arg;
};

/* ------------------------------------------------------------- parts --- */

static part *part_new(void) {
  part *p = calloc(1, sizeof *p);
  if (p) atomic_init(&p->refs, 1);
  return p;
}

static part *part_ref(part *p) {
  if (p) atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  return p;
}

static void part_unref(part *p) {
  if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) return;
  if (!p->borrowed) jwt_verifier_destroy(p->v);
  page_keyset_destroy(p->pages);
  revocations_destroy(p->rl);
  free(p);
}

static void snap_unref(keyring_snap *s) {
  if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
  part_unref(s->keys);
  part_unref(s->revs);
  free(s);
}

/* ------------------------------------------------------------ readers --- */

keyring_snap *keyring_acquire(keyring *kr) {
  atomic_fetch_add(&kr->entering, 1);
  keyring_snap *s = atomic_load(&kr->cur);
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  atomic_fetch_sub(&kr->entering, 1);
  return s;
}

void keyring_release(keyring_snap *s) { snap_unref(s); }

uint64_t keyring_snap_generation(const keyring_snap *s) { return s->gen; }

size_t keyring_snap_keys(const keyring_snap *s) { return s->keys->n; }

const page_keyset *keyring_snap_page_keys(const keyring_snap *s) { return s->keys->pages; }

jwt_result keyring_verify(const keyring_snap *s, const char *token, size_t len, int64_t now,
                          jwt_identity *out) {
  jwt_identity tmp;
  jwt_identity *id = out ? out : &tmp;
  jwt_result r = jwt_verify(s->keys->v, token, len, now, id);
  if (r == JWT_OK && s->revs &&
      revocations_match(s->revs->rl, id->has_jti ? id->jti : NULL, id->sub, id->has_iat,
                        id->iat)) {
    memset(id, 0, sizeof *id);
    id->nbf = INT64_MIN;
    r = JWT_REVOKED;
  }
  return r;
}

/* ------------------------------------------------------------ loading --- */

/* A verifier and the page-token keys for the key set in path; kids (for
 * logs) and the count. Page tokens are minted with the key mint-token signs
 * with by default (the last that may sign; the last key when none may). */
static part *load_keys(keyring *kr, char *kids, size_t kids_len, char *err, size_t errlen) {
  jwks *set = NULL;
  jwt_key *keys = NULL;
  page_keyset_entry *pages = NULL;
  part *p = NULL;
  if (jwks_load_file(kr->keys_path, &set, err, errlen) != 0) return NULL;
  size_t n = jwks_count(set), signer = n - 1;
  if (!(keys = calloc(n, sizeof *keys)) || !(pages = calloc(n, sizeof *pages)) ||
      !(p = part_new()))
    goto oom;
  size_t o = 0;
  kids[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    const jwks_key *k = jwks_key_at(set, i);
    keys[i] = (jwt_key){.kid = k->kid, .secret = k->k, .secret_len = k->k_len};
    pages[i] = (page_keyset_entry){
        .kid = k->kid, .kid_len = k->kid_len, .secret = k->k, .secret_len = k->k_len};
    if (k->can_sign) signer = i;
    char safe[72];
    jwks_kid_for_log(k->kid, safe, sizeof safe);
    int w = snprintf(kids + o, kids_len - o, "%s%s%s", i ? "," : "", safe,
                     k->can_sign ? "" : "(verify)");
    if (w > 0) o = o + (size_t)w < kids_len ? o + (size_t)w : kids_len - 1;
  }
  jwt_verifier_options vo = kr->base;
  vo.keys = keys;
  vo.n_keys = n;
  if (jwt_verifier_create(&vo, &p->v) != 0 || !(p->pages = page_keyset_create(pages, n, signer)))
    goto oom;
  p->n = n;
  free(keys);
  free(pages);
  jwks_destroy(set); /* wipes the decoded keys: the HMAC contexts hold them */
  return p;
oom:
  snprintf(err, errlen, "key set %s: out of memory", kr->keys_path);
  free(keys);
  free(pages);
  jwks_destroy(set);
  part_unref(p);
  return NULL;
}

static part *load_revs(keyring *kr, char *err, size_t errlen) {
  revocations *rl;
  if (revocations_load_file(kr->revs_path, &rl, err, errlen) != 0) return NULL;
  part *p = part_new();
  if (!p) {
    revocations_destroy(rl);
    snprintf(err, errlen, "revocation list %s: out of memory", kr->revs_path);
    return NULL;
  }
  p->rl = rl;
  p->n = revocations_count(rl);
  return p;
}

/* Puts a new snapshot in force; takes the references to keys and revs. */
static int install(keyring *kr, part *keys, part *revs) {
  keyring_snap *s = calloc(1, sizeof *s);
  if (!s) {
    part_unref(keys);
    part_unref(revs);
    return -1;
  }
  atomic_init(&s->refs, 1); /* the keyring's reference */
  s->gen = ++kr->gen;
  s->keys = keys;
  s->revs = revs;
  keyring_snap *old = atomic_exchange(&kr->cur, s);
  while (atomic_load(&kr->entering) != 0) sched_yield();
  snap_unref(old);
  if (kr->on_keys) kr->on_keys(kr->on_keys_arg, keys->n);
  return 0;
}

static void log_reload(log_level level, const char *msg, const char *path, const char *why,
                       const char *kids, int64_t entries) {
  log_line l;
  log_line_begin(&l, level, msg);
  log_line_str(&l, "path", path);
  if (kids) log_line_str(&l, "jwt_keys", kids);
  if (entries >= 0) log_line_int(&l, "entries", entries);
  if (why) log_line_str(&l, "reason", why);
  log_line_emit(&l);
}

static bool watch_changed(file_watch *w, bool force) {
  return w && (force ? file_watch_look_now(w) : file_watch_changed(w, clock_mono_ns()));
}

/* Under kr->mu. */
static int reload(keyring *kr, bool force) {
  bool kch = watch_changed(kr->keys_watch, force);
  bool rch = watch_changed(kr->revs_watch, force);
  if (!kch && !rch) return 0;
  char why[512], kids[sizeof kr->kids];
  part *keys = NULL, *revs = NULL;
  bool refused = false;
  if (kch && !(keys = load_keys(kr, kids, sizeof kids, why, sizeof why))) {
    refused = true;
    log_reload(LOG_WARN, "key set reload failed; keeping the keys in force", kr->keys_path, why,
               kr->kids, -1);
  }
  if (rch && !(revs = load_revs(kr, why, sizeof why))) {
    refused = true;
    log_reload(LOG_WARN, "revocation list reload failed; keeping the list in force",
               kr->revs_path, why, NULL, -1);
  }
  if (!keys && !revs) return refused ? -1 : 0;
  keyring_snap *cur = atomic_load(&kr->cur); /* only the writer swaps it */
  size_t n_revs = revs ? revs->n : 0;
  bool new_keys = keys != NULL;
  if (install(kr, keys ? keys : part_ref(cur->keys), revs ? revs : part_ref(cur->revs)) != 0) {
    log_msg(LOG_ERROR, "key reload: out of memory; retrying");
    if (kr->keys_watch) file_watch_rearm(kr->keys_watch);
    if (kr->revs_watch) file_watch_rearm(kr->revs_watch);
    return -1;
  }
  if (new_keys) {
    memcpy(kr->kids, kids, sizeof kids);
    log_reload(LOG_INFO, "key set reloaded", kr->keys_path, NULL, kr->kids, -1);
  }
  if (revs) log_reload(LOG_INFO, "revocation list reloaded", kr->revs_path, NULL, NULL,
                       (int64_t)n_revs);
  return 1;
}

int keyring_poll(keyring *kr) {
  pthread_mutex_lock(&kr->mu);
  int rc = reload(kr, true);
  pthread_mutex_unlock(&kr->mu);
  return rc;
}

static int64_t watch_tick(periodic *p, void *arg) {
  (void)p;
  keyring *kr = arg;
  pthread_mutex_lock(&kr->mu);
  reload(kr, false);
  pthread_mutex_unlock(&kr->mu);
  return PERIODIC_INTERVAL;
}

/* ------------------------------------------------------------- public --- */

void keyring_destroy(keyring *kr) {
  if (!kr) return;
  periodic_stop(kr->watcher);
  snap_unref(atomic_load(&kr->cur));
  jwt_verifier_destroy(kr->single);
  file_watch_destroy(kr->keys_watch);
  file_watch_destroy(kr->revs_watch);
  free(kr->keys_path);
  free(kr->revs_path);
  free(kr->issuer);
  free(kr->audience);
  pthread_mutex_destroy(&kr->mu);
  free(kr);
}

static int init_sync(keyring *kr) { return pthread_mutex_init(&kr->mu, NULL) != 0 ? -1 : 0; }

int keyring_create(const keyring_options *opt, keyring **out, char *err, size_t errlen) {
  *out = NULL;
  part *keys = NULL, *revs = NULL;
  keyring *kr = calloc(1, sizeof *kr);
  if (!kr) goto oom;
  if (init_sync(kr) != 0) {
    free(kr);
    kr = NULL;
    goto oom;
  }
  atomic_init(&kr->entering, 0);
  atomic_init(&kr->cur, NULL);
  kr->on_keys = opt->on_keys;
  kr->on_keys_arg = opt->on_keys_arg;
  int64_t interval = opt->interval_ms > 0 ? opt->interval_ms : KEYRING_DEFAULT_INTERVAL_MS;
  kr->base = *opt->base;
  kr->base.keys = NULL;
  kr->base.n_keys = 0;
  kr->base.secret = NULL; /* only the single verifier below ever sees it */
  kr->base.secret_len = 0;
  if (!(kr->issuer = strdup(opt->base->issuer)) || !(kr->audience = strdup(opt->base->audience)))
    goto oom;
  kr->base.issuer = kr->issuer;
  kr->base.audience = kr->audience;

  /* Watched from before the first read, as at every reload. */
  if (opt->keys_path) {
    if (!(kr->keys_path = strdup(opt->keys_path)) ||
        !(kr->keys_watch = file_watch_create((const char *const *)&kr->keys_path, 1, interval)))
      goto oom;
    if (!(keys = load_keys(kr, kr->kids, sizeof kr->kids, err, errlen))) goto fail;
  } else {
    if (jwt_verifier_create(opt->base, &kr->single) != 0 || !(keys = part_new())) {
      snprintf(err, errlen, "cannot set up token verification");
      goto fail;
    }
    keys->v = kr->single;
    keys->borrowed = true;
    keys->n = 1;
    snprintf(kr->kids, sizeof kr->kids, "(single secret)");
  }
  if (opt->revocations_path) {
    if (!(kr->revs_path = strdup(opt->revocations_path)) ||
        !(kr->revs_watch = file_watch_create((const char *const *)&kr->revs_path, 1, interval)))
      goto oom;
    if (!(revs = load_revs(kr, err, errlen))) goto fail;
  }
  if (install(kr, keys, revs) != 0) {
    keys = revs = NULL; /* install released them */
    goto oom;
  }
  *out = kr;
  return 0;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  part_unref(keys);
  part_unref(revs);
  keyring_destroy(kr);
  return -1;
}

int keyring_start(keyring *kr) {
  periodic_options po = {
      .name = "key-watch", .tick = watch_tick, .arg = kr, .interval_ms = KEYRING_WAKE_MS};
  return periodic_start(&po, &kr->watcher);
}

void keyring_describe(keyring *kr, log_line *l) {
  pthread_mutex_lock(&kr->mu);
  keyring_snap *s = atomic_load(&kr->cur);
  log_line_str(l, "jwt_keys", kr->kids);
  if (kr->revs_path) log_line_int(l, "jwt_revocations", (int64_t)(s->revs ? s->revs->n : 0));
  pthread_mutex_unlock(&kr->mu);
}
