/* The SQLite backend ("--store sqlite:PATH", the default): connections,
 * schema and migrations, and the read path. Writes go through one writer
 * thread that commits concurrent requests in groups: store_sqlite_writer.c.
 *
 * Durability: journal_mode=WAL with synchronous=FULL. In WAL mode FULL
 * fsyncs the WAL at every commit, so a write that returned OK survives both
 * kill -9 and a power cut. NORMAL would survive kill -9 (the WAL is in the
 * page cache) but not a power cut: it syncs only at checkpoints, so the last
 * commits could vanish. Group commit pays for FULL: one fsync per batch.
 *
 * Reads use a small pool of connections; WAL lets them run beside the
 * writer, each inside a read transaction (one snapshot per call, so a page
 * and its total agree). Paging is keyset-only: (created_us, id) > cursor on
 * the index products_by_created, never OFFSET, so page 1,000 costs what page
 * 1 costs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/call.h"
#include "store/filter.h"
#include "store/store_backends.h"
#include "store/store_sqlite.h"
#include "store/store_sqlite_internal.h"

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_DEFAULT_POOL 4
#define SQ_MAX_POOL 64

/* Forward migrations: migration k takes a database from version k-1 to k.
 * Never edit a released one; append. The names here are the schema contract
 * in filter.h (products, product_categories). */
static const char *const sq_migrations[STORE_SQLITE_SCHEMA_VERSION] = {
    /* 1: products and their ordered categories. A rowid table (rows carry
     * descriptions up to 4 KiB, too big for WITHOUT ROWID to pay off). */
    "CREATE TABLE products ("
    "  id TEXT NOT NULL PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  price REAL NOT NULL,"
    "  created_us INTEGER NOT NULL,"
    "  updated_us INTEGER NOT NULL);"
    "CREATE INDEX products_by_created ON products (created_us, id);"
    "CREATE TABLE product_categories ("
    "  product_id TEXT NOT NULL,"
    "  position INTEGER NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (product_id, position)) WITHOUT ROWID;"
    "CREATE INDEX product_categories_by_value ON product_categories (value, product_id);",
    /* 2: a maintained row count, so an unfiltered total is O(1) instead of
     * a COUNT(*) scan on every ListProducts. */
    "CREATE TABLE product_count (n INTEGER NOT NULL);"
    "INSERT INTO product_count (n) SELECT COUNT(*) FROM products;"
    "CREATE TRIGGER products_count_insert AFTER INSERT ON products"
    "  BEGIN UPDATE product_count SET n = n + 1; END;"
    "CREATE TRIGGER products_count_delete AFTER DELETE ON products"
    "  BEGIN UPDATE product_count SET n = n - 1; END;",
    /* 3: CreateProduct's request ids, per caller, with the product each
     * created and a digest of its fields; written in the transaction of the
     * insert. No foreign key: a deleted product leaves its id behind (a
     * retry then answers NOT_FOUND). WITHOUT ROWID: the key is the row, so
     * recording an id is one b-tree insert (and the time index). */
    "CREATE TABLE product_requests ("
    "  caller TEXT NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL,"
    "  product_id TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL,"
    "  PRIMARY KEY (caller, request_id)) WITHOUT ROWID;"
    "CREATE INDEX product_requests_by_created ON product_requests (created_us);",
};

store_status sq_status(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return STORE_OK;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return STORE_UNAVAILABLE;
  default:
    return STORE_ERROR;
  }
}

int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out) {
  return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
}

