#ifndef PRODUCT_STORE_STORE_H
#define PRODUCT_STORE_STORE_H
/* The store interface that every backend (memory, SQLite, PostgreSQL)
 * implements with the same behaviour; tests/unit/test_store_behaviour.c runs
 * one suite against each. Backends never panic: they return a status, and
 * copy what they return into the caller's arena. Thread-safe.
 *
 * Test builds (PRODUCT_TEST_FAULTS) are the one exception: every backend's
 * five ops carry FAULT_POINT("store.<op>.before") on entry and
 * FAULT_POINT("store.<op>.after") on success, after the write committed,
 * both with no lock held, no connection checked out and no transaction
 * open (call_panic's rule). tests/integration/test_recovery.py drives each
 * one on each backend. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

#define PRODUCT_ID_LEN 36 /* canonical UUID text */

typedef struct product {
  char id[PRODUCT_ID_LEN + 1];
  char *name;
  char *description;
  double price;
  char **categories;
  size_t n_categories;
  int64_t created_us; /* microseconds since the Unix epoch */
  int64_t updated_us;
} product;

/* Which fields an update replaces (already validated by the service). */
enum {
  PATCH_NAME = 1u << 0,
  PATCH_DESCRIPTION = 1u << 1,
  PATCH_PRICE = 1u << 2,
  PATCH_CATEGORIES = 1u << 3,
};
typedef struct product_patch {
  unsigned fields; /* PATCH_* bits */
  const char *name;
  const char *description;
  double price;
  char *const *categories;
  size_t n_categories;
  int64_t updated_us;
  /* A precondition (an etag): with if_match the update happens only while
   * the product's updated_us is match_updated_us, else STORE_CONFLICT. */
  bool if_match;
  int64_t match_updated_us;
} product_patch;

/* Keyset position: the last (created_us, id) a page returned. */
typedef struct store_cursor {
  int64_t created_us;
  char id[PRODUCT_ID_LEN + 1];
} store_cursor;

typedef enum store_status {
  STORE_OK = 0,
  STORE_NOT_FOUND,
  STORE_UNAVAILABLE, /* backend unreachable: retryable */
  STORE_ERROR,       /* anything else (I/O, corruption, out of memory) */
  STORE_CONFLICT,    /* a precondition (etag) did not hold: nothing changed */
  STORE_MISMATCH,    /* a request id repeated with other fields: nothing created */
} store_status;

/* How long a request id is remembered (contract: 24 hours per caller). */
#define STORE_REQUEST_WINDOW_US (INT64_C(24) * 3600 * 1000000)
#define STORE_FINGERPRINT_MAX 64 /* bytes of a request fingerprint */

/* A CreateProduct's request id. The pair (caller, id) names the request; the
 * fingerprint (a digest of the request's fields, made by the service) tells
 * a true retry from a reuse. now_us is when the call arrived: it is recorded
 * with the id, and ids recorded at or before now_us - STORE_REQUEST_WINDOW_US
 * are forgotten. */
typedef struct store_request {
  const char *caller;
  const char *id;
  const char *fingerprint;
  int64_t now_us;
} store_request;

struct filter; /* src/store/filter.h */

typedef struct store store;

typedef struct store_list_result {
  product *items;
  size_t n;
  bool more;     /* products follow the last one */
  int64_t total; /* products matching the filter */
} store_list_result;

