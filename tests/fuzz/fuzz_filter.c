/* libFuzzer target for src/store/filter.c and filter_sql.c. Any input must
 * either fail with a "filter: ... at offset N" message (N within the input),
 * or parse into a tree that filter_match can evaluate and that compiles for
 * both dialects; the SQLite fragment must prepare and select exactly what
 * filter_match selects from a few products in an in-memory database. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/arena.h"
#include "store/filter.h"

static char *cats_fruit[] = {"fruit", "red"};
static char *cats_odd[] = {"x' OR 1=1 --", ""};
static product products[] = {
    {.id = "p0", .name = "Apple", .description = "Crisp", .price = 1.5, .categories = cats_fruit,
     .n_categories = 2, .created_us = 0, .updated_us = 1},
    {.id = "p1", .name = "x' OR 1=1 --", .description = "\"quoted\" \\ back", .price = 0,
     .categories = cats_odd, .n_categories = 2, .created_us = 1700000000000000, .updated_us = 1700000000000000},
    {.id = "p2", .name = "\xc3\x89t\xc3\xa9 apple", .description = "", .price = 1e300, .created_us = -1,
     .updated_us = 253402300799999999},
    {.id = "p3", .name = "e", .description = "E", .price = 5e-324, .categories = cats_fruit, .n_categories = 1,
     .created_us = 1709210096789000, .updated_us = -62167219200000000},
};
#define N_PRODUCTS (sizeof products / sizeof products[0])

static arena *fuzz_arena;
static sqlite3 *db;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_filter: %s: %s\n", what, detail);
  abort();
}

static void setup(void) {
  fuzz_arena = arena_create(1 << 16);
  if (!fuzz_arena || sqlite3_open(":memory:", &db) != SQLITE_OK) die("setup", "arena or sqlite");
  char *msg = NULL;
  if (sqlite3_exec(db,
                   "CREATE TABLE products(id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,"
                   " price REAL NOT NULL, created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);"
                   "CREATE TABLE product_categories(product_id TEXT, position INTEGER, value TEXT);",
                   NULL, NULL, &msg) != SQLITE_OK)
    die("schema", msg);
  sqlite3_stmt *ins = NULL, *cat = NULL;
  if (sqlite3_prepare_v2(db, "INSERT INTO products VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1, &ins, NULL) ||
      sqlite3_prepare_v2(db, "INSERT INTO product_categories VALUES(?1, ?2, ?3)", -1, &cat, NULL))
    die("prepare insert", sqlite3_errmsg(db));
  for (size_t i = 0; i < N_PRODUCTS; i++) {
    const product *p = &products[i];
    sqlite3_bind_text(ins, 1, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, p->description, -1, SQLITE_STATIC);
    sqlite3_bind_double(ins, 4, p->price);
    sqlite3_bind_int64(ins, 5, p->created_us);
    sqlite3_bind_int64(ins, 6, p->updated_us);
    if (sqlite3_step(ins) != SQLITE_DONE) die("insert", sqlite3_errmsg(db));
    sqlite3_reset(ins);
    for (size_t k = 0; k < p->n_categories; k++) {
      sqlite3_bind_text(cat, 1, p->id, -1, SQLITE_STATIC);
      sqlite3_bind_int(cat, 2, (int)k);
      sqlite3_bind_text(cat, 3, p->categories[k], -1, SQLITE_STATIC);
      if (sqlite3_step(cat) != SQLITE_DONE) die("insert category", sqlite3_errmsg(db));
      sqlite3_reset(cat);
    }
  }
  sqlite3_finalize(ins);
  sqlite3_finalize(cat);
}

static unsigned sqlite_selection(const filter_sql *q) {
  char sql[16384];
  int n = snprintf(sql, sizeof sql, "SELECT id FROM products WHERE %s", q->sql);
  if (n < 0 || (size_t)n >= sizeof sql) die("SQL longer than expected", q->sql);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die(sqlite3_errmsg(db), sql);
  for (size_t k = 0; k < q->n_params; k++) {
    const filter_param *v = &q->params[k];
    int rc = v->kind == FILTER_PARAM_TEXT     ? sqlite3_bind_text(st, (int)k + 1, v->text, (int)v->text_len, SQLITE_STATIC)
             : v->kind == FILTER_PARAM_DOUBLE ? sqlite3_bind_double(st, (int)k + 1, v->d)
                                              : sqlite3_bind_int64(st, (int)k + 1, v->i);
    if (rc != SQLITE_OK) die("bind", sqlite3_errmsg(db));
  }
  unsigned mask = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) mask |= 1u << (sqlite3_column_text(st, 0)[1] - '0');
  if (rc != SQLITE_DONE) die("step", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return mask;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!fuzz_arena) setup();
  filter *f = NULL;
  char err[256];
  if (filter_parse((const char *)data, size, fuzz_arena, &f, err, sizeof err) != 0) {
    const char *at = strstr(err, " at offset ");
    if (strncmp(err, "filter: ", 8) != 0 || !at) die("error message without an offset", err);
    char *end = NULL;
    unsigned long long off = strtoull(at + 11, &end, 10);
    if (*end != '\0' || off > size) die("error offset outside the input", err);
    arena_reset(fuzz_arena);
    return 0;
  }
  unsigned want = 0;
  for (size_t i = 0; i < N_PRODUCTS; i++)
    if (filter_match(f, &products[i])) want |= 1u << i;
  filter_sql pg, lite;
  if (filter_to_sql(f, FILTER_SQL_POSTGRES, 1, fuzz_arena, &pg) != 0) die("postgres compile", "failed");
  if (filter_to_sql(f, FILTER_SQL_SQLITE, 1, fuzz_arena, &lite) != 0) die("sqlite compile", "failed");
  if (pg.n_params != lite.n_params) die("dialects disagree on parameters", lite.sql);
  if (sqlite_selection(&lite) != want) die("SQLite and filter_match disagree", lite.sql);
  arena_reset(fuzz_arena);
  return 0;
}
