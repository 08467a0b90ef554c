/* The in-memory backend ("--store memory"): nothing survives the process.
 *
 * Records are immutable once published: an update builds a new record and
 * swaps the pointer, so a reader only has to hold the read lock while it
 * copies a record into its caller's arena. Two indexes point at the same
 * records: an open-addressing hash table by id (GetProduct, the hottest path,
 * is O(1)) and an array sorted by (created_us, id) for keyset paging (binary
 * search; creations almost always append at the end).
 *
 * Locking: `write_mu` serialises writers; a writer prepares everything that
 * allocates (the new record, a grown index) while holding only write_mu, so
 * readers are locked out (rw write lock) just for the pointer swaps. Order:
 * write_mu, then rw. A record is freed only after it is unlinked under the
 * write lock, so no reader can still see it.
 *
 * Request ids (create_once) live in their own chained hash table, touched
 * only under write_mu, with a list in the order they were recorded: each
 * create_once first drops the expired ones at its old end. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "store/filter.h"
#include "store/store.h"
#include "store/store_backends.h"

typedef struct mem_record {
  product p; /* strings and the category array live in the same allocation */
} mem_record;

/* A recorded request id: one allocation with its strings. */
typedef struct mem_req {
  struct mem_req *next;          /* hash chain */
  struct mem_req *older, *newer; /* recording order */
  uint64_t hash;
  int64_t recorded_us;
  char product_id[PRODUCT_ID_LEN + 1];
  const char *caller, *id, *fingerprint;
} mem_req;

typedef struct mem_store {
  store base;
  pthread_mutex_t write_mu;
  pthread_rwlock_t rw;
  uint64_t seed;
  /* Hash index: linear probing, power-of-two capacity, at most half full. */
  mem_record **slots;
  size_t slot_cap;
  /* Ordered index: sorted by (created_us, id); `count` records. */
  mem_record **order;
  size_t order_cap;
  size_t count;
  /* Request ids (write_mu): power-of-two buckets, grown at 1 per bucket. */
  mem_req **reqs;
  size_t req_cap, req_count;
  mem_req *req_oldest, *req_newest;
} mem_store;

/* ------------------------------------------------------------ records --- */

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* One allocation holding the product, its category pointers and strings. */
static mem_record *record_new(const product *src) {
  const char *name = store_str_or_empty(src->name);
  const char *desc = store_str_or_empty(src->description);
  size_t n_cat = src->categories ? src->n_categories : 0;
  size_t bytes = align8(sizeof(mem_record)) + n_cat * sizeof(char *);
  size_t name_len = strlen(name), desc_len = strlen(desc);
  bytes += name_len + 1 + desc_len + 1;
  for (size_t i = 0; i < n_cat; i++) bytes += strlen(store_str_or_empty(src->categories[i])) + 1;
  mem_record *r = malloc(bytes);
  if (!r) return NULL;
  r->p = *src;
  r->p.n_categories = n_cat;
  char **cats = (char **)((char *)r + align8(sizeof(mem_record)));
  char *text = (char *)(cats + n_cat);
  r->p.categories = n_cat ? cats : NULL;
  memcpy(text, name, name_len + 1);
  r->p.name = text;
  text += name_len + 1;
  memcpy(text, desc, desc_len + 1);
  r->p.description = text;
  text += desc_len + 1;
  for (size_t i = 0; i < n_cat; i++) {
    const char *c = store_str_or_empty(src->categories[i]);
    size_t n = strlen(c);
    memcpy(text, c, n + 1);
    cats[i] = text;
    text += n + 1;
  }
  return r;
}

/* Key order of the ordered index: created_us, then id bytewise. */
static int key_cmp(int64_t a_us, const char *a_id, int64_t b_us, const char *b_id) {
  if (a_us != b_us) return a_us < b_us ? -1 : 1;
  return strcmp(a_id, b_id);
}

/* ---------------------------------------------------------- hash index --- */

static uint64_t id_hash(const mem_store *m, const char *id) {
  uint64_t h = 1469598103934665603ULL ^ m->seed; /* FNV-1a, seeded */
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  h ^= h >> 29; /* FNV's low bits mix poorly for a power-of-two table */
  return h;
}

