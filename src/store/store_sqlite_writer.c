/* The SQLite backend's write path: group commit.
 *
 * Every create, update and remove is queued to one writer thread, which owns
 * the only writing connection. It takes everything queued (up to max_batch),
 * runs it in one BEGIN IMMEDIATE ... COMMIT, so a burst of N concurrent writes
 * costs one fsync instead of N, and only then wakes the callers: a write
 * returns only once the transaction that holds it is durable (see
 * store_sqlite.c on synchronous=FULL). Each request runs inside its own
 * SAVEPOINT, so one failing request (a duplicate id) does not undo the
 * others in its batch. With group commit off, max_batch is 1: one
 * transaction and one fsync per write, the baseline the benchmark measures.
 *
 * A single writer also makes UpdateProduct's read-modify-write atomic for
 * free: no other write can slip between its read and its write, so an
 * update racing a delete either sees the product (and updates it) or ends
 * NOT_FOUND. The same holds for an etag precondition (checked and applied
 * with no write in between) and for a request id (looked up and recorded
 * in the transaction of the insert, so a crash never keeps one without the
 * other).
 *
 * Expired request ids are dropped by this thread when it is idle, at most
 * SQ_PURGE_CHUNK per transaction, and a queued write always goes before the
 * next chunk: the purge never holds writes up for more than one small
 * DELETE. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/call.h"
#include "store/store_sqlite.h"

#include "store/store_sqlite_internal.h"

#define SQ_MAX_BATCH 1024
#define SQ_PURGE_CHUNK 256

static store_status insert_categories(sq_writer *w, const char *id, char *const *cats, size_t n) {
  sqlite3_stmt *st = w->insert_category;
  for (size_t i = 0; i < n; i++) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
    sqlite3_bind_text(st, 3, cats[i] ? cats[i] : "", -1, SQLITE_STATIC);
    int rc = sq_exec_stmt(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) return sq_status(rc);
  }
  return STORE_OK;
}

/* Binds ?2..?4 (name, description, price) of insert and update. */
static void bind_fields(sqlite3_stmt *st, const product *p) {
  sqlite3_bind_text(st, 2, p->name ? p->name : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, p->description ? p->description : "", -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 4, p->price);
}

static store_status apply_create(sq_writer *w, const product *p) {
  sqlite3_stmt *st = w->insert_product;
  sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
  bind_fields(st, p);
  sqlite3_bind_int64(st, 5, p->created_us);
  sqlite3_bind_int64(st, 6, p->updated_us);
  int rc = sq_exec_stmt(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE) return sq_status(rc);
  return insert_categories(w, p->id, p->categories, p->categories ? p->n_categories : 0);
}

static store_status apply_update(sq_writer *w, sq_req *r) {
  product next;
  const product_patch *patch = r->patch;
  store_status status = sq_load_product(&w->conn, r->id, r->a, &next);
  if (status != STORE_OK) return status;
  if (patch->if_match && next.updated_us != patch->match_updated_us) return STORE_CONFLICT;
  product_apply_patch(&next, patch);
  sqlite3_stmt *st = w->update_product;
  sqlite3_bind_text(st, 1, next.id, -1, SQLITE_STATIC);
  bind_fields(st, &next);
  sqlite3_bind_int64(st, 5, next.updated_us);
  int rc = sq_exec_stmt(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE) return sq_status(rc);
  if (patch->fields & PATCH_CATEGORIES) {
    sqlite3_bind_text(w->delete_categories, 1, next.id, -1, SQLITE_STATIC);
    rc = sq_exec_stmt(w->delete_categories);
    sqlite3_clear_bindings(w->delete_categories);
    if (rc != SQLITE_DONE) return sq_status(rc);
    status = insert_categories(w, next.id, next.categories, next.n_categories);
    if (status != STORE_OK) return status;
  }
  return product_copy(r->a, &next, r->out) == 0 ? STORE_OK : STORE_ERROR;
}

