/* The PostgreSQL backend's operations (connections and schema are in
 * store_postgres.c). Compiled only with libpq: the build drops
 * store_postgres.c without it, and this file then compiles to nothing.
 *
 * Every statement is prepared once per connection; values travel as
 * parameters (text format), never inside SQL text. Doubles go out as %.17g
 * and come back with extra_float_digits = 3, so both directions are exact;
 * times are BIGINT microseconds, as in the SQLite backend.
 *
 * Atomicity across replicas comes from PostgreSQL's row locks, not from us:
 *  - create is one statement (the product and its categories);
 *  - update is UPDATE ... WHERE id = $1 RETURNING in a transaction. The
 *    UPDATE takes the row lock; under READ COMMITTED a concurrent update is
 *    waited for and our SET expressions are re-evaluated against its result
 *    (so two updates of different fields both survive), and a concurrent
 *    delete makes ours match no row (NOT_FOUND: never a resurrection). The
 *    categories are replaced, or read back, while the lock is held;
 *  - remove is one DELETE; the foreign key cascades to the categories;
 *  - an etag precondition is part of the UPDATE's or DELETE's WHERE
 *    (updated_us = $n): re-evaluated on the row version a concurrent
 *    update left, so of two updates sent with one etag exactly one matches;
 *  - create with a request id is one statement: the id's row goes in first
 *    (ON CONFLICT on its primary key; an expired row is taken over) and the
 *    product only if it did. A racing second insert of the same id waits
 *    for the first's commit, then conflicts and creates nothing; it then
 *    reads the first product in a statement of its own (a new snapshot);
 *  - a list page and its total are one statement, so one snapshot. */
#ifdef PRODUCT_HAVE_POSTGRES
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "store/filter.h"
#include "store/store_backends.h"
#include "store/store_postgres_internal.h"

/* A product's six columns, as every reading statement returns them. */
#define PG_COLS "id, name, description, price, created_us, updated_us"

/* Product ID's categories in one text value: "LEN:VALUE" per category in
 * order, LEN the value's UTF-8 byte count (our client encoding), NULL when
 * there are none. A length prefix needs no escaping, and a correlated
 * subquery on product_categories' primary key is one index range per
 * product, whatever plan the statement around it gets. */
#define PG_CATEGORIES(ID)                                                                \
  "(SELECT string_agg(octet_length(convert_to(c.value, 'UTF8'))::text || ':' || c.value,"  \
  " '' ORDER BY c.position) FROM product_categories c WHERE c.product_id = " ID ")"

/* A keyset page after ($1, $2) of at most $3 products matching WHERE, each
 * with its categories, and in the first column of every row TOTAL, the
 * number of products matching WHERE. One statement, so the page and the
 * total share a snapshot. An empty page is one row of NULL product columns. */
#define PG_LIST_SQL(TOTAL, WHERE)                                                        \
  "WITH total AS (" TOTAL "),"                                                           \
  " page AS (SELECT " PG_COLS " FROM products"                                          \
  "   WHERE " WHERE " AND (created_us, id) > ($1::bigint, $2::text)"                     \
  "   ORDER BY created_us, id LIMIT $3::bigint)"                                        \
  " SELECT total.n, page.id, page.name, page.description, page.price,"                 \
  "   page.created_us, page.updated_us, " PG_CATEGORIES("page.id")                       \
  " FROM total LEFT JOIN page ON TRUE ORDER BY page.created_us, page.id"

/* Unfiltered: the maintained count (schema version 2); filtered: counted. */
#define PG_TOTAL_ALL "SELECT COALESCE(SUM(n), 0)::bigint AS n FROM product_count"
#define PG_TOTAL_WHERE(WHERE) "SELECT COUNT(*) AS n FROM products WHERE " WHERE

/* Inserts ARRAY's elements (a text[]) as product ID's categories, positions
 * numbered from 0 in array order. */
#define PG_INSERT_CATEGORIES(ID, ARRAY)                                                  \
  "INSERT INTO product_categories (product_id, position, value)"                        \
  " SELECT " ID ", t.ord - 1, t.v FROM unnest(" ARRAY ") WITH ORDINALITY AS t(v, ord)"