int sq_exec_stmt(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int sq_fail(sqlite3 *db, const char *what, char *err, size_t errlen) {
  if (err && errlen)
    snprintf(err, errlen, "store: sqlite: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
  return -1;
}

/* Brings the schema to STORE_SQLITE_SCHEMA_VERSION in one transaction, so a
 * crash mid-way leaves the old version intact. Idempotent. */
static int sq_migrate(sqlite3 *db, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int version = 0, rc;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE;"
                       "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
                   NULL, NULL, NULL) != SQLITE_OK)
    return sq_fail(db, "schema", err, errlen);
  rc = sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", -1, &st,
                          NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
  else rc = SQLITE_ERROR;
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) goto fail;
  if (version > STORE_SQLITE_SCHEMA_VERSION) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (err && errlen)
      snprintf(err, errlen,
               "store: sqlite: the database is at schema version %d, newer than this build (%d)",
               version, STORE_SQLITE_SCHEMA_VERSION);
    return -1;
  }
  for (int v = version + 1; v <= STORE_SQLITE_SCHEMA_VERSION; v++)
    if (sqlite3_exec(db, sq_migrations[v - 1], NULL, NULL, NULL) != SQLITE_OK) goto fail;
  if (version < STORE_SQLITE_SCHEMA_VERSION) {
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d);",
             STORE_SQLITE_SCHEMA_VERSION);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) goto fail;
  }
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
  return 0;
fail:
  sq_fail(db, "schema migration", err, errlen);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}

void sq_conn_close(sq_conn *c) {
  sqlite3_stmt *all[] = {c->begin, c->commit, c->rollback, c->get,
                         c->cats, c->list, c->count_all};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) sqlite3_finalize(all[i]);
  sqlite3_close_v2(c->db);
  memset(c, 0, sizeof(*c));
}

int sq_conn_open(sq_conn *c, const char *path, bool writer, char *err, size_t errlen) {
  memset(c, 0, sizeof(*c));
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
    sq_fail(c->db, "cannot open the database", err, errlen);
    goto fail;
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
  if (writer) {
    /* journal_mode is stored in the file; check it took (it cannot on some
     * file systems, and then FULL alone would not give us concurrency). */
    sqlite3_stmt *st = NULL;
    bool wal = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
               sqlite3_step(st) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
      sq_fail(c->db, "cannot switch to WAL mode", err, errlen);
      goto fail;
    }
    if (sqlite3_exec(c->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
      sq_fail(c->db, "PRAGMA synchronous", err, errlen);
      goto fail;
    }
    if (sq_migrate(c->db, err, errlen) != 0) goto fail;
  } else if (sqlite3_exec(c->db,
                          /* Readers map the file: a page read is a memory
                           * access, not a read() into a private cache. */
                          "PRAGMA query_only=1; PRAGMA mmap_size=268435456", NULL, NULL,
                          NULL) != SQLITE_OK) {
    sq_fail(c->db, "reader pragmas", err, errlen);
    goto fail;
  }
  if (sq_prepare(c->db, "BEGIN", &c->begin) || sq_prepare(c->db, "COMMIT", &c->commit) ||
      sq_prepare(c->db, "ROLLBACK", &c->rollback) ||
      sq_prepare(c->db,
                 "SELECT " SQ_JOINED_COLS " FROM products p LEFT JOIN product_categories c"
                 " ON c.product_id = p.id WHERE p.id = ?1 ORDER BY c.position",
                 &c->get) ||
      sq_prepare(c->db,
                 "SELECT value FROM product_categories WHERE product_id = ?1 ORDER BY position",
                 &c->cats) ||
      sq_prepare(c->db, SQ_PAGE_SQL("1 = 1"), &c->list) ||
      sq_prepare(c->db, "SELECT n FROM product_count", &c->count_all)) {
    sq_fail(c->db, "prepare", err, errlen);
    goto fail;
  }
  return 0;
fail:
  sq_conn_close(c);
  return -1;
}

/* ---------------------------------------------------------------- reads --- */

static char *col_text(sqlite3_stmt *st, int col, arena *a) {
  const unsigned char *t = sqlite3_column_text(st, col);
  int n = sqlite3_column_bytes(st, col);
  return arena_strndup(a, t ? (const char *)t : "", t ? (size_t)n : 0);
}

/* Fills out from the first six columns of a row (SQ_JOINED_COLS or
 * SQ_PAGE_SQL: id, name, description, price, created_us, updated_us). */
