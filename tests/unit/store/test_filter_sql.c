/* Tests src/store/filter_sql.c: the compiled WHERE fragment, run against a
 * real in-memory SQLite database with the schema filter.h documents, selects
 * exactly the products filter_match() selects (fixed and random filters);
 * user text only ever travels as bound parameters. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/arena.h"
#include "store/filter.h"

typedef struct fixture {
  const char *name;
  const char *description;
  double price;
  const char *categories[3];
  int64_t created_us;
  int64_t updated_us;
} fixture;

/* Names, cases and prices chosen so that filters can tell them apart. */
static const fixture fixtures[] = {
    {"Apple", "Crisp and red", 1.5, {"fruit", "red"}, 0, 0},
    {"apple pie", "Baked; 20% off", 9.99, {"bakery"}, 1700000000000000, 1700000000000001},
    {"APPLE JUICE", "", 1, {"drink", "fruit"}, 1700000000000001, 1700000000500000},
    {"Pear", "green_ish", 0.5, {"fruit", "green"}, 1709210096789000, 1709210096789000},
    {"x' OR 1=1 --", "\"); DROP TABLE products; --", 0, {"x' OR 1=1 --"}, -62167219200000000, 0},
    {"quote \" and \\ back", "tab\there", 100, {NULL}, 253402300799999999, 253402300799999999},
    {"\xc3\x89t\xc3\xa9", "\xc3\xa9t\xc3\xa9 caf\xc3\xa9", 10, {"Fruit"}, 951782400000000, 951867000000000},
    {"100%_done", "e", 1e6, {"%"}, -1, 1},
    {"Banana", "yellow", 5e-324, {"fruit", "yellow"}, 1799500000, 1799500000},
    {"banana split", "Ice cream", 1e308, {"dessert"}, 1686835800000000, 1709210096789000},
    {"Widget", "", -0.0, {NULL}, 1686835800000000, 1686835800000001},
    {"e", "E", 0.1, {"e", "E"}, 1500000000123456, 1500000000123457},
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

static sqlite3 *db;
static arena *A;
static product products[N_FIXTURES];

static void exec_or_die(const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
}

static int group_setup(void **state) {
  (void)state;
  A = arena_create(1 << 16);
  if (!A || sqlite3_open(":memory:", &db) != SQLITE_OK) return -1;
  exec_or_die("CREATE TABLE products(id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,"
              " price REAL NOT NULL, created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);"
              "CREATE TABLE product_categories(product_id TEXT NOT NULL, position INTEGER NOT NULL,"
              " value TEXT NOT NULL, PRIMARY KEY(product_id, position));");
  sqlite3_stmt *ins = NULL, *cat = NULL;
  if (sqlite3_prepare_v2(db, "INSERT INTO products VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1, &ins, NULL) ||
      sqlite3_prepare_v2(db, "INSERT INTO product_categories VALUES(?1, ?2, ?3)", -1, &cat, NULL))
    return -1;
  for (size_t i = 0; i < N_FIXTURES; i++) {
    const fixture *fx = &fixtures[i];
    product *p = &products[i];
    snprintf(p->id, sizeof p->id, "p%02zu", i);
    p->name = (char *)fx->name;
    p->description = (char *)fx->description;
    p->price = fx->price;
    p->categories = (char **)fx->categories;
    while (p->n_categories < 3 && fx->categories[p->n_categories]) p->n_categories++;
    p->created_us = fx->created_us;
    p->updated_us = fx->updated_us;
    sqlite3_bind_text(ins, 1, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, p->description, -1, SQLITE_STATIC);
    sqlite3_bind_double(ins, 4, p->price);
    sqlite3_bind_int64(ins, 5, p->created_us);
    sqlite3_bind_int64(ins, 6, p->updated_us);
    if (sqlite3_step(ins) != SQLITE_DONE) return -1;
    sqlite3_reset(ins);
    for (size_t k = 0; k < p->n_categories; k++) {
      sqlite3_bind_text(cat, 1, p->id, -1, SQLITE_STATIC);
      sqlite3_bind_int(cat, 2, (int)k);
      sqlite3_bind_text(cat, 3, p->categories[k], -1, SQLITE_STATIC);
      if (sqlite3_step(cat) != SQLITE_DONE) return -1;
      sqlite3_reset(cat);
    }
  }
  sqlite3_finalize(ins);
  sqlite3_finalize(cat);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  sqlite3_close(db);
  arena_destroy(A);
  return 0;
}

static int reset_arena(void **state) {
  (void)state;
  arena_reset(A);
  return 0;
}

/* Which fixtures the compiled fragment selects (bit i = products[i]). With
 * first_param > 1 the query owns placeholders ?1 and ?2 itself, as a backend
 * with its own keyset parameters would. */
static uint64_t sql_selection(const char *text, const filter_sql *q, int first_param) {
  char sql[8192];
  snprintf(sql, sizeof sql, "SELECT id FROM products WHERE %s%s ORDER BY id",
           first_param > 1 ? "?1 IS NULL AND ?2 IS NULL AND " : "", q->sql);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("filter [%s] compiled to invalid SQL: %s: %s", text, sql, sqlite3_errmsg(db));
  for (size_t k = 0; k < q->n_params; k++) {
    const filter_param *v = &q->params[k];
    int at = first_param + (int)k, rc;
    if (v->kind == FILTER_PARAM_TEXT)
      rc = sqlite3_bind_text(st, at, v->text, (int)v->text_len, SQLITE_STATIC);
    else if (v->kind == FILTER_PARAM_DOUBLE)
      rc = sqlite3_bind_double(st, at, v->d);
    else
      rc = sqlite3_bind_int64(st, at, v->i);
    if (rc != SQLITE_OK) fail_msg("bind %d of [%s]: %s", at, sql, sqlite3_errmsg(db));
  }
  uint64_t mask = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    mask |= UINT64_C(1) << strtol(id + 1, NULL, 10);
  }
  if (rc != SQLITE_DONE) fail_msg("[%s]: %s", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return mask;
}

static uint64_t match_selection(const filter *f) {
  uint64_t mask = 0;
  for (size_t i = 0; i < N_FIXTURES; i++)
    if (filter_match(f, &products[i])) mask |= UINT64_C(1) << i;
  return mask;
}

/* Parses text, compiles it for both dialects, and asserts that SQLite
 * selects what filter_match selects; returns that selection. */
static uint64_t check_agreement(const char *text, int first_param) {
  filter *f = NULL;
  char err[256];
  if (filter_parse(text, strlen(text), A, &f, err, sizeof err) != 0) fail_msg("[%s]: %s", text, err);
  filter_sql q, pg;
  assert_int_equal(filter_to_sql(f, FILTER_SQL_SQLITE, first_param, A, &q), 0);
  assert_int_equal(filter_to_sql(f, FILTER_SQL_POSTGRES, first_param, A, &pg), 0);
  assert_int_equal(pg.n_params, q.n_params);
  uint64_t want = match_selection(f), got = sql_selection(text, &q, first_param);
  if (want != got)
    fail_msg("filter [%s]: filter_match selects %#llx, SQL [%s] selects %#llx", text, (unsigned long long)want,
             q.sql, (unsigned long long)got);
  return want;
}

static void sql_selects_what_filter_match_selects_for_handwritten_filters(void **state) {
  (void)state;
  static const char *const filters[] = {
      "price = 1", "price != 1", "price < 1", "price <= 1", "price > 1", "price >= 1", "price = 0",
      "price = -0", "price > 0", "price < 1e-300", "price > 1e307", "price >= 5e-324", "price = 1e-999",
      "price = 0.1", "price = 9.99", "name = \"Apple\"", "name = \"apple\"", "name != \"Apple\"",
      "name : \"apple\"", "name:\"APPLE\"", "name:\"\"", "name:\"e\"", "name:\"E\"", "name:\"%\"",
      "name:\"_\"", "name:\"%_\"", "name:\"\\\"\"", "name:\"\\\\\"", "name = \"quote \\\" and \\\\ back\"",
      "name = \"x' OR 1=1 --\"", "name:\"' or 1=1\"", "name:\"\xc3\xa9\"", "name:\"\xc3\x89\"",
      "name:\"\xc3\x89T\"", "description = \"\"", "description != \"\"", "description:\"\"",
      "description:\"RED\"", "description:\"drop table\"", "description:\"\\\");\"", "description:\"\t\"",
      "description:\"CAF\xc3\xa9\"", "categories:\"fruit\"", "categories:\"Fruit\"", "categories:\"FRUIT\"",
      "categories:\"\"", "categories:\"%\"", "categories:\"x' OR 1=1 --\"", "categories:\"e\"",
      "NOT categories:\"fruit\"", "created_at = \"1970-01-01T00:00:00Z\"",
      "created_at < \"1970-01-01T00:00:00Z\"", "created_at > \"2023-11-14T22:13:20Z\"",
      "created_at >= \"2023-11-14T22:13:20Z\"", "created_at = \"2023-11-14T22:13:20.000001Z\"",
      "created_at <= \"0000-01-01T00:00:00Z\"", "created_at >= \"9999-12-31T23:59:59.999999Z\"",
      "created_at != \"1969-12-31T23:59:59.999999Z\"", "updated_at = \"2024-02-29T12:34:56.789Z\"",
      "updated_at > \"2024-02-29T13:34:56.789+01:00\"", "updated_at < \"1970-01-01T00:00:00.000001Z\"",
      "NOT price > 5 AND price > 1", "NOT (price > 5 AND price > 1)",
      "name = \"Apple\" OR name = \"Pear\" AND price > 5", "(name = \"Apple\" OR name = \"Pear\") AND price > 5",
      "NOT NOT name:\"apple\"", "NOT NOT NOT name:\"apple\"",
      "categories:\"fruit\" AND NOT (name:\"apple\" OR price < 1)",
      "((((((((((((((((price > 1))))))))))))))))",
      "price > 1 AND price < 100 AND NOT price = 9.99 OR categories:\"%\" OR description = \"E\"",
  };
  uint64_t seen_nonempty = 0, seen_partial = 0;
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
    uint64_t sel = check_agreement(filters[i], i % 2 ? 3 : 1);
    seen_nonempty += sel != 0;
    seen_partial += sel != 0 && sel != (UINT64_C(1) << N_FIXTURES) - 1;
    arena_reset(A);
  }
  /* The fixtures are not degenerate: most filters select some but not all. */
  assert_true(seen_partial > 50);
  assert_true(seen_nonempty > 55);
}

/* ------------------------------------------------- random filters --- */

typedef struct gen {
  uint64_t state;
  char buf[FILTER_MAX_BYTES + 256];
  size_t len;
} gen;

static uint32_t rnd(gen *g, uint32_t n) {
  g->state ^= g->state << 13;
  g->state ^= g->state >> 7;
  g->state ^= g->state << 17;
  return (uint32_t)(g->state % n);
}

static void put(gen *g, const char *s) {
  size_t n = strlen(s);
  if (g->len + n < sizeof g->buf) memcpy(g->buf + g->len, s, n);
  g->len += n;
}

static void put_string(gen *g, const char *s) {
  put(g, "\"");
  for (; *s; s++) {
    char c[3] = {*s, 0, 0};
    if (*s == '"' || *s == '\\') c[0] = '\\', c[1] = *s;
    put(g, c);
  }
  put(g, "\"");
}

/* An RFC 3339 text for us, written in a random offset and precision
 * (formatted with glibc's gmtime_r, so it also cross-checks the parser). */
static void put_time(gen *g, int64_t us) {
  static const int offsets_min[] = {0, 0, 60, -60, 330, -330, 23 * 60 + 59, -(23 * 60 + 59), 45};
  int off = offsets_min[rnd(g, sizeof offsets_min / sizeof offsets_min[0])];
  int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
  int64_t frac = us - secs * 1000000;
  time_t local = (time_t)(secs + off * 60);
  struct tm tm;
  if (!gmtime_r(&local, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
    off = 0;
    local = (time_t)secs;
    gmtime_r(&local, &tm);
  }
  char text[96];
  int n = snprintf(text, sizeof text, "%04d-%02d-%02d%c%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, rnd(g, 2) ? 'T' : 't', tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac || rnd(g, 2)) n += snprintf(text + n, sizeof text - (size_t)n, ".%06lld%s", (long long)frac, rnd(g, 2) ? "987" : "");
  if (off == 0 && rnd(g, 2))
    snprintf(text + n, sizeof text - (size_t)n, "%c", rnd(g, 2) ? 'Z' : 'z');
  else
    snprintf(text + n, sizeof text - (size_t)n, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
  put_string(g, text);
}

static const char *const ops6[] = {" = ", " != ", " < ", " <= ", " > ", " >= "};
static const char *const text_ops[] = {" = ", " != ", " : ", ":"};
static const char *const price_values[] = {"0", "-0", "0.5", "1", "1.5", "1.0", "9.99", "10", "1e2", "100.0",
                                          "1e6", "5e-324", "1e-999", "-1", "1e308", "0.1", "2"};
static const char *const pool[] = {"Apple", "apple", "APPLE", "pie", "e", "E", "", "x' OR 1=1 --", "' or 1=1",
                                   "%", "_", "%_", "\"", "\\", " and ", "\xc3\xa9", "\xc3\x89", "\xc3\x89t\xc3\xa9",
                                   "fruit", "Fruit", "red", "an", "BANANA", "banana split", "Crisp and red",
                                   "Pear", "drop", "\t", "yellow", "100%_done", "e", "ice"};

static void gen_or(gen *g, int depth);

static void gen_comparison(gen *g) {
  const fixture *fx = &fixtures[rnd(g, N_FIXTURES)];
  switch (rnd(g, 7)) {
  case 0:
    put(g, "price");
    put(g, ops6[rnd(g, 6)]);
    put(g, price_values[rnd(g, sizeof price_values / sizeof price_values[0])]);
    break;
  case 1:
  case 2: {
    bool name = rnd(g, 2);
    put(g, name ? "name" : "description");
    put(g, text_ops[rnd(g, 4)]);
    const char *s = rnd(g, 3) ? pool[rnd(g, sizeof pool / sizeof pool[0])] : name ? fx->name : fx->description;
    put_string(g, s);
    break;
  }
  case 3:
    put(g, "categories");
    put(g, rnd(g, 2) ? ":" : " : ");
    put_string(g, rnd(g, 2) && fx->categories[0] ? fx->categories[0] : pool[rnd(g, sizeof pool / sizeof pool[0])]);
    break;
  default: {
    bool created = rnd(g, 2);
    static const int64_t deltas[] = {0, 0, 1, -1, 1000000, -1000000};
    put(g, created ? "created_at" : "updated_at");
    put(g, ops6[rnd(g, 6)]);
    int64_t base = rnd(g, 2) ? fx->created_us : fx->updated_us;
    int64_t d = deltas[rnd(g, sizeof deltas / sizeof deltas[0])];
    if ((d > 0 && base > 253402300799999999 - d) || (d < 0 && base < -62167219200000000 - d)) d = 0;
    put_time(g, base + d);
    break;
  }
  }
}

static void gen_unary(gen *g, int depth) {
  for (uint32_t n = rnd(g, 6) < 2 ? rnd(g, 4) : 0; n > 0; n--) put(g, rnd(g, 2) ? "NOT " : "NOT\t");
  if (depth < 4 && rnd(g, 4) == 0) {
    put(g, "(");
    gen_or(g, depth + 1);
    put(g, ")");
  } else {
    gen_comparison(g);
  }
}

static void gen_and(gen *g, int depth) {
  gen_unary(g, depth);
  for (uint32_t n = rnd(g, 3); n > 0; n--) {
    put(g, " AND ");
    gen_unary(g, depth);
  }
}

static void gen_or(gen *g, int depth) {
  gen_and(g, depth);
  for (uint32_t n = rnd(g, 3); n > 0; n--) {
    put(g, " OR ");
    gen_and(g, depth);
  }
}

static void sql_selects_what_filter_match_selects_for_random_filters(void **state) {
  (void)state;
  gen g = {.state = 0x9E3779B97F4A7C15ull};
  int checked = 0, partial = 0;
  while (checked < 3000) {
    g.len = 0;
    gen_or(&g, 0);
    if (g.len > FILTER_MAX_BYTES) continue;
    g.buf[g.len] = '\0';
    uint64_t sel = check_agreement(g.buf, checked % 2 ? 3 : 1);
    partial += sel != 0 && sel != (UINT64_C(1) << N_FIXTURES) - 1;
    checked++;
    arena_reset(A);
  }
  assert_true(partial > 1000);
}

/* The parser's calendar arithmetic agrees with glibc's gmtime_r: every
 * fixture time, written in random offsets and precisions, selects it. */
static void times_written_by_gmtime_r_select_their_product(void **state) {
  (void)state;
  gen g = {.state = 42};
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < N_FIXTURES; i++) {
      for (int which = 0; which < 2; which++) {
        g.len = 0;
        put(&g, which ? "updated_at = " : "created_at = ");
        put_time(&g, which ? fixtures[i].updated_us : fixtures[i].created_us);
        g.buf[g.len] = '\0';
        uint64_t sel = check_agreement(g.buf, 1);
        if (!(sel & (UINT64_C(1) << i))) fail_msg("[%s] does not select p%02zu", g.buf, i);
        arena_reset(A);
      }
    }
  }
}

/* ------------------------------------------------------- SQL text --- */

static filter_sql compile(const char *text, filter_dialect d, int first_param) {
  filter *f = NULL;
  char err[256];
  if (filter_parse(text, strlen(text), A, &f, err, sizeof err) != 0) fail_msg("[%s]: %s", text, err);
  filter_sql q;
  assert_int_equal(filter_to_sql(f, d, first_param, A, &q), 0);
  return q;
}

static void sqlite_text_is_fully_parenthesised_and_numbered_from_first_param(void **state) {
  (void)state;
  filter_sql q = compile("name:\"AbC\" OR NOT price >= 2 AND categories:\"x\" AND created_at < \"1970-01-01T00:00:01Z\"",
                         FILTER_SQL_SQLITE, 4);
  assert_string_equal(q.sql, "((instr(lower(name), ?4) > 0) OR ((NOT (price >= ?5)) AND "
                             "(EXISTS (SELECT 1 FROM product_categories c WHERE c.product_id = products.id AND "
                             "c.value = ?6)) AND (created_us < ?7)))");
  assert_int_equal(q.n_params, 4);
  assert_int_equal(q.params[0].kind, FILTER_PARAM_TEXT);
  assert_string_equal(q.params[0].text, "abc"); /* already folded */
  assert_int_equal(q.params[0].text_len, 3);
  assert_int_equal(q.params[1].kind, FILTER_PARAM_DOUBLE);
  assert_true(q.params[1].d == 2.0);
  assert_int_equal(q.params[2].kind, FILTER_PARAM_TEXT);
  assert_string_equal(q.params[2].text, "x");
  assert_int_equal(q.params[3].kind, FILTER_PARAM_INT64);
  assert_int_equal(q.params[3].i, 1000000);
  q = compile("description != \"D\" AND updated_at = \"1970-01-01T00:00:00Z\"", FILTER_SQL_SQLITE, 1);
  assert_string_equal(q.sql, "((description <> ?1) AND (updated_us = ?2))");
  assert_string_equal(q.params[0].text, "D"); /* '!=' is exact: not folded */
}

static void postgres_text_uses_dollar_placeholders_casts_and_ascii_translate(void **state) {
  (void)state;
  filter_sql q = compile("description:\"X\" AND NOT (price < 1 OR name = \"N\") OR updated_at > \"1970-01-01T00:00:00Z\"",
                         FILTER_SQL_POSTGRES, 3);
  assert_string_equal(q.sql, "(((strpos(translate(description, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', "
                             "'abcdefghijklmnopqrstuvwxyz'), $3::text) > 0) AND (NOT ((price < $4::double precision) OR "
                             "(name = $5::text)))) OR (updated_us > $6::bigint))");
  assert_int_equal(q.n_params, 4);
  assert_string_equal(q.params[0].text, "x");
  q = compile("categories:\"c\"", FILTER_SQL_POSTGRES, 1);
  assert_string_equal(q.sql, "(EXISTS (SELECT 1 FROM product_categories c WHERE c.product_id = products.id AND "
                             "c.value = $1::text))");
}

static void user_text_never_reaches_the_sql_text(void **state) {
  (void)state;
  static const char *const hostile[] = {"x' OR 1=1 --", "'); DROP TABLE products; --", "\\\" OR \\\"1\\\"=\\\"1",
                                        "?1", "$1", "%", "\xc3\xa9", "a"};
  static const char *const templates[] = {"name = %s", "description != %s", "name:%s", "categories:%s"};
  for (int d = 0; d < 2; d++) {
    for (size_t t = 0; t < sizeof templates / sizeof templates[0]; t++) {
      char text[128];
      snprintf(text, sizeof text, templates[t], "\"a\"");
      filter_sql reference = compile(text, (filter_dialect)d, 1);
      for (size_t h = 0; h < sizeof hostile / sizeof hostile[0]; h++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", hostile[h]);
        snprintf(text, sizeof text, templates[t], quoted);
        filter_sql q = compile(text, (filter_dialect)d, 1);
        assert_string_equal(q.sql, reference.sql);
        assert_int_equal(q.n_params, 1);
        assert_int_equal(q.params[0].kind, FILTER_PARAM_TEXT);
        assert_int_equal(strlen(q.params[0].text), q.params[0].text_len);
      }
    }
  }
  /* And the injection text selects exactly the product that carries it. */
  assert_int_equal(check_agreement("name = \"x' OR 1=1 --\"", 1), UINT64_C(1) << 4);
  assert_int_equal(check_agreement("categories:\"x' OR 1=1 --\"", 1), UINT64_C(1) << 4);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM products", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), N_FIXTURES);
  sqlite3_finalize(st);
}

static void null_filter_compiles_to_a_true_fragment(void **state) {
  (void)state;
  for (int d = 0; d < 2; d++) {
    filter_sql q;
    assert_int_equal(filter_to_sql(NULL, (filter_dialect)d, 1, A, &q), 0);
    assert_string_equal(q.sql, "(1 = 1)");
    assert_int_equal(q.n_params, 0);
    assert_int_equal(sql_selection("", &q, 1), (UINT64_C(1) << N_FIXTURES) - 1);
  }
}

static void placeholder_numbers_are_checked(void **state) {
  (void)state;
  filter *f = NULL;
  assert_int_equal(filter_parse("price > 1 OR price < 0", 22, A, &f, NULL, 0), 0);
  filter_sql q;
  assert_int_not_equal(filter_to_sql(f, FILTER_SQL_SQLITE, 0, A, &q), 0);
  assert_int_not_equal(filter_to_sql(f, FILTER_SQL_SQLITE, -5, A, &q), 0);
  assert_int_not_equal(filter_to_sql(f, FILTER_SQL_POSTGRES, INT_MAX, A, &q), 0);
  assert_int_equal(filter_to_sql(f, FILTER_SQL_POSTGRES, INT_MAX - 1, A, &q), 0);
  assert_string_equal(q.sql, "((price > $2147483646::double precision) OR (price < $2147483647::double precision))");
  assert_int_not_equal(filter_to_sql(f, FILTER_SQL_SQLITE, 1, NULL, &q), 0);
  assert_int_not_equal(filter_to_sql(f, FILTER_SQL_SQLITE, 1, A, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_teardown(fn, reset_arena)
      T(sql_selects_what_filter_match_selects_for_handwritten_filters),
      T(sql_selects_what_filter_match_selects_for_random_filters),
      T(times_written_by_gmtime_r_select_their_product),
      T(sqlite_text_is_fully_parenthesised_and_numbered_from_first_param),
      T(postgres_text_uses_dollar_placeholders_casts_and_ascii_translate),
      T(user_text_never_reaches_the_sql_text),
      T(null_filter_compiles_to_a_true_fragment),
      T(placeholder_numbers_are_checked),
#undef T
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
