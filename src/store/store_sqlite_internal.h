#ifndef PRODUCT_STORE_STORE_SQLITE_INTERNAL_H
#define PRODUCT_STORE_STORE_SQLITE_INTERNAL_H
/* Shared between store_sqlite.c (open, schema, reader pool, reads) and
 * store_sqlite_writer.c (the single writer thread and group commit). Private
 * to those two files. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "store/store.h"

/* A get returns one row per category (or one with a NULL category): the
 * product's columns, then the category, in position order. */
#define SQ_JOINED_COLS \
  "p.id, p.name, p.description, p.price, p.created_us, p.updated_us, c.value"

/* A keyset page: products after (?1, ?2) matching WHERE_SQL, at most ?3.
 * WHERE_SQL sees the table as `products` (filter.h's schema contract). */
#define SQ_PAGE_SQL(WHERE_SQL)                                                     \
  "SELECT id, name, description, price, created_us, updated_us FROM products"     \
  " WHERE " WHERE_SQL " AND (created_us, id) > (?1, ?2)"                          \
  " ORDER BY created_us, id LIMIT ?3"

/* One connection and the statements it keeps prepared. A connection is used
 * by one thread at a time: a reader holds it from the pool, the writer owns
 * its own. */
typedef struct sq_conn {
  sqlite3 *db;
  sqlite3_stmt *begin;     /* BEGIN (deferred: a read snapshot) */
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  sqlite3_stmt *get;       /* one product by id (SQ_JOINED_COLS) */
  sqlite3_stmt *cats;      /* a product's categories, in order */
  sqlite3_stmt *list;      /* a keyset page, no filter (SQ_PAGE_SQL) */
  sqlite3_stmt *count_all; /* the maintained product count */
  struct sq_conn *next_free;
} sq_conn;

typedef enum sq_op { SQ_CREATE, SQ_UPDATE, SQ_REMOVE, SQ_FLUSH, SQ_CREATE_ONCE } sq_op;

/* A write handed to the writer thread. It lives on the caller's stack; the
 * caller sleeps until `done`, so the writer may use everything it points to
 * (including the caller's arena, for an update's result) until then. */
typedef struct sq_req {
  sq_op op;
  const product *product;     /* SQ_CREATE, SQ_CREATE_ONCE */
  const store_request *req;   /* SQ_CREATE_ONCE */
  const char *id;             /* SQ_UPDATE, SQ_REMOVE */
  const int64_t *if_updated_us; /* SQ_REMOVE: the etag precondition, or NULL */
  const product_patch *patch; /* SQ_UPDATE */
  arena *a;                   /* SQ_UPDATE, SQ_CREATE_ONCE: where the result goes */
  product *out;
  store_status status;
  bool done;
  struct sq_req *next;
} sq_req;

typedef struct sq_writer {
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t work; /* the writer waits for requests */
  pthread_cond_t done; /* callers wait for their request */
  sq_req *head, *tail;
  size_t depth;
  bool stopping;
  bool paused;          /* tests: let requests queue up */
  size_t max_batch;     /* 1 without group commit */
  uint64_t transactions; /* committed transactions (tests, benchmarks) */
  uint64_t writes;       /* requests that went through a commit */
  uint64_t largest_batch;
  int synchronous; /* as the connection reports it, for tests */
  bool purge_due;        /* drop expired request ids at the next idle moment */
  struct timespec next_purge; /* CLOCK_MONOTONIC */
  uint64_t purged, purges;
  sq_conn conn;
  sqlite3_stmt *begin_immediate;
  sqlite3_stmt *savepoint, *release, *rollback_to;
  sqlite3_stmt *insert_product, *insert_category;
  sqlite3_stmt *update_product, *delete_product, *delete_categories;
  sqlite3_stmt *exists_product, *select_request, *upsert_request, *purge_requests;
} sq_writer;

typedef struct sq_store {
  store base;
  pthread_mutex_t pool_mu;
  pthread_cond_t pool_cv;
  sq_conn *conns; /* readers */
  size_t n_conns;
  sq_conn *free_list;
  sq_writer w;
} sq_store;

store_status sq_status(int rc);
int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
/* Steps a statement that returns no rows, then resets it. */
int sq_exec_stmt(sqlite3_stmt *st);

/* Reads product `id` (row and categories, one snapshot) through c. */
store_status sq_load_product(sq_conn *c, const char *id, arena *a, product *out);

/* The writer thread (store_sqlite_writer.c). */
int sq_writer_start(sq_store *s, const char *path, bool group_commit, char *err, size_t errlen);
void sq_writer_stop(sq_store *s); /* drains the queue, joins, closes */
store_status sq_create(store *base, const product *p);
store_status sq_update(store *base, const char *id, const product_patch *patch, arena *a,
                       product *out);
store_status sq_remove(store *base, const char *id, const int64_t *if_updated_us);
store_status sq_create_once(store *base, const product *p, const store_request *req, arena *a,
                            product *out);
store_status sq_flush(store *base);

/* Opens a connection with the settings every connection needs. */
int sq_conn_open(sq_conn *c, const char *path, bool writer, char *err, size_t errlen);
void sq_conn_close(sq_conn *c);

#endif