static store_status sq_row_product(sqlite3_stmt *st, arena *a, product *out) {
  memset(out, 0, sizeof(*out));
  const unsigned char *id = sqlite3_column_text(st, 0);
  int id_len = sqlite3_column_bytes(st, 0);
  if (!id || id_len > PRODUCT_ID_LEN) return STORE_ERROR;
  memcpy(out->id, id, (size_t)id_len);
  out->id[id_len] = '\0';
  out->name = col_text(st, 1, a);
  out->description = col_text(st, 2, a);
  if (!out->name || !out->description) return STORE_ERROR;
  out->price = sqlite3_column_double(st, 3);
  out->created_us = sqlite3_column_int64(st, 4);
  out->updated_us = sqlite3_column_int64(st, 5);
  return STORE_OK;
}

/* Appends the row's category (column col; NULL in a join when the product
 * has none) to p; *cap is the capacity of p's array so far. */
static store_status sq_row_category(sqlite3_stmt *st, int col, arena *a, product *p,
                                    size_t *cap) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return STORE_OK;
  if (p->n_categories == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    char **grown = arena_alloc(a, ncap * sizeof(char *));
    if (!grown) return STORE_ERROR;
    if (*cap) memcpy(grown, p->categories, *cap * sizeof(char *));
    p->categories = grown;
    *cap = ncap;
  }
  char *v = col_text(st, col, a);
  if (!v) return STORE_ERROR;
  p->categories[p->n_categories++] = v;
  return STORE_OK;
}

static store_status sq_load_categories(sq_conn *c, arena *a, product *p) {
  sqlite3_stmt *st = c->cats;
  store_status status = STORE_OK;
  size_t cap = 0;
  int rc;
  sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && status == STORE_OK)
    status = sq_row_category(st, 0, a, p, &cap);
  if (status == STORE_OK && rc != SQLITE_DONE) status = sq_status(rc);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return status;
}

/* Reads a page (SQ_PAGE_SQL rows) and each product's categories, inside
 * the caller's read transaction. */
static store_status sq_read_page(sq_conn *c, sqlite3_stmt *st, size_t limit, arena *a,
                                 store_list_result *out) {
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (out->n == limit) {
      out->more = true;
      return STORE_OK;
    }
    if (out->n == cap) {
      size_t ncap = cap ? cap * 2 : (limit < 16 ? limit : 16);
      product *grown = arena_alloc(a, ncap * sizeof(product));
      if (!grown) return STORE_ERROR;
      if (cap) memcpy(grown, out->items, cap * sizeof(product));
      out->items = grown;
      cap = ncap;
    }
    product *p = &out->items[out->n];
    store_status status = sq_row_product(st, a, p);
    if (status == STORE_OK) status = sq_load_categories(c, a, p);
    if (status != STORE_OK) return status;
    out->n++;
  }
  return rc == SQLITE_DONE ? STORE_OK : sq_status(rc) == STORE_OK ? STORE_ERROR : sq_status(rc);
}

/* One statement (so one snapshot) for the row and its categories: the join
 * repeats the product on each category row. */
store_status sq_load_product(sq_conn *c, const char *id, arena *a, product *out) {
  sqlite3_stmt *st = c->get;
  store_status status = STORE_NOT_FOUND;
  size_t cap = 0;
  int rc;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (status == STORE_NOT_FOUND) status = sq_row_product(st, a, out);
    if (status == STORE_OK) status = sq_row_category(st, 6, a, out, &cap);
    if (status != STORE_OK) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) status = sq_status(rc) == STORE_OK ? STORE_ERROR
                                                                                : sq_status(rc);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return status;
}

static sq_conn *pool_acquire(sq_store *s) {
  pthread_mutex_lock(&s->pool_mu);
  while (!s->free_list) pthread_cond_wait(&s->pool_cv, &s->pool_mu);
  sq_conn *c = s->free_list;
  s->free_list = c->next_free;
  pthread_mutex_unlock(&s->pool_mu);
  return c;
}