typedef struct store_ops {
  const char *name;
  store_status (*create)(store *s, const product *p);
  store_status (*get)(store *s, const char *id, arena *a, product *out);
  store_status (*update)(store *s, const char *id, const product_patch *patch, arena *a,
                         product *out);
  /* if_updated_us (NULL: unconditional): remove only while the product's
   * updated_us is this, else STORE_CONFLICT. */
  store_status (*remove)(store *s, const char *id, const int64_t *if_updated_us);
  /* create, once per request: the first call with (caller, id) inside the
   * window creates p and records the id in the same transaction; a repeat
   * with the same fingerprint creates nothing and returns the first product
   * as it is now (STORE_NOT_FOUND once it was deleted); a repeat with
   * another fingerprint is STORE_MISMATCH. Also when the calls race, across
   * processes sharing the backend: exactly one creates. out gets the
   * product (copied into a). */
  store_status (*create_once)(store *s, const product *p, const store_request *req, arena *a,
                              product *out);
  /* Products after `after` (NULL: from the start) in (created_us, id) order,
   * at most `limit`, that match `f` (NULL: all). */
  store_status (*list)(store *s, const struct filter *f, const store_cursor *after,
                       size_t limit, arena *a, store_list_result *out);
  /* Makes every write that returned OK durable (at shutdown). */
  store_status (*flush)(store *s);
  /* Whether the backend answers now (health). */
  bool (*healthy)(store *s); /* NULL: always answers (memory, SQLite) */
  void (*destroy)(store *s);
} store_ops;

/* Every backend's handle starts with this. */
struct store {
  const store_ops *ops;
};

typedef struct store_options {
  int pool_size; /* connections for backends that pool (worker threads) */
  bool group_commit;
} store_options;

/* Opens the backend a contract STORE spec names: "memory", "sqlite:PATH",
 * "postgres://..." / "postgresql://...". On failure returns non-zero and
 * writes one line into err (a password is never copied into it). */
int store_open(const char *spec, const store_options *opt, store **out, char *err, size_t errlen);

/* Checks a spec's syntax without opening anything (the config module). */
int store_spec_check(const char *spec, char *err, size_t errlen);

/* Copies spec into out (truncated to fit) with any password (URI user info or
 * a password= parameter) replaced by "<redacted>": safe for logs and errors. */
void store_spec_redact(const char *spec, char *out, size_t outlen);

static inline store_status store_create(store *s, const product *p) { return s->ops->create(s, p); }
static inline store_status store_get(store *s, const char *id, arena *a, product *out) {
  return s->ops->get(s, id, a, out);
}
static inline store_status store_update(store *s, const char *id, const product_patch *patch,
                                        arena *a, product *out) {
  return s->ops->update(s, id, patch, a, out);
}
static inline store_status store_remove(store *s, const char *id) {
  return s->ops->remove(s, id, NULL);
}
static inline store_status store_remove_if(store *s, const char *id, int64_t if_updated_us) {
  return s->ops->remove(s, id, &if_updated_us);
}
static inline store_status store_create_once(store *s, const product *p, const store_request *req,
                                             arena *a, product *out) {
  return s->ops->create_once(s, p, req, a, out);
}
static inline store_status store_list(store *s, const struct filter *f, const store_cursor *after,
                                      size_t limit, arena *a, store_list_result *out) {
  return s->ops->list(s, f, after, limit, a, out);
}
static inline store_status store_flush(store *s) { return s->ops->flush(s); }
static inline bool store_healthy(store *s) { return s->ops->healthy ? s->ops->healthy(s) : true; }
static inline void store_destroy(store *s) {
  if (s) s->ops->destroy(s);
}

/* Deep-copies p into the arena; non-zero on OOM. */
int product_copy(arena *a, const product *src, product *dst);

/* Applies patch to p in place (strings are shared with the patch, not
 * copied). updated_us strictly increases, so updated_at changes on every
 * update even within one clock tick or after the clock stepped back. The
 * PostgreSQL backend applies the same rule in SQL. */
void product_apply_patch(product *p, const product_patch *patch);

/* The etag of a product: opaque to clients, it is made from updated_us,
 * which every update (and nothing else) moves strictly forward. So an etag
 * precondition is a compare of updated_us, atomic in each backend. */
#define STORE_ETAG_LEN 16 /* and at most 64 bytes, as the contract says */
void store_etag(const product *p, char out[STORE_ETAG_LEN + 1]);
/* The updated_us an etag stands for; non-zero when etag is none we issue. */
int store_etag_parse(const char *etag, int64_t *updated_us);

#endif