static store_status apply_remove(sq_writer *w, const char *id, const int64_t *if_updated_us) {
  sqlite3_bind_text(w->delete_product, 1, id, -1, SQLITE_STATIC);
  if (if_updated_us) sqlite3_bind_int64(w->delete_product, 2, *if_updated_us);
  int rc = sq_exec_stmt(w->delete_product);
  sqlite3_clear_bindings(w->delete_product);
  if (rc != SQLITE_DONE) return sq_status(rc);
  /* Rows the statement itself deleted; trigger rows do not count. */
  if (sqlite3_changes(w->conn.db) == 0) {
    if (!if_updated_us) return STORE_NOT_FOUND;
    sqlite3_bind_text(w->exists_product, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(w->exists_product);
    sqlite3_reset(w->exists_product);
    sqlite3_clear_bindings(w->exists_product);
    return rc == SQLITE_ROW ? STORE_CONFLICT : rc == SQLITE_DONE ? STORE_NOT_FOUND : sq_status(rc);
  }
  sqlite3_bind_text(w->delete_categories, 1, id, -1, SQLITE_STATIC);
  rc = sq_exec_stmt(w->delete_categories);
  sqlite3_clear_bindings(w->delete_categories);
  return rc == SQLITE_DONE ? STORE_OK : sq_status(rc);
}

/* Records the request id (or takes over an expired row) and inserts the
 * product; when the id is already there and live, answers with the first
 * product instead. The common case, a new id, costs one statement more
 * than a plain create. In the caller's savepoint. */
static store_status apply_create_once(sq_writer *w, sq_req *r) {
  const store_request *q = r->req;
  sqlite3_stmt *st = w->upsert_request;
  sqlite3_bind_text(st, 1, q->caller, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, q->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, q->fingerprint, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, r->product->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, q->now_us);
  sqlite3_bind_int64(st, 6, q->now_us - STORE_REQUEST_WINDOW_US);
  int rc = sq_exec_stmt(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE) return sq_status(rc);
  store_status status;
  if (sqlite3_changes(w->conn.db) == 1) { /* recorded: this call creates */
    status = apply_create(w, r->product);
    if (status != STORE_OK) return status;
    return product_copy(r->a, r->product, r->out) == 0 ? STORE_OK : STORE_ERROR;
  }
  /* A live row (the upsert's WHERE kept it): the first call's answer. */
  char first_id[PRODUCT_ID_LEN + 1] = "";
  bool same = false;
  st = w->select_request;
  sqlite3_bind_text(st, 1, q->caller, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, q->id, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *fp = (const char *)sqlite3_column_text(st, 0);
    const char *pid = (const char *)sqlite3_column_text(st, 1);
    same = fp && strcmp(fp, q->fingerprint) == 0;
    status = pid && strlen(pid) <= PRODUCT_ID_LEN ? STORE_OK : STORE_ERROR;
    if (status == STORE_OK) snprintf(first_id, sizeof first_id, "%s", pid);
  } else {
    status = sq_status(rc) == STORE_OK ? STORE_ERROR : sq_status(rc);
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (status != STORE_OK) return status;
  return same ? sq_load_product(&w->conn, first_id, r->a, r->out) : STORE_MISMATCH;
}

static store_status apply(sq_writer *w, sq_req *r) {
  switch (r->op) {
  case SQ_CREATE:
    return apply_create(w, r->product);
  case SQ_UPDATE:
    return apply_update(w, r);
  case SQ_REMOVE:
    return apply_remove(w, r->id, r->if_updated_us);
  case SQ_CREATE_ONCE:
    return apply_create_once(w, r);
  case SQ_FLUSH:
    break;
  }
  return STORE_ERROR;
}

static void fail_all(sq_req *batch, store_status status) {
  for (sq_req *r = batch; r; r = r->next) r->status = status;
}

/* Runs a batch in one transaction; true when it committed. Sets every
 * request's status. */
static bool run_batch(sq_writer *w, sq_req *batch) {
  sqlite3 *db = w->conn.db;
  if (batch->op == SQ_FLUSH) {
    /* Commits are already durable; the checkpoint only folds the WAL into
     * the database file. Busy (a reader on an old snapshot) is no failure. */
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    batch->status = rc == SQLITE_OK || rc == SQLITE_BUSY ? STORE_OK : sq_status(rc);
    return false;
  }
  int rc = sq_exec_stmt(w->begin_immediate);
  if (rc != SQLITE_DONE) {
    fail_all(batch, sq_status(rc));
    return false;
  }
  for (sq_req *r = batch; r; r = r->next) {
    rc = sq_exec_stmt(w->savepoint);
    r->status = rc == SQLITE_DONE ? apply(w, r) : sq_status(rc);
    if (r->status == STORE_OK || r->status == STORE_NOT_FOUND) {
      sq_exec_stmt(w->release);
    } else if (rc == SQLITE_DONE) {
      sq_exec_stmt(w->rollback_to);
      sq_exec_stmt(w->release);
    }
    /* Some errors (disk full, I/O) roll the whole transaction back; then
     * the rest must not run in autocommit mode behind our back. */
    if (sqlite3_get_autocommit(db)) {
      fail_all(batch, r->status == STORE_OK ? STORE_ERROR : r->status);
      return false;
    }
  }
  rc = sq_exec_stmt(w->conn.commit);
  if (rc != SQLITE_DONE) {
    if (!sqlite3_get_autocommit(db)) sq_exec_stmt(w->conn.rollback);
    fail_all(batch, sq_status(rc) == STORE_OK ? STORE_ERROR : sq_status(rc));
    return false;
  }
  return true;
}

static int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void purge_after(sq_writer *w, int64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, &w->next_purge);
  int64_t ns = w->next_purge.tv_nsec + (ms % 1000) * 1000000;
  w->next_purge.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
  w->next_purge.tv_nsec = (long)(ns % 1000000000);
}

/* One chunk of expired request ids in its own transaction; the number
 * deleted (a full chunk: more may be left), or -1. */
static int purge_chunk(sq_writer *w) {
  int n = -1;
  if (sq_exec_stmt(w->begin_immediate) != SQLITE_DONE) return -1;
  sqlite3_bind_int64(w->purge_requests, 1, wall_us() - STORE_REQUEST_WINDOW_US);
  sqlite3_bind_int(w->purge_requests, 2, SQ_PURGE_CHUNK);
  int rc = sq_exec_stmt(w->purge_requests);
  sqlite3_clear_bindings(w->purge_requests);
  if (rc == SQLITE_DONE) n = sqlite3_changes(w->conn.db);
  if (rc != SQLITE_DONE || sq_exec_stmt(w->conn.commit) != SQLITE_DONE) {
    if (!sqlite3_get_autocommit(w->conn.db)) sq_exec_stmt(w->conn.rollback);
    n = -1;
  }
  return n;
}

static void *writer_main(void *arg) {
  sq_writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stopping && (!w->head || w->paused) && !(w->purge_due && !w->paused)) {
      if (w->purge_due) /* paused: wait untimed until resumed */
        pthread_cond_wait(&w->work, &w->mu);
      else if (pthread_cond_timedwait(&w->work, &w->mu, &w->next_purge) == ETIMEDOUT)
        w->purge_due = true;
    }
    if (!w->stopping && (!w->head || w->paused)) { /* idle, and a purge is due */
      pthread_mutex_unlock(&w->mu);
      int n = purge_chunk(w);
      pthread_mutex_lock(&w->mu);
      w->purges++;
      if (n > 0) w->purged += (uint64_t)n;
      w->purge_due = n == SQ_PURGE_CHUNK; /* more left: the next idle moment */
      purge_after(w, STORE_SQLITE_PURGE_MS);
      continue;
    }
    if (!w->head) break; /* stopping, and the queue is drained */
    /* A flush runs alone; otherwise take the run of writes at the head. */
    sq_req *batch = w->head, *last = batch;
    size_t n = 1;
    if (batch->op != SQ_FLUSH)
      while (last->next && last->next->op != SQ_FLUSH && n < w->max_batch) {
        last = last->next;
        n++;
      }
    w->head = last->next;
    if (!w->head) w->tail = NULL;
    last->next = NULL;
    w->depth -= n;
    pthread_mutex_unlock(&w->mu);

    bool committed = run_batch(w, batch);

    pthread_mutex_lock(&w->mu);
    if (committed) {
      w->transactions++;
      w->writes += n;
      if (n > w->largest_batch) w->largest_batch = n;
    }
    /* After `done` the caller may return and its request vanish. */
    for (sq_req *r = batch, *next; r; r = next) {
      next = r->next;
      r->done = true;
    }
    pthread_cond_broadcast(&w->done);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static store_status submit(store *base, sq_req *r) {
  sq_writer *w = &((sq_store *)base)->w;
  r->done = false;
  r->next = NULL;
  r->status = STORE_ERROR;
  /* Queued behind other writes, then committed with them: the span shows
   * the wait for the group commit (core/call.h; no-op when not traced). */
  trace_child *span = call_span_begin("sqlite.group_commit_wait");
  pthread_mutex_lock(&w->mu);
  if (w->stopping) {
    pthread_mutex_unlock(&w->mu);
    call_span_end(span, true);
    return STORE_UNAVAILABLE;
  }
  if (w->tail)
    w->tail->next = r;
  else
    w->head = r;
  w->tail = r;
  w->depth++;
  pthread_cond_signal(&w->work);
  while (!r->done) pthread_cond_wait(&w->done, &w->mu);
  pthread_mutex_unlock(&w->mu);
  call_span_end(span, r->status != STORE_OK && r->status != STORE_NOT_FOUND);
  return r->status;
}

/* The fault points run on the caller's thread, outside the writer's lock:
 * "after" is once the writer committed the request's batch. */
store_status sq_create(store *base, const product *p) {
  FAULT_POINT("store.create.before");
  sq_req r = {.op = SQ_CREATE, .product = p};
  store_status st = submit(base, &r);
  if (st == STORE_OK) FAULT_POINT("store.create.after");
  return st;
}

store_status sq_update(store *base, const char *id, const product_patch *patch, arena *a,
                       product *out) {
  FAULT_POINT("store.update.before");
  sq_req r = {.op = SQ_UPDATE, .id = id, .patch = patch, .a = a, .out = out};
  store_status st = submit(base, &r);
  if (st == STORE_OK) FAULT_POINT("store.update.after");
  return st;
}

store_status sq_remove(store *base, const char *id, const int64_t *if_updated_us) {
  FAULT_POINT("store.remove.before");
  sq_req r = {.op = SQ_REMOVE, .id = id, .if_updated_us = if_updated_us};
  store_status st = submit(base, &r);
  if (st == STORE_OK) FAULT_POINT("store.remove.after");
  return st;
}

store_status sq_create_once(store *base, const product *p, const store_request *req, arena *a,
                            product *out) {
  FAULT_POINT("store.create.before");
  sq_req r = {.op = SQ_CREATE_ONCE, .product = p, .req = req, .a = a, .out = out};
  store_status st = submit(base, &r);
  if (st == STORE_OK) FAULT_POINT("store.create.after");
  return st;
}

store_status sq_flush(store *base) {
  sq_req r = {.op = SQ_FLUSH};
  return submit(base, &r);
}

static void writer_close(sq_writer *w) {
  sqlite3_stmt *all[] = {w->begin_immediate, w->savepoint,      w->release,
                         w->rollback_to,     w->insert_product, w->insert_category,
                         w->update_product,  w->delete_product, w->delete_categories,
                         w->exists_product,  w->select_request, w->upsert_request,
                         w->purge_requests};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) sqlite3_finalize(all[i]);
  sq_conn_close(&w->conn);
}