static void pool_release(sq_store *s, sq_conn *c) {
  pthread_mutex_lock(&s->pool_mu);
  c->next_free = s->free_list;
  s->free_list = c;
  pthread_cond_signal(&s->pool_cv);
  pthread_mutex_unlock(&s->pool_mu);
}

/* Ends the read transaction a call opened; a failed COMMIT of a read-only
 * transaction is rolled back so the connection goes back to the pool clean. */
static void read_end(sq_conn *c) {
  if (sq_exec_stmt(c->commit) != SQLITE_DONE && !sqlite3_get_autocommit(c->db))
    sq_exec_stmt(c->rollback);
}

/* The hottest path: one statement, no explicit transaction. */
static store_status sq_get(store *base, const char *id, arena *a, product *out) {
  FAULT_POINT("store.get.before");
  sq_store *s = (sq_store *)base;
  sq_conn *c = pool_acquire(s);
  store_status status = sq_load_product(c, id, a, out);
  pool_release(s, c);
  if (status == STORE_OK) FAULT_POINT("store.get.after");
  return status;
}

/* Binds a filter's parameters, placeholder ?first onwards. */
static int bind_filter(sqlite3_stmt *st, const filter_sql *fs, int first) {
  for (size_t k = 0; k < fs->n_params; k++) {
    const filter_param *fp = &fs->params[k];
    int idx = first + (int)k, rc;
    if (fp->kind == FILTER_PARAM_TEXT)
      rc = sqlite3_bind_text(st, idx, fp->text, (int)fp->text_len, SQLITE_STATIC);
    else if (fp->kind == FILTER_PARAM_DOUBLE)
      rc = sqlite3_bind_double(st, idx, fp->d);
    else
      rc = sqlite3_bind_int64(st, idx, fp->i);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* Prepares a statement around a filter fragment: fmt has one %s. */
static int prepare_filtered(sqlite3 *db, const char *fmt, const filter_sql *fs, arena *a,
                            sqlite3_stmt **out) {
  size_t n = strlen(fmt) + strlen(fs->sql) + 1;
  char *sql = arena_alloc(a, n);
  if (!sql) return SQLITE_NOMEM;
  snprintf(sql, n, fmt, fs->sql);
  int rc = sqlite3_prepare_v2(db, sql, -1, out, NULL);
  if (rc == SQLITE_OK) rc = bind_filter(*out, fs, 4);
  return rc;
}

static store_status sq_list(store *base, const struct filter *f, const store_cursor *after,
                            size_t limit, arena *a, store_list_result *out) {
  FAULT_POINT("store.list.before");
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *page = NULL, *count = NULL;
  bool own = f != NULL; /* filtered statements are prepared per call */
  store_status status = STORE_OK;
  filter_sql fs = {0};
  memset(out, 0, sizeof(*out));
  if (limit > INT32_MAX) limit = INT32_MAX;
  if (f && filter_to_sql(f, FILTER_SQL_SQLITE, 4, a, &fs) != 0) return STORE_ERROR;
  sq_conn *c = pool_acquire(s);
  int rc = sq_exec_stmt(c->begin);
  if (rc != SQLITE_DONE) {
    pool_release(s, c);
    return sq_status(rc);
  }
  rc = SQLITE_OK;
  if (own) {
    rc = prepare_filtered(c->db, SQ_PAGE_SQL("%s"), &fs, a, &page);
    if (rc == SQLITE_OK)
      rc = prepare_filtered(c->db, "SELECT COUNT(*) FROM products WHERE %s", &fs, a, &count);
  } else {
    page = c->list;
    count = c->count_all;
  }
  if (rc != SQLITE_OK) {
    status = sq_status(rc);
    goto cleanup;
  }
  /* No cursor: (INT64_MIN, "") sorts before every product (ids are never empty). */
  sqlite3_bind_int64(page, 1, after ? after->created_us : INT64_MIN);
  sqlite3_bind_text(page, 2, after ? after->id : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(page, 3, (sqlite3_int64)limit + 1);
  status = sq_read_page(c, page, limit, a, out);
  if (status != STORE_OK) goto cleanup;
  rc = sqlite3_step(count);
  if (rc == SQLITE_ROW)
    out->total = sqlite3_column_int64(count, 0);
  else
    status = sq_status(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
cleanup:
  if (own) {
    sqlite3_finalize(page);
    sqlite3_finalize(count);
  } else {
    sqlite3_reset(page);
    sqlite3_clear_bindings(page);
    sqlite3_reset(count);
  }
  read_end(c);
  pool_release(s, c);
  if (status != STORE_OK) memset(out, 0, sizeof(*out));
  if (status == STORE_OK) FAULT_POINT("store.list.after");
  return status;
}

static void sq_destroy(store *base) {
  sq_store *s = (sq_store *)base;
  for (size_t i = 0; i < s->n_conns; i++) sq_conn_close(&s->conns[i]);
  free(s->conns);
  /* The writer's connection closes last: closing the last connection
   * checkpoints the WAL into the database file. */
  sq_writer_stop(s);
  pthread_cond_destroy(&s->pool_cv);
  pthread_mutex_destroy(&s->pool_mu);
  free(s);
}

static const store_ops sq_ops = {
    .name = "sqlite",
    .create = sq_create,
    .get = sq_get,
    .update = sq_update,
    .remove = sq_remove,
    .list = sq_list,
    .create_once = sq_create_once,
    .flush = sq_flush,
    .destroy = sq_destroy,
};

int store_sqlite_open(const char *path, const store_options *opt, store **out, char *err,
                      size_t errlen) {
  *out = NULL;
  /* Create the file ourselves so it is private (SQLite would use 0644); the
   * -wal and -shm files copy its permissions. */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (err && errlen) snprintf(err, errlen, "store: sqlite: cannot open '%s': %s", path,
                                strerror(errno));
    return -1;
  }
  close(fd);
  sq_store *s = calloc(1, sizeof(*s));
  if (!s) return sq_fail(NULL, "open", err, errlen);
  s->base.ops = &sq_ops;
  pthread_mutex_init(&s->pool_mu, NULL);
  pthread_cond_init(&s->pool_cv, NULL);
  if (sq_writer_start(s, path, opt->group_commit, err, errlen) != 0) {
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->pool_mu);
    free(s);
    return -1;
  }
  size_t n = opt->pool_size > 0 ? (size_t)opt->pool_size : SQ_DEFAULT_POOL;
  if (n > SQ_MAX_POOL) n = SQ_MAX_POOL;
  s->conns = calloc(n, sizeof(*s->conns));
  if (!s->conns) {
    sq_fail(NULL, "open", err, errlen);
    sq_destroy(&s->base);
    return -1;
  }
  for (; s->n_conns < n; s->n_conns++) {
    if (sq_conn_open(&s->conns[s->n_conns], path, false, err, errlen) != 0) {
      sq_destroy(&s->base);
      return -1;
    }
    pool_release(s, &s->conns[s->n_conns]);
  }
  *out = &s->base;
  return 0;
}

int store_sqlite_get_stats(store *base, store_sqlite_stats *out) {
  if (!base || base->ops != &sq_ops) return -1;
  sq_writer *w = &((sq_store *)base)->w;
  pthread_mutex_lock(&w->mu);
  out->transactions = w->transactions;
  out->writes = w->writes;
  out->largest_batch = w->largest_batch;
  out->queued = w->depth;
  out->synchronous = w->synchronous;
  out->purged = w->purged;
  out->purges = w->purges;
  pthread_mutex_unlock(&w->mu);
  return 0;
}

int store_sqlite_set_paused(store *base, bool paused) {
  if (!base || base->ops != &sq_ops) return -1;
  sq_writer *w = &((sq_store *)base)->w;
  pthread_mutex_lock(&w->mu);
  w->paused = paused;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

int store_sqlite_purge_soon(store *base) {
  if (!base || base->ops != &sq_ops) return -1;
  sq_writer *w = &((sq_store *)base)->w;
  pthread_mutex_lock(&w->mu);
  w->purge_due = true;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->mu);
  return 0;
}