static size_t slot_find(const mem_store *m, mem_record *const *slots, size_t cap,
                        const char *id) {
  size_t mask = cap - 1, i = (size_t)id_hash(m, id) & mask;
  while (slots[i] && strcmp(slots[i]->p.id, id) != 0) i = (i + 1) & mask;
  return i;
}

static mem_record *hash_get(const mem_store *m, const char *id) {
  return m->slots[slot_find(m, m->slots, m->slot_cap, id)];
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void hash_del(mem_store *m, const char *id) {
  size_t mask = m->slot_cap - 1, i = slot_find(m, m->slots, m->slot_cap, id);
  if (!m->slots[i]) return;
  m->slots[i] = NULL;
  for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
    size_t home = (size_t)id_hash(m, m->slots[j]->p.id) & mask;
    /* Move j back into the hole when its home is not within (i, j]. */
    bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      m->slots[i] = m->slots[j];
      m->slots[j] = NULL;
      i = j;
    }
  }
}

/* ------------------------------------------------------- ordered index --- */

/* First position whose key is greater than (us, id); id NULL means "before
 * every id with this timestamp". */
static size_t order_upper(const mem_store *m, int64_t us, const char *id) {
  size_t lo = 0, hi = m->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const product *p = &m->order[mid]->p;
    int c = id ? key_cmp(p->created_us, p->id, us, id)
               : (p->created_us < us ? -1 : 1);
    if (c <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Position of the record with exactly this key, or count. */
static size_t order_find(const mem_store *m, const product *p) {
  size_t lo = 0, hi = m->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const product *q = &m->order[mid]->p;
    int c = key_cmp(q->created_us, q->id, p->created_us, p->id);
    if (c == 0) return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return m->count;
}

/* Makes room for one more record, allocating outside the rw lock: returns
 * the old arrays to free after the swap (NULL when nothing moved). */
static int grow_if_needed(mem_store *m, mem_record ***old_slots, mem_record ***old_order) {
  *old_slots = NULL;
  *old_order = NULL;
  mem_record **new_slots = NULL, **new_order = NULL;
  size_t new_slot_cap = m->slot_cap, new_order_cap = m->order_cap;
  if ((m->count + 1) * 2 > m->slot_cap) {
    new_slot_cap = m->slot_cap * 2;
    new_slots = calloc(new_slot_cap, sizeof(*new_slots));
    if (!new_slots) return -1;
    for (size_t i = 0; i < m->slot_cap; i++)
      if (m->slots[i]) new_slots[slot_find(m, new_slots, new_slot_cap, m->slots[i]->p.id)] =
                           m->slots[i];
  }
  if (m->count + 1 > m->order_cap) {
    new_order_cap = m->order_cap * 2;
    new_order = malloc(new_order_cap * sizeof(*new_order));
    if (!new_order) {
      free(new_slots);
      return -1;
    }
    memcpy(new_order, m->order, m->count * sizeof(*new_order));
  }
  if (!new_slots && !new_order) return 0;
  pthread_rwlock_wrlock(&m->rw);
  if (new_slots) {
    *old_slots = m->slots;
    m->slots = new_slots;
    m->slot_cap = new_slot_cap;
  }
  if (new_order) {
    *old_order = m->order;
    m->order = new_order;
    m->order_cap = new_order_cap;
  }
  pthread_rwlock_unlock(&m->rw);
  return 0;
}

/* ---------------------------------------------------------------- ops --- */

/* Publishes r (owned by the store from here on, also on failure); write_mu held. */
static store_status mem_insert_locked(mem_store *m, mem_record *r) {
  const product *p = &r->p;
  mem_record **old_slots, **old_order;
  if (hash_get(m, p->id) || grow_if_needed(m, &old_slots, &old_order) != 0) {
    free(r);
    return STORE_ERROR; /* a duplicate id (the service makes UUIDs) or OOM */
  }
  size_t pos = order_upper(m, p->created_us, p->id);
  pthread_rwlock_wrlock(&m->rw);
  m->slots[slot_find(m, m->slots, m->slot_cap, p->id)] = r;
  memmove(&m->order[pos + 1], &m->order[pos], (m->count - pos) * sizeof(*m->order));
  m->order[pos] = r;
  m->count++;
  pthread_rwlock_unlock(&m->rw);
  free(old_slots);
  free(old_order);
  return STORE_OK;
}

static store_status mem_create(store *s, const product *p) {
  FAULT_POINT("store.create.before");
  mem_store *m = (mem_store *)s;
  mem_record *r = record_new(p);
  if (!r) return STORE_ERROR;
  pthread_mutex_lock(&m->write_mu);
  store_status st = mem_insert_locked(m, r);
  pthread_mutex_unlock(&m->write_mu);
  /* Never under write_mu: a fault point unwinds the call (core/call.h). */
  if (st == STORE_OK) FAULT_POINT("store.create.after");
  return st;
}

static store_status mem_get(store *s, const char *id, arena *a, product *out) {
  FAULT_POINT("store.get.before");
  mem_store *m = (mem_store *)s;
  store_status st = STORE_NOT_FOUND;
  pthread_rwlock_rdlock(&m->rw);
  const mem_record *r = hash_get(m, id);
  if (r) st = product_copy(a, &r->p, out) == 0 ? STORE_OK : STORE_ERROR;
  pthread_rwlock_unlock(&m->rw);
  if (st == STORE_OK) FAULT_POINT("store.get.after");
  return st;
}

static store_status mem_update(store *s, const char *id, const product_patch *patch, arena *a,
                               product *out) {
  FAULT_POINT("store.update.before");
  mem_store *m = (mem_store *)s;
  store_status st = STORE_OK;
  mem_record *old = NULL;
  pthread_mutex_lock(&m->write_mu);
  /* Holding write_mu, no one else can change or free `old`. */
  old = hash_get(m, id);
  if (!old) {
    st = STORE_NOT_FOUND;
    goto cleanup;
  }
  if (patch->if_match && old->p.updated_us != patch->match_updated_us) {
    st = STORE_CONFLICT;
    goto cleanup;
  }
  product next = old->p;
  product_apply_patch(&next, patch);
  mem_record *r = record_new(&next);
  if (!r) {
    st = STORE_ERROR;
    goto cleanup;
  }
  if (product_copy(a, &r->p, out) != 0) {
    free(r);
    st = STORE_ERROR;
    goto cleanup;
  }
  size_t pos = order_find(m, &old->p);
  pthread_rwlock_wrlock(&m->rw);
  m->slots[slot_find(m, m->slots, m->slot_cap, id)] = r;
  if (pos < m->count) m->order[pos] = r;
  pthread_rwlock_unlock(&m->rw);
cleanup:
  pthread_mutex_unlock(&m->write_mu);
  if (st == STORE_OK) free(old);
  if (st == STORE_OK) FAULT_POINT("store.update.after");
  return st;
}

static store_status mem_remove(store *s, const char *id, const int64_t *if_updated_us) {
  FAULT_POINT("store.remove.before");
  mem_store *m = (mem_store *)s;
  pthread_mutex_lock(&m->write_mu);
  mem_record *r = hash_get(m, id);
  if (!r || (if_updated_us && r->p.updated_us != *if_updated_us)) {
    pthread_mutex_unlock(&m->write_mu);
    return r ? STORE_CONFLICT : STORE_NOT_FOUND;
  }
  size_t pos = order_find(m, &r->p);
  pthread_rwlock_wrlock(&m->rw);
  hash_del(m, id);
  if (pos < m->count) {
    memmove(&m->order[pos], &m->order[pos + 1], (m->count - pos - 1) * sizeof(*m->order));
    m->count--;
  }
  pthread_rwlock_unlock(&m->rw);
  pthread_mutex_unlock(&m->write_mu);
  free(r);
  FAULT_POINT("store.remove.after");
  return STORE_OK;
}

static store_status mem_list(store *s, const struct filter *f, const store_cursor *after,
                             size_t limit, arena *a, store_list_result *out) {
  FAULT_POINT("store.list.before");
  mem_store *m = (mem_store *)s;
  store_status st = STORE_OK;
  memset(out, 0, sizeof(*out));
  pthread_rwlock_rdlock(&m->rw);
  size_t start = after ? order_upper(m, after->created_us, after->id) : 0;
  size_t remaining = m->count - start;
  size_t cap = limit < remaining ? limit : remaining;
  if (cap) {
    out->items = arena_calloc(a, cap, sizeof(product));
    if (!out->items) {
      st = STORE_ERROR;
      goto cleanup;
    }
  }
  if (!f) {
    out->total = (int64_t)m->count;
    for (size_t i = 0; i < cap; i++)
      if (product_copy(a, &m->order[start + i]->p, &out->items[out->n++]) != 0) {
        st = STORE_ERROR;
        goto cleanup;
      }
    out->more = remaining > cap;
    goto cleanup;
  }
  /* With a filter, total needs every record anyway: one pass does both. */
  for (size_t i = 0; i < m->count; i++) {
    const product *p = &m->order[i]->p;
    if (!filter_match(f, p)) continue;
    out->total++;
    if (i < start) continue;
    if (out->n < cap) {
      if (product_copy(a, p, &out->items[out->n++]) != 0) {
        st = STORE_ERROR;
        goto cleanup;
      }
    } else {
      out->more = true;
    }
  }
cleanup:
  pthread_rwlock_unlock(&m->rw);
  if (st != STORE_OK) memset(out, 0, sizeof(*out));
  if (st == STORE_OK) FAULT_POINT("store.list.after");
  return st;
}

/* -------------------------------------------------------- request ids --- */

static uint64_t req_hash(const mem_store *m, const char *caller, const char *id) {
  uint64_t h = 1469598103934665603ULL ^ m->seed;
  for (const unsigned char *p = (const unsigned char *)caller;; p++) {
    h ^= *p; /* the NUL too: ("ab", "c") and ("a", "bc") differ */
    h *= 1099511628211ULL;
    if (!*p) break;
  }
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return h ^ (h >> 29);
}

static mem_req **req_find(mem_store *m, uint64_t h, const char *caller, const char *id) {
  mem_req **link = &m->reqs[h & (m->req_cap - 1)];
  while (*link && ((*link)->hash != h || strcmp((*link)->caller, caller) != 0 ||
                   strcmp((*link)->id, id) != 0))
    link = &(*link)->next;
  return link;
}

static void req_unlink(mem_store *m, mem_req *q) {
  mem_req **link = req_find(m, q->hash, q->caller, q->id);
  if (*link == q) *link = q->next;
  if (q->older) q->older->newer = q->newer; else m->req_oldest = q->newer;
  if (q->newer) q->newer->older = q->older; else m->req_newest = q->older;
  m->req_count--;
  free(q);
}

/* Doubles the buckets; on OOM the chains just grow longer. */
static void req_grow(mem_store *m) {
  size_t cap = m->req_cap * 2;
  mem_req **b = calloc(cap, sizeof(*b));
  if (!b) return;
  for (size_t i = 0; i < m->req_cap; i++)
    for (mem_req *q = m->reqs[i], *next; q; q = next) {
      next = q->next;
      q->next = b[q->hash & (cap - 1)];
      b[q->hash & (cap - 1)] = q;
    }
  free(m->reqs);
  m->reqs = b;
  m->req_cap = cap;
}

static mem_req *req_new(uint64_t h, const store_request *req, const char *product_id) {
  size_t nc = strlen(req->caller) + 1, ni = strlen(req->id) + 1, nf = strlen(req->fingerprint) + 1;
  mem_req *q = malloc(sizeof(*q) + nc + ni + nf);
  if (!q) return NULL;
  memset(q, 0, sizeof(*q));
  char *text = (char *)(q + 1);
  q->caller = memcpy(text, req->caller, nc);
  q->id = memcpy(text + nc, req->id, ni);
  q->fingerprint = memcpy(text + nc + ni, req->fingerprint, nf);
  q->hash = h;
  q->recorded_us = req->now_us;
  snprintf(q->product_id, sizeof q->product_id, "%s", product_id);
  return q;
}

static store_status mem_create_once(store *s, const product *p, const store_request *req,
                                    arena *a, product *out) {
  FAULT_POINT("store.create.before");
  mem_store *m = (mem_store *)s;
  store_status st;
  int64_t cutoff = req->now_us - STORE_REQUEST_WINDOW_US;
  uint64_t h = req_hash(m, req->caller, req->id);
  /* Everything that allocates happens before write_mu, as in mem_create:
   * the record, the id's entry and the answer for a first call. */
  mem_record *r = record_new(p);
  mem_req *q = r ? req_new(h, req, p->id) : NULL;
  if (!q || product_copy(a, &r->p, out) != 0) {
    free(r);
    free(q);
    return STORE_ERROR;
  }
  pthread_mutex_lock(&m->write_mu);
  while (m->req_oldest && m->req_oldest->recorded_us <= cutoff) req_unlink(m, m->req_oldest);
  mem_req *seen = *req_find(m, h, req->caller, req->id);
  if (seen && seen->recorded_us <= cutoff) { /* expired, but behind a newer one in the list */
    req_unlink(m, seen);
    seen = NULL;
  }
  if (seen) {
    free(r);
    free(q);
    /* Holding write_mu, no record can change or go away under us. */
    const mem_record *first = hash_get(m, seen->product_id);
    st = strcmp(seen->fingerprint, req->fingerprint) != 0 ? STORE_MISMATCH
         : !first                                        ? STORE_NOT_FOUND
         : product_copy(a, &first->p, out) == 0           ? STORE_OK
                                                          : STORE_ERROR;
    goto cleanup;
  }
  if ((st = mem_insert_locked(m, r)) != STORE_OK) { /* it freed r */
    free(q);
    goto cleanup;
  }
  if (m->req_count + 1 > m->req_cap) req_grow(m);
  mem_req **link = &m->reqs[h & (m->req_cap - 1)];
  q->next = *link;
  *link = q;
  q->older = m->req_newest;
  if (m->req_newest) m->req_newest->newer = q; else m->req_oldest = q;
  m->req_newest = q;
  m->req_count++;
cleanup:
  pthread_mutex_unlock(&m->write_mu);
  if (st == STORE_OK) FAULT_POINT("store.create.after");
  return st;
}

static store_status mem_flush(store *s) {
  (void)s;
  return STORE_OK;
}

static void mem_destroy(store *s) {
  mem_store *m = (mem_store *)s;
  for (size_t i = 0; i < m->count; i++) free(m->order[i]);
  for (mem_req *q = m->req_oldest, *next; q; q = next) {
    next = q->newer;
    free(q);
  }
  free(m->reqs);
  free(m->order);
  free(m->slots);
  pthread_rwlock_destroy(&m->rw);
  pthread_mutex_destroy(&m->write_mu);
  free(m);
}

static const store_ops mem_ops = {
    .name = "memory",
    .create = mem_create,
    .get = mem_get,
    .update = mem_update,
    .remove = mem_remove,
    .list = mem_list,
    .create_once = mem_create_once,
    .flush = mem_flush,
    .destroy = mem_destroy,
};

int store_memory_open(const store_options *opt, store **out, char *err, size_t errlen) {
  (void)opt;
  *out = NULL;
  mem_store *m = calloc(1, sizeof(*m));
  if (!m) goto oom;
  m->base.ops = &mem_ops;
  m->slot_cap = 1024;
  m->order_cap = 512;
  m->req_cap = 256;
  m->slots = calloc(m->slot_cap, sizeof(*m->slots));
  m->order = malloc(m->order_cap * sizeof(*m->order));
  m->reqs = calloc(m->req_cap, sizeof(*m->reqs));
  if (!m->slots || !m->order || !m->reqs) goto oom;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  m->seed = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)m;
  /* Prefer writers: a steady stream of reads must not starve a create. */
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  int rc = pthread_rwlock_init(&m->rw, &attr);
  pthread_rwlockattr_destroy(&attr);
  if (rc != 0) goto oom;
  if (pthread_mutex_init(&m->write_mu, NULL) != 0) {
    pthread_rwlock_destroy(&m->rw);
    goto oom;
  }
  *out = &m->base;
  return 0;
oom:
  if (m) {
    free(m->reqs);
    free(m->slots);
    free(m->order);
    free(m);
  }
  if (err && errlen) snprintf(err, errlen, "store: out of memory");
  return -1;
}