static const struct {
  const char *name, *sql;
} pg_statements[] = {
    {"pg_get", "SELECT " PG_COLS ", " PG_CATEGORIES("p.id") " FROM products p WHERE p.id = $1::text"},
    {"pg_create",
     "WITH p AS (INSERT INTO products (" PG_COLS ")"
     "  VALUES ($1::text, $2::text, $3::text, $4::double precision, $5::bigint, $6::bigint)"
     "  RETURNING id) " PG_INSERT_CATEGORIES("p.id", "$7::text[]") " , p"},
    /* updated_us strictly increases: a clock that stepped back (or another
     * replica's clock ahead of ours) must not make an update look older. */
    {"pg_update",
     "UPDATE products SET"
     " name = CASE WHEN $2::boolean THEN $3::text ELSE name END,"
     " description = CASE WHEN $4::boolean THEN $5::text ELSE description END,"
     " price = CASE WHEN $6::boolean THEN $7::double precision ELSE price END,"
     " updated_us = GREATEST($8::bigint, CASE WHEN updated_us < 9223372036854775807"
     "   THEN updated_us + 1 ELSE updated_us END)"
     " WHERE id = $1::text AND ($9::bigint IS NULL OR updated_us = $9::bigint)"
     " RETURNING " PG_COLS},
    {"pg_exists", "SELECT 1 FROM products WHERE id = $1::text"},
    {"pg_create_once",
     "WITH r AS (INSERT INTO product_requests"
     "  (caller, request_id, fingerprint, product_id, created_us)"
     "  VALUES ($8::text, $9::text, $10::text, $1::text, $11::bigint)"
     "  ON CONFLICT (caller, request_id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
     "   product_id = EXCLUDED.product_id, created_us = EXCLUDED.created_us"
     "  WHERE product_requests.created_us <= $12::bigint RETURNING product_id),"
     " p AS (INSERT INTO products (" PG_COLS ")"
     "  SELECT $1::text, $2::text, $3::text, $4::double precision, $5::bigint, $6::bigint"
     "  FROM r RETURNING id),"
     " c AS (INSERT INTO product_categories (product_id, position, value)"
     "  SELECT p.id, t.ord - 1, t.v FROM p, unnest($7::text[]) WITH ORDINALITY AS t(v, ord))"
     " SELECT COUNT(*) FROM p"},
    {"pg_request_get",
     "SELECT r.fingerprint, p.id, p.name, p.description, p.price, p.created_us, p.updated_us, "
     PG_CATEGORIES("p.id") " FROM product_requests r LEFT JOIN products p ON p.id = r.product_id"
     " WHERE r.caller = $1::text AND r.request_id = $2::text AND r.created_us > $3::bigint"},

    {"pg_categories", "SELECT " PG_CATEGORIES("$1::text")},
    {"pg_categories_delete", "DELETE FROM product_categories WHERE product_id = $1::text"},
    {"pg_categories_insert", PG_INSERT_CATEGORIES("$1::text", "$2::text[]")},
    {"pg_remove",
     "DELETE FROM products WHERE id = $1::text"
     " AND ($2::bigint IS NULL OR updated_us = $2::bigint)"},
    {"pg_list", PG_LIST_SQL(PG_TOTAL_ALL, "TRUE")},
};

int pg_prepare_statements(PGconn *db) {
  for (size_t i = 0; i < sizeof(pg_statements) / sizeof(pg_statements[0]); i++) {
    PGresult *r = PQsendPrepare(db, pg_statements[i].name, pg_statements[i].sql, 0, NULL)
                      ? pg_wait(db, PG_CALL_TIMEOUT_MS)
                      : NULL;
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------- values --- */

static bool parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return false;
  *out = v;
  return true;
}

static bool parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  *out = strtod(s, &end);
  return end != s && !*end;
}

/* A text[] literal: every element double-quoted, '"' and '\' escaped, so
 * no element can be read as NULL or split on a comma. malloc'ed. */
static char *array_literal(char *const *items, size_t n) {
  size_t len = 3;
  for (size_t i = 0; i < n; i++) len += 3 + 2 * strlen(items[i] ? items[i] : "");
  char *out = malloc(len), *o = out;
  if (!out) return NULL;
  *o++ = '{';
  for (size_t i = 0; i < n; i++) {
    if (i) *o++ = ',';
    *o++ = '"';
    for (const char *p = items[i] ? items[i] : ""; *p; p++) {
      if (*p == '"' || *p == '\\') *o++ = '\\';
      *o++ = *p;
    }
    *o++ = '"';
  }
  *o++ = '}';
  *o = '\0';
  return out;
}