int sq_writer_start(sq_store *s, const char *path, bool group_commit, char *err, size_t errlen) {
  sq_writer *w = &s->w;
  memset(w, 0, sizeof(*w));
  w->max_batch = group_commit ? SQ_MAX_BATCH : 1;
  if (sq_conn_open(&w->conn, path, true, err, errlen) != 0) return -1;
  sqlite3 *db = w->conn.db;
  if (sq_prepare(db, "BEGIN IMMEDIATE", &w->begin_immediate) ||
      sq_prepare(db, "SAVEPOINT w", &w->savepoint) || sq_prepare(db, "RELEASE w", &w->release) ||
      sq_prepare(db, "ROLLBACK TO w", &w->rollback_to) ||
      sq_prepare(db,
                 "INSERT INTO products (id, name, description, price, created_us, updated_us)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 &w->insert_product) ||
      sq_prepare(db,
                 "INSERT INTO product_categories (product_id, position, value)"
                 " VALUES (?1, ?2, ?3)",
                 &w->insert_category) ||
      sq_prepare(db,
                 "UPDATE products SET name = ?2, description = ?3, price = ?4, updated_us = ?5"
                 " WHERE id = ?1",
                 &w->update_product) ||
      sq_prepare(db, "DELETE FROM products WHERE id = ?1 AND (?2 IS NULL OR updated_us = ?2)",
                 &w->delete_product) ||
      sq_prepare(db, "DELETE FROM product_categories WHERE product_id = ?1",
                 &w->delete_categories) ||
      sq_prepare(db, "SELECT 1 FROM products WHERE id = ?1", &w->exists_product) ||
      sq_prepare(db,
                 "SELECT fingerprint, product_id FROM product_requests"
                 " WHERE caller = ?1 AND request_id = ?2",
                 &w->select_request) ||
      sq_prepare(db,
                 "INSERT INTO product_requests"
                 " (caller, request_id, fingerprint, product_id, created_us)"
                 " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (caller, request_id) DO UPDATE"
                 " SET fingerprint = excluded.fingerprint, product_id = excluded.product_id,"
                 " created_us = excluded.created_us WHERE product_requests.created_us <= ?6",
                 &w->upsert_request) ||
      sq_prepare(db,
                 "DELETE FROM product_requests WHERE (caller, request_id) IN (SELECT caller,"
                 " request_id FROM product_requests WHERE created_us <= ?1"
                 " ORDER BY created_us LIMIT ?2)",
                 &w->purge_requests)) {
    if (err && errlen) snprintf(err, errlen, "store: sqlite: prepare: %s", sqlite3_errmsg(db));
    writer_close(w);
    return -1;
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    w->synchronous = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->work, &ca); /* timed: the purge */
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&w->done, NULL);
  w->purge_due = true; /* once soon after start, then every STORE_SQLITE_PURGE_MS */
  if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
    if (err && errlen) snprintf(err, errlen, "store: sqlite: cannot start the writer thread");
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    writer_close(w);
    return -1;
  }
  w->started = true;
  return 0;
}

void sq_writer_stop(sq_store *s) {
  sq_writer *w = &s->w;
  if (!w->started) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->done);
  pthread_cond_destroy(&w->work);
  pthread_mutex_destroy(&w->mu);
  writer_close(w);
  w->started = false;
}