static char *col_text(const PGresult *r, int row, int col, arena *a) {
  return arena_strndup(a, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* Fills out from six columns (PG_COLS order) starting at col. */
static store_status row_product(const PGresult *r, int row, int col, arena *a, product *out) {
  memset(out, 0, sizeof(*out));
  int id_len = PQgetlength(r, row, col);
  if (PQgetisnull(r, row, col) || id_len > PRODUCT_ID_LEN) return STORE_ERROR;
  memcpy(out->id, PQgetvalue(r, row, col), (size_t)id_len);
  out->id[id_len] = '\0';
  out->name = col_text(r, row, col + 1, a);
  out->description = col_text(r, row, col + 2, a);
  if (!out->name || !out->description || !parse_double(PQgetvalue(r, row, col + 3), &out->price) ||
      !parse_i64(PQgetvalue(r, row, col + 4), &out->created_us) ||
      !parse_i64(PQgetvalue(r, row, col + 5), &out->updated_us))
    return STORE_ERROR;
  return STORE_OK;
}

/* Fills p's categories from a PG_CATEGORIES column ("LEN:VALUE"...; NULL
 * for none). Anything malformed is an error, never a guess. */
static store_status row_categories(const PGresult *r, int row, int col, arena *a, product *p) {
  p->categories = NULL;
  p->n_categories = 0;
  if (PQgetisnull(r, row, col)) return STORE_OK;
  const char *s = PQgetvalue(r, row, col), *end = s + PQgetlength(r, row, col);
  size_t n = 0;
  for (const char *q = s; q < end; q++) n += *q == ':'; /* an upper bound */
  if (!(p->categories = arena_alloc(a, (n ? n : 1) * sizeof(char *)))) return STORE_ERROR;
  while (s < end) {
    size_t len = 0, digits = 0;
    for (; s < end && *s >= '0' && *s <= '9' && digits < 9; s++, digits++)
      len = len * 10 + (size_t)(*s - '0');
    if (!digits || s == end || *s != ':' || (size_t)(end - s - 1) < len) return STORE_ERROR;
    char *v = arena_strndup(a, s + 1, len);
    if (!v) return STORE_ERROR;
    p->categories[p->n_categories++] = v;
    s += 1 + len;
  }
  return STORE_OK;
}

/* Runs a prepared statement; its result when it ended with `want`, else
 * NULL with *st set. */
static PGresult *run(PGconn *db, const char *name, int n, const char *const *params,
                     ExecStatusType want, store_status *st) {
  PGresult *r = pg_exec_prepared(db, name, n, params);
  if (PQresultStatus(r) == want) return r;
  *st = pg_classify(db, r);
  PQclear(r);
  return NULL;
}

static bool run_simple(PGconn *db, const char *sql, store_status *st) {
  PGresult *r = pg_exec(db, PG_CALL_TIMEOUT_MS, sql, 0, NULL);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) *st = pg_classify(db, r);
  PQclear(r);
  return ok;
}

/* ------------------------------------------------------------ the ops --- */

/* Each op's fault points sit outside the connection's checkout: "before"
 * first, "after" once the connection went back (the write committed). */
store_status pg_create(store *base, const product *p) {
  FAULT_POINT("store.create.before");
  pg_store *s = (pg_store *)base;
  char price[32], created[24], updated[24];
  char *cats = array_literal(p->categories, p->categories ? p->n_categories : 0);
  if (!cats) return STORE_ERROR;
  snprintf(price, sizeof price, "%.17g", p->price);
  snprintf(created, sizeof created, "%" PRId64, p->created_us);
  snprintf(updated, sizeof updated, "%" PRId64, p->updated_us);
  const char *params[7] = {p->id,   store_str_or_empty(p->name), store_str_or_empty(p->description),
                           price,   created, updated, cats};
  store_status st;
  pg_conn *c = pg_acquire(s, &st);
  if (c) {
    PGresult *r = run(c->db, "pg_create", 7, params, PGRES_COMMAND_OK, &st);
    PQclear(r);
    pg_release(s, c);
  }
  free(cats);
  if (st == STORE_OK) FAULT_POINT("store.create.after");
  return st;
}

store_status pg_get(store *base, const char *id, arena *a, product *out) {
  FAULT_POINT("store.get.before");
  pg_store *s = (pg_store *)base;
  store_status st;
  pg_conn *c = pg_acquire(s, &st);
  if (!c) return st;
  const char *params[1] = {id};
  PGresult *r = run(c->db, "pg_get", 1, params, PGRES_TUPLES_OK, &st);
  if (r) {
    st = PQntuples(r) == 1 ? row_product(r, 0, 0, a, out) : STORE_NOT_FOUND;
    if (st == STORE_OK) st = row_categories(r, 0, 6, a, out);
    PQclear(r);
  }
  pg_release(s, c);
  if (st == STORE_OK) FAULT_POINT("store.get.after");
  return st;
}

/* Inside the update's transaction, with the row locked: replaces the
 * categories with the patch's or reads the current ones into out. */
static store_status update_categories(PGconn *db, const char *id, const product_patch *patch,
                                      arena *a, product *out) {
  store_status st = STORE_OK;
  const char *params[2] = {id, NULL};
  PGresult *r;
  if (!(patch->fields & PATCH_CATEGORIES)) {
    if (!(r = run(db, "pg_categories", 1, params, PGRES_TUPLES_OK, &st))) return st;
    st = PQntuples(r) == 1 ? row_categories(r, 0, 0, a, out) : STORE_ERROR;
    PQclear(r);
    return st;
  }
  size_t n = patch->categories ? patch->n_categories : 0;
  if (!(r = run(db, "pg_categories_delete", 1, params, PGRES_COMMAND_OK, &st))) return st;
  PQclear(r);
  char *cats = array_literal(patch->categories, n);
  if (!cats) return STORE_ERROR;
  params[1] = cats;
  r = run(db, "pg_categories_insert", 2, params, PGRES_COMMAND_OK, &st);
  free(cats);
  if (!r) return st;
  PQclear(r);
  product patched = *out;
  patched.categories = (char **)patch->categories;
  patched.n_categories = n;
  return product_copy(a, &patched, out) == 0 ? STORE_OK : STORE_ERROR;
}

/* After a conditional write matched no row: the product is there (its etag
 * moved on: STORE_CONFLICT) or not (STORE_NOT_FOUND). */
static store_status exists_or_conflict(PGconn *db, const char *id) {
  const char *params[1] = {id};
  store_status st = STORE_ERROR;
  PGresult *r = run(db, "pg_exists", 1, params, PGRES_TUPLES_OK, &st);
  if (!r) return st;
  st = PQntuples(r) > 0 ? STORE_CONFLICT : STORE_NOT_FOUND;
  PQclear(r);
  return st;
}

store_status pg_update(store *base, const char *id, const product_patch *patch, arena *a,
                       product *out) {
  FAULT_POINT("store.update.before");
  pg_store *s = (pg_store *)base;
  char price[32], updated[24];
  snprintf(price, sizeof price, "%.17g", patch->price);
  char match[24];
  snprintf(updated, sizeof updated, "%" PRId64, patch->updated_us);
  snprintf(match, sizeof match, "%" PRId64, patch->match_updated_us);
  const char *params[9] = {
      id,
      patch->fields & PATCH_NAME ? "t" : "f",
      store_str_or_empty(patch->name),
      patch->fields & PATCH_DESCRIPTION ? "t" : "f",
      store_str_or_empty(patch->description),
      patch->fields & PATCH_PRICE ? "t" : "f",
      price,
      updated,
      patch->if_match ? match : NULL,
  };
  store_status st;
  pg_conn *c = pg_acquire(s, &st);
  if (!c) return st;
  PGresult *r = NULL;
  if (!run_simple(c->db, "BEGIN", &st)) goto done;
  if (!(r = run(c->db, "pg_update", 9, params, PGRES_TUPLES_OK, &st))) goto done;
  st = PQntuples(r) == 1 ? row_product(r, 0, 0, a, out) : STORE_NOT_FOUND;
  PQclear(r);
  if (st == STORE_NOT_FOUND && patch->if_match) st = exists_or_conflict(c->db, id);
  if (st == STORE_OK) st = update_categories(c->db, id, patch, a, out);
  /* Anything but OK leaves the transaction open: pg_release rolls it back. */
  if (st == STORE_OK) run_simple(c->db, "COMMIT", &st);
done:
  pg_release(s, c);
  if (st == STORE_OK) FAULT_POINT("store.update.after");
  return st;
}

store_status pg_remove(store *base, const char *id, const int64_t *if_updated_us) {
  FAULT_POINT("store.remove.before");
  pg_store *s = (pg_store *)base;
  store_status st;
  char match[24];
  if (if_updated_us) snprintf(match, sizeof match, "%" PRId64, *if_updated_us);
  pg_conn *c = pg_acquire(s, &st);
  if (!c) return st;
  const char *params[2] = {id, if_updated_us ? match : NULL};
  PGresult *r = run(c->db, "pg_remove", 2, params, PGRES_COMMAND_OK, &st);
  if (r) {
    st = strcmp(PQcmdTuples(r), "0") == 0 ? STORE_NOT_FOUND : STORE_OK;
    PQclear(r);
    if (st == STORE_NOT_FOUND && if_updated_us) st = exists_or_conflict(c->db, id);
  }
  pg_release(s, c);
  if (st == STORE_OK) FAULT_POINT("store.remove.after");
  return st;
}

/* The first call's answer for a request id that is already recorded. */
static store_status read_request(PGconn *db, const store_request *req, const char *cutoff,
                                 arena *a, product *out) {
  const char *params[3] = {req->caller, req->id, cutoff};
  store_status st;
  PGresult *r = run(db, "pg_request_get", 3, params, PGRES_TUPLES_OK, &st);
  if (!r) return st;
  if (PQntuples(r) != 1)
    st = STORE_UNAVAILABLE; /* it expired between the two statements: retry */
  else if (strcmp(PQgetvalue(r, 0, 0), req->fingerprint) != 0)
    st = STORE_MISMATCH;
  else if (PQgetisnull(r, 0, 1))
    st = STORE_NOT_FOUND;
  else if ((st = row_product(r, 0, 1, a, out)) == STORE_OK)
    st = row_categories(r, 0, 7, a, out);
  PQclear(r);
  return st;
}

store_status pg_create_once(store *base, const product *p, const store_request *req, arena *a,
                            product *out) {
  FAULT_POINT("store.create.before");
  pg_store *s = (pg_store *)base;
  char price[32], created[24], updated[24], now[24], cutoff[24];
  char *cats = array_literal(p->categories, p->categories ? p->n_categories : 0);
  if (!cats) return STORE_ERROR;
  snprintf(price, sizeof price, "%.17g", p->price);
  snprintf(created, sizeof created, "%" PRId64, p->created_us);
  snprintf(updated, sizeof updated, "%" PRId64, p->updated_us);
  snprintf(now, sizeof now, "%" PRId64, req->now_us);
  snprintf(cutoff, sizeof cutoff, "%" PRId64, req->now_us - STORE_REQUEST_WINDOW_US);
  const char *params[12] = {p->id,   store_str_or_empty(p->name), store_str_or_empty(p->description),
                            price,   created, updated, cats, req->caller, req->id,
                            req->fingerprint, now, cutoff};
  store_status st;
  pg_conn *c = pg_acquire(s, &st);
  if (c) {
    PGresult *r = run(c->db, "pg_create_once", 12, params, PGRES_TUPLES_OK, &st);
    if (r) {
      bool created_now = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
      PQclear(r);
      st = created_now ? (product_copy(a, p, out) == 0 ? STORE_OK : STORE_ERROR)
                       : read_request(c->db, req, cutoff, a, out);
    }
    pg_release(s, c);
  }
  free(cats);
  if (st == STORE_OK) FAULT_POINT("store.create.after");
  return st;
}

bool pg_purge_requests(PGconn *db) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char cutoff[24];
  snprintf(cutoff, sizeof cutoff, "%" PRId64,
           (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - STORE_REQUEST_WINDOW_US);
  const char *params[1] = {cutoff};
  /* Best effort: what is left goes next time. */
  PGresult *r = pg_exec(db, PG_CALL_TIMEOUT_MS,
                        "DELETE FROM product_requests WHERE ctid IN (SELECT ctid FROM"
                        " product_requests WHERE created_us <= $1::bigint LIMIT 1000)",
                        1, params);
  bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  return ok;
}

/* Text for a filter's parameters, placeholder $4 onwards. */
static int filter_params(const filter_sql *fs, arena *a, const char **params) {
  for (size_t k = 0; k < fs->n_params; k++) {
    const filter_param *fp = &fs->params[k];
    if (fp->kind == FILTER_PARAM_TEXT) {
      params[k] = fp->text;
      continue;
    }
    char *buf = arena_alloc(a, 32);
    if (!buf) return -1;
    if (fp->kind == FILTER_PARAM_DOUBLE)
      snprintf(buf, 32, "%.17g", fp->d);
    else
      snprintf(buf, 32, "%" PRId64, fp->i);
    params[k] = buf;
  }
  return 0;
}

/* Reads PG_LIST_SQL rows: one product each, and one more when more follow. */
static store_status read_page(const PGresult *r, size_t limit, arena *a, store_list_result *out) {
  int rows = PQntuples(r);
  if (rows == 0 || !parse_i64(PQgetvalue(r, 0, 0), &out->total)) return STORE_ERROR;
  if (PQgetisnull(r, 0, 1)) return STORE_OK; /* an empty page */
  size_t n = (size_t)rows;
  if (n > limit) {
    out->more = true;
    n = limit;
  }
  if (n && !(out->items = arena_alloc(a, n * sizeof(product)))) return STORE_ERROR;
  for (size_t i = 0; i < n; i++) {
    if (row_product(r, (int)i, 1, a, &out->items[i]) != STORE_OK ||
        row_categories(r, (int)i, 7, a, &out->items[i]) != STORE_OK)
      return STORE_ERROR;
    out->n++;
  }
  return STORE_OK;
}

store_status pg_list(store *base, const struct filter *f, const store_cursor *after,
                     size_t limit, arena *a, store_list_result *out) {
  FAULT_POINT("store.list.before");
  pg_store *s = (pg_store *)base;
  filter_sql fs = {0};
  char *sql = NULL;
  memset(out, 0, sizeof(*out));
  if (limit > INT32_MAX) limit = INT32_MAX;
  if (f) {
    if (filter_to_sql(f, FILTER_SQL_POSTGRES, 4, a, &fs) != 0) return STORE_ERROR;
    size_t n = sizeof(PG_LIST_SQL(PG_TOTAL_WHERE("%s"), "%s")) + 2 * strlen(fs.sql);
    if (!(sql = arena_alloc(a, n))) return STORE_ERROR;
    snprintf(sql, n, PG_LIST_SQL(PG_TOTAL_WHERE("%s"), "%s"), fs.sql, fs.sql);
  }
  const char **params = arena_calloc(a, 3 + fs.n_params, sizeof(char *));
  char *nums = arena_alloc(a, 48);
  if (!params || !nums || filter_params(&fs, a, params + 3) != 0) return STORE_ERROR;
  /* No cursor: (INT64_MIN, "") sorts before every product (ids are never empty). */
  snprintf(nums, 24, "%" PRId64, after ? after->created_us : INT64_MIN);
  snprintf(nums + 24, 24, "%zu", limit + 1);
  params[0] = nums;
  params[1] = after ? after->id : "";
  params[2] = nums + 24;

  store_status st;
  pg_conn *c = pg_acquire(s, &st);
  if (!c) return st;
  PGresult *r = f ? pg_exec(c->db, PG_CALL_TIMEOUT_MS, sql, 3 + (int)fs.n_params, params)
                  : pg_exec_prepared(c->db, "pg_list", 3, params);
  if (PQresultStatus(r) == PGRES_TUPLES_OK)
    st = read_page(r, limit, a, out);
  else
    st = pg_classify(c->db, r);
  PQclear(r);
  pg_release(s, c);
  if (st != STORE_OK) memset(out, 0, sizeof(*out));
  if (st == STORE_OK) FAULT_POINT("store.list.after");
  return st;
}

#else
/* Without libpq there is no PostgreSQL backend (store.c says so). */
typedef int store_postgres_ops_unused;
#endif
