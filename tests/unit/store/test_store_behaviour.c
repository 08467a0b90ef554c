/* One behaviour, every backend: the same suite runs against each row of
 * `backends` (memory; SQLite on a fresh file under /tmp; PostgreSQL when
 * PRODUCT_TEST_PG_DSN is set). Adding a backend is adding a row. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "store/filter.h"
#include "store/store.h"

/* ------------------------------------------------------------ backends --- */

typedef struct fixture {
  store *s;
  arena *a;
  char dir[128]; /* a temp dir to remove, or "" */
} fixture;

typedef struct backend {
  const char *name;
  /* Writes the STORE spec of an empty store into spec; 1 to skip the row. */
  int (*make_spec)(fixture *fx, char *spec, size_t n);
} backend;

static int memory_spec(fixture *fx, char *spec, size_t n) {
  (void)fx;
  snprintf(spec, n, "memory");
  return 0;
}

static int sqlite_spec(fixture *fx, char *spec, size_t n) {
  snprintf(fx->dir, sizeof(fx->dir), "/tmp/store-behaviour-XXXXXX");
  if (!mkdtemp(fx->dir)) return -1;
  /* A subdirectory that does not exist yet: store_open creates it. */
  snprintf(spec, n, "sqlite:%s/data/products.db", fx->dir);
  return 0;
}

static int postgres_spec(fixture *fx, char *spec, size_t n) {
  (void)fx;
  const char *dsn = getenv("PRODUCT_TEST_PG_DSN");
  if (!dsn || !*dsn) return 1;
  snprintf(spec, n, "%s", dsn);
  return 0;
}

static const backend backends[] = {
    {"store_behaviour.memory", memory_spec},
    {"store_behaviour.sqlite", sqlite_spec},
    {"store_behaviour.postgres", postgres_spec},
};
static const backend *current;

static void remove_tree(const char *dir) {
  if (!*dir) return;
  const char *files[] = {"data/products.db", "data/products.db-wal", "data/products.db-shm"};
  char path[256];
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    unlink(path);
  }
  snprintf(path, sizeof(path), "%s/data", dir);
  rmdir(path);
  rmdir(dir);
}

/* A shared database (PostgreSQL) may hold rows from an earlier run. */
static int wipe(fixture *fx) {
  for (;;) {
    store_list_result r;
    if (store_list(fx->s, NULL, NULL, 100, fx->a, &r) != STORE_OK) return -1;
    for (size_t i = 0; i < r.n; i++)
      if (store_remove(fx->s, r.items[i].id) != STORE_OK) return -1;
    arena_reset(fx->a);
    if (r.n == 0) return 0;
  }
}

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof(*fx));
  char spec[512], err[256];
  if (!fx || !(fx->a = arena_create(1 << 16))) return -1;
  if (current->make_spec(fx, spec, sizeof(spec)) != 0) return -1;
  store_options opt = {.pool_size = 4, .group_commit = true};
  if (store_open(spec, &opt, &fx->s, err, sizeof(err)) != 0) {
    print_error("store_open(%s): %s\n", current->name, err);
    return -1;
  }
  if (wipe(fx) != 0) return -1;
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture *fx = *state;
  store_destroy(fx->s);
  arena_destroy(fx->a);
  remove_tree(fx->dir);
  free(fx);
  return 0;
}

/* ------------------------------------------------------------- helpers --- */

static void make_id(unsigned n, char out[PRODUCT_ID_LEN + 1]) {
  snprintf(out, PRODUCT_ID_LEN + 1, "00000000-0000-4000-8000-%012u", n);
}

static product make_product(unsigned n, const char *name, int64_t created_us) {
  product p = {.name = (char *)name, .description = "", .price = 1.5,
               .created_us = created_us, .updated_us = created_us};
  make_id(n, p.id);
  return p;
}

static void create_ok(fixture *fx, const product *p) {
  assert_int_equal(store_create(fx->s, p), STORE_OK);
}

static filter *parse(fixture *fx, const char *text) {
  filter *f = NULL;
  char err[256];
  assert_int_equal(filter_parse(text, strlen(text), fx->a, &f, err, sizeof(err)), 0);
  return f;
}

/* Pages through everything matching f with pages of `limit`; returns ids
 * in order (caller frees) and checks more/total on every page. */
static char **page_all(fixture *fx, const filter *f, size_t limit, size_t *count,
                       int64_t want_total) {
  char **ids = NULL;
  size_t n = 0;
  store_cursor cur;
  bool has_cur = false;
  for (;;) {
    store_list_result r;
    assert_int_equal(store_list(fx->s, f, has_cur ? &cur : NULL, limit, fx->a, &r), STORE_OK);
    assert_int_equal(r.total, want_total);
    assert_true(r.n <= limit);
    ids = realloc(ids, (n + r.n + 1) * sizeof(char *));
    for (size_t i = 0; i < r.n; i++) ids[n++] = strdup(r.items[i].id);
    if (!r.more) break;
    assert_int_equal(r.n, limit);
    cur.created_us = r.items[r.n - 1].created_us;
    memcpy(cur.id, r.items[r.n - 1].id, sizeof(cur.id));
    has_cur = true;
  }
  *count = n;
  return ids;
}

static void free_ids(char **ids, size_t n) {
  for (size_t i = 0; i < n; i++) free(ids[i]);
  free(ids);
}

/* --------------------------------------------------------------- tests --- */

static void create_then_get_returns_every_field(void **state) {
  fixture *fx = *state;
  char *cats[] = {"tools", "garden"};
  product p = make_product(1, "Hammer", 1700000000123456);
  p.description = "A heavy hammer";
  p.price = 12.25;
  p.categories = cats;
  p.n_categories = 2;
  p.updated_us = 1700000000999999;
  create_ok(fx, &p);
  product got;
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.id, p.id);
  assert_string_equal(got.name, "Hammer");
  assert_string_equal(got.description, "A heavy hammer");
  assert_true(got.price == 12.25);
  assert_int_equal(got.created_us, 1700000000123456);
  assert_int_equal(got.updated_us, 1700000000999999);
  assert_int_equal(got.n_categories, 2);
  assert_string_equal(got.categories[0], "tools");
  assert_string_equal(got.categories[1], "garden");
}

static void get_of_unknown_id_is_not_found(void **state) {
  fixture *fx = *state;
  product got;
  assert_int_equal(store_get(fx->s, "no-such-id", fx->a, &got), STORE_NOT_FOUND);
  product p = make_product(1, "x", 1);
  create_ok(fx, &p);
  char other[PRODUCT_ID_LEN + 1];
  make_id(2, other);
  assert_int_equal(store_get(fx->s, other, fx->a, &got), STORE_NOT_FOUND);
}

static void create_with_an_existing_id_fails_and_keeps_the_original(void **state) {
  fixture *fx = *state;
  product p = make_product(1, "first", 10);
  create_ok(fx, &p);
  product q = make_product(1, "second", 20);
  assert_int_not_equal(store_create(fx->s, &q), STORE_OK);
  product got;
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, "first");
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 10, fx->a, &r), STORE_OK);
  assert_int_equal(r.total, 1);
}

static void update_replaces_only_the_patched_fields(void **state) {
  fixture *fx = *state;
  char *cats[] = {"a", "b"};
  product p = make_product(1, "old name", 100);
  p.description = "old description";
  p.price = 3;
  p.categories = cats;
  p.n_categories = 2;
  create_ok(fx, &p);

  product out, got;
  product_patch name_only = {.fields = PATCH_NAME, .name = "new name", .updated_us = 200};
  assert_int_equal(store_update(fx->s, p.id, &name_only, fx->a, &out), STORE_OK);
  assert_string_equal(out.name, "new name");
  assert_string_equal(out.description, "old description");
  assert_true(out.price == 3);
  assert_int_equal(out.n_categories, 2);
  assert_int_equal(out.created_us, 100);
  assert_int_equal(out.updated_us, 200);

  /* Empty values are values: a cleared description, a zero price, no categories. */
  product_patch clear = {.fields = PATCH_DESCRIPTION | PATCH_PRICE | PATCH_CATEGORIES,
                         .description = "", .price = 0, .categories = NULL,
                         .n_categories = 0, .updated_us = 300};
  assert_int_equal(store_update(fx->s, p.id, &clear, fx->a, &out), STORE_OK);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, "new name");
  assert_string_equal(got.description, "");
  assert_true(got.price == 0);
  assert_int_equal(got.n_categories, 0);
  assert_int_equal(got.created_us, 100);
  assert_int_equal(got.updated_us, 300);
  assert_string_equal(got.id, p.id);

  char *new_cats[] = {"z", "y", "x"};
  product_patch cats_only = {.fields = PATCH_CATEGORIES, .categories = new_cats,
                             .n_categories = 3, .updated_us = 400};
  assert_int_equal(store_update(fx->s, p.id, &cats_only, fx->a, &out), STORE_OK);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_int_equal(got.n_categories, 3);
  assert_string_equal(got.categories[0], "z");
  assert_string_equal(got.categories[2], "x");
  assert_string_equal(got.description, "");
  assert_int_equal(got.updated_us, 400);
}

static void update_returns_what_get_then_returns(void **state) {
  fixture *fx = *state;
  product p = make_product(7, "n", 5);
  create_ok(fx, &p);
  product out, got;
  product_patch patch = {.fields = PATCH_PRICE | PATCH_NAME, .price = 9.5, .name = "m",
                         .updated_us = 6};
  assert_int_equal(store_update(fx->s, p.id, &patch, fx->a, &out), STORE_OK);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_string_equal(out.id, got.id);
  assert_string_equal(out.name, got.name);
  assert_true(out.price == got.price);
  assert_int_equal(out.updated_us, got.updated_us);
  assert_int_equal(out.created_us, got.created_us);
}

/* updated_at changes on every update: within one clock tick, or after the
 * clock stepped back, it still moves forward. */
static void update_always_moves_updated_forward(void **state) {
  fixture *fx = *state;
  product p = make_product(8, "t", 500);
  create_ok(fx, &p);
  product out;
  product_patch back = {.fields = PATCH_PRICE, .price = 2, .updated_us = 300};
  assert_int_equal(store_update(fx->s, p.id, &back, fx->a, &out), STORE_OK);
  assert_int_equal(out.updated_us, 501);
  product_patch same = {.fields = PATCH_PRICE, .price = 3, .updated_us = 501};
  assert_int_equal(store_update(fx->s, p.id, &same, fx->a, &out), STORE_OK);
  assert_int_equal(out.updated_us, 502);
  assert_int_equal(out.created_us, 500);
}

static void update_of_unknown_id_is_not_found(void **state) {
  fixture *fx = *state;
  product out;
  product_patch patch = {.fields = PATCH_NAME, .name = "x", .updated_us = 1};
  assert_int_equal(store_update(fx->s, "missing", &patch, fx->a, &out), STORE_NOT_FOUND);
}

static void remove_deletes_once_then_not_found(void **state) {
  fixture *fx = *state;
  product p = make_product(1, "gone", 1), q = make_product(2, "stays", 2);
  create_ok(fx, &p);
  create_ok(fx, &q);
  assert_int_equal(store_remove(fx->s, p.id), STORE_OK);
  product got;
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_NOT_FOUND);
  assert_int_equal(store_remove(fx->s, p.id), STORE_NOT_FOUND);
  product_patch patch = {.fields = PATCH_NAME, .name = "back", .updated_us = 3};
  assert_int_equal(store_update(fx->s, p.id, &patch, fx->a, &got), STORE_NOT_FOUND);
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 10, fx->a, &r), STORE_OK);
  assert_int_equal(r.total, 1);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.items[0].id, q.id);
}

static void list_orders_by_created_then_id(void **state) {
  fixture *fx = *state;
  /* Created out of order; ids 3 and 5 share a timestamp with 4, so the id
   * breaks the tie. */
  const struct { unsigned n; int64_t us; } rows[] = {
      {9, 50}, {5, 20}, {1, 90}, {4, 20}, {3, 20}, {8, -5}, {2, 10}};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    product p = make_product(rows[i].n, "p", rows[i].us);
    create_ok(fx, &p);
  }
  const unsigned want[] = {8, 2, 3, 4, 5, 9, 1};
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 100, fx->a, &r), STORE_OK);
  assert_int_equal(r.n, 7);
  assert_int_equal(r.total, 7);
  assert_false(r.more);
  for (size_t i = 0; i < 7; i++) {
    char id[PRODUCT_ID_LEN + 1];
    make_id(want[i], id);
    assert_string_equal(r.items[i].id, id);
  }
}

static void list_pages_continue_exactly_after_the_cursor(void **state) {
  fixture *fx = *state;
  for (unsigned i = 0; i < 23; i++) {
    product p = make_product(100 - i, "p", (int64_t)(i / 3) * 1000); /* ties in threes */
    create_ok(fx, &p);
  }
  size_t n_all, n_paged;
  char **all = page_all(fx, NULL, 100, &n_all, 23);
  for (size_t limit = 1; limit <= 24; limit += 4) {
    char **paged = page_all(fx, NULL, limit, &n_paged, 23);
    assert_int_equal(n_paged, 23);
    for (size_t i = 0; i < 23; i++) assert_string_equal(paged[i], all[i]);
    free_ids(paged, n_paged);
  }
  free_ids(all, n_all);
}

static void list_limit_and_more_flag(void **state) {
  fixture *fx = *state;
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 10, fx->a, &r), STORE_OK);
  assert_int_equal(r.n, 0);
  assert_false(r.more);
  assert_int_equal(r.total, 0);
  for (unsigned i = 0; i < 5; i++) {
    product p = make_product(i, "p", i);
    create_ok(fx, &p);
  }
  assert_int_equal(store_list(fx->s, NULL, NULL, 5, fx->a, &r), STORE_OK);
  assert_int_equal(r.n, 5);
  assert_false(r.more);
  assert_int_equal(store_list(fx->s, NULL, NULL, 4, fx->a, &r), STORE_OK);
  assert_int_equal(r.n, 4);
  assert_true(r.more);
  assert_int_equal(r.total, 5);
  store_cursor cur = {.created_us = r.items[3].created_us};
  memcpy(cur.id, r.items[3].id, sizeof(cur.id));
  assert_int_equal(store_list(fx->s, NULL, &cur, 4, fx->a, &r), STORE_OK);
  assert_int_equal(r.n, 1);
  assert_false(r.more);
  assert_int_equal(r.total, 5);
}

static void list_continues_after_a_cursor_whose_product_was_deleted(void **state) {
  fixture *fx = *state;
  for (unsigned i = 0; i < 6; i++) {
    product p = make_product(i, "p", 10 * i);
    create_ok(fx, &p);
  }
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 3, fx->a, &r), STORE_OK);
  store_cursor cur = {.created_us = r.items[2].created_us};
  memcpy(cur.id, r.items[2].id, sizeof(cur.id));
  assert_int_equal(store_remove(fx->s, cur.id), STORE_OK);
  assert_int_equal(store_list(fx->s, NULL, &cur, 3, fx->a, &r), STORE_OK);
  assert_int_equal(r.n, 3);
  assert_int_equal(r.total, 5);
  char want[PRODUCT_ID_LEN + 1];
  make_id(3, want);
  assert_string_equal(r.items[0].id, want);
}

static void list_with_a_filter_counts_and_pages_only_matches(void **state) {
  fixture *fx = *state;
  char *red[] = {"red"}, *blue_red[] = {"blue", "red"}, *blue[] = {"blue"};
  for (unsigned i = 0; i < 30; i++) {
    product p = make_product(i, i % 2 ? "Blue Widget" : "plain", 1000 + (int64_t)i / 4);
    p.price = i;
    p.categories = i % 3 == 0 ? red : i % 3 == 1 ? blue_red : blue;
    p.n_categories = i % 3 == 1 ? 2 : 1;
    create_ok(fx, &p);
  }
  const struct { const char *text; int64_t want; } cases[] = {
      {"price >= 10 AND price < 20", 10},
      {"categories : \"red\"", 20},
      {"name : \"WIDGET\"", 15},
      {"NOT categories : \"red\" OR price = 0", 11},
      {"name = \"plain\" AND categories : \"blue\"", 10},
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    filter *f = parse(fx, cases[c].text);
    size_t n1, n4;
    char **one = page_all(fx, f, 1, &n1, cases[c].want);
    char **four = page_all(fx, f, 4, &n4, cases[c].want);
    assert_int_equal(n1, (size_t)cases[c].want);
    assert_int_equal(n4, (size_t)cases[c].want);
    for (size_t i = 0; i < n1; i++) {
      assert_string_equal(one[i], four[i]);
      product got;
      assert_int_equal(store_get(fx->s, one[i], fx->a, &got), STORE_OK);
      assert_true(filter_match(f, &got));
    }
    free_ids(one, n1);
    free_ids(four, n4);
  }
}

static void strings_that_look_like_sql_are_stored_verbatim(void **state) {
  fixture *fx = *state;
  const char *names[] = {"Robert'); DROP TABLE products;--", "\" OR 1=1 --", "%s%n%%",
                         "back\\slash \\\" quote", "tab\tnew\nline", "?1 $1 :x @y"};
  for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char *cats[] = {(char *)names[i], "' OR ''='"};
    product p = make_product(i, names[i], i);
    p.description = (char *)names[(i + 1) % 6];
    p.categories = cats;
    p.n_categories = 2;
    create_ok(fx, &p);
  }
  for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char id[PRODUCT_ID_LEN + 1];
    product got;
    make_id(i, id);
    assert_int_equal(store_get(fx->s, id, fx->a, &got), STORE_OK);
    assert_string_equal(got.name, names[i]);
    assert_string_equal(got.description, names[(i + 1) % 6]);
    assert_string_equal(got.categories[0], names[i]);
    assert_string_equal(got.categories[1], "' OR ''='");
  }
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 10, fx->a, &r), STORE_OK);
  assert_int_equal(r.total, 6);
}

static void categories_keep_order_and_duplicates_and_may_be_empty(void **state) {
  fixture *fx = *state;
  char *cats[] = {"zeta", "alpha", "zeta", "mid"};
  product p = make_product(1, "p", 1);
  p.categories = cats;
  p.n_categories = 4;
  create_ok(fx, &p);
  product q = make_product(2, "q", 2); /* no categories */
  create_ok(fx, &q);
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 10, fx->a, &r), STORE_OK);
  assert_int_equal(r.n, 2);
  assert_int_equal(r.items[0].n_categories, 4);
  for (size_t i = 0; i < 4; i++) assert_string_equal(r.items[0].categories[i], cats[i]);
  assert_int_equal(r.items[1].n_categories, 0);
}

static void unicode_round_trips_byte_for_byte(void **state) {
  fixture *fx = *state;
  const char *name = "Caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80 e\xcc\x81";
  char *cats[] = {"\xd0\xba\xd0\xbd\xd0\xb8\xd0\xb3\xd0\xb8", "\xf0\x9f\x93\x9a"};
  product p = make_product(1, name, 1);
  p.description = "\xe2\x80\x8f\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d";
  p.categories = cats;
  p.n_categories = 2;
  create_ok(fx, &p);
  product got;
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, name);
  assert_string_equal(got.description, p.description);
  assert_string_equal(got.categories[0], cats[0]);
  assert_string_equal(got.categories[1], cats[1]);
}

static void extreme_numbers_round_trip(void **state) {
  fixture *fx = *state;
  const double prices[] = {0.0, 0.1, 1e-300, 1.7976931348623157e308, 9007199254740993.0, 123.456};
  const int64_t times[] = {INT64_MIN + 1, -1, 0, 1, 1700000000000001, INT64_MAX - 1};
  for (unsigned i = 0; i < 6; i++) {
    product p = make_product(i, "n", times[i]);
    p.price = prices[i];
    p.updated_us = times[5 - i];
    create_ok(fx, &p);
  }
  size_t n;
  char **ids = page_all(fx, NULL, 2, &n, 6);
  assert_int_equal(n, 6);
  for (unsigned i = 0; i < 6; i++) {
    char id[PRODUCT_ID_LEN + 1];
    product got;
    make_id(i, id);
    assert_string_equal(ids[i], id); /* times are ascending with i */
    assert_int_equal(store_get(fx->s, id, fx->a, &got), STORE_OK);
    assert_true(got.price == prices[i]);
    assert_int_equal(got.created_us, times[i]);
    assert_int_equal(got.updated_us, times[5 - i]);
  }
  free_ids(ids, n);
}

/* ---------------------------------------------------------- concurrency --- */

#define STABLE 40
#define WRITERS 3
#define WRITER_ROUNDS 30

typedef struct shared {
  fixture *fx;
  int writers_done;
  pthread_mutex_t mu;
  int errors; /* failures seen off the main thread (cmocka asserts are not thread-safe) */
  int passes;
} shared;

typedef struct writer_arg {
  shared *sh;
  unsigned index;
} writer_arg;

static void count_error(shared *sh, const char *what) {
  pthread_mutex_lock(&sh->mu);
  if (sh->errors++ < 5) fprintf(stderr, "concurrency: %s\n", what);
  pthread_mutex_unlock(&sh->mu);
}

/* Creates products between and beside the stable ones (same timestamps, so
 * ids break ties) and deletes them again, around the pager's cursor. */
static void *writer_main(void *arg) {
  writer_arg *wa = arg;
  shared *sh = wa->sh;
  unsigned seed = 1234 + wa->index;
  for (unsigned k = 0; k < WRITER_ROUNDS; k++) {
    unsigned id_n = 100000 * (wa->index + 1) + k;
    int64_t us = (int64_t)(rand_r(&seed) % STABLE) * 100 + (rand_r(&seed) % 2 ? 0 : 50);
    product p = make_product(id_n, "churn", us);
    if (store_create(sh->fx->s, &p) != STORE_OK) count_error(sh, "create");
    if (k % 2 == 1) {
      char id[PRODUCT_ID_LEN + 1];
      make_id(id_n - 1, id);
      if (store_remove(sh->fx->s, id) != STORE_OK) count_error(sh, "remove");
    }
  }
  return NULL;
}

static int key_cmp(const product *a, const product *b) {
  if (a->created_us != b->created_us) return a->created_us < b->created_us ? -1 : 1;
  return strcmp(a->id, b->id);
}

/* Pages through the whole list repeatedly: keys strictly increase (so no
 * product is listed twice) and every stable product shows up. */
static void *pager_main(void *arg) {
  shared *sh = arg;
  arena *a = arena_create(1 << 16);
  if (!a) {
    count_error(sh, "arena");
    return NULL;
  }
  for (int pass = 0; pass < 3 || !__atomic_load_n(&sh->writers_done, __ATOMIC_SEQ_CST); pass++) {
    bool seen[STABLE] = {false};
    product last = {0};
    bool has_last = false;
    store_cursor cur;
    for (;;) {
      store_list_result r;
      if (store_list(sh->fx->s, NULL, has_last ? &cur : NULL, 4, a, &r) != STORE_OK) {
        count_error(sh, "list");
        break;
      }
      for (size_t i = 0; i < r.n; i++) {
        if (has_last && key_cmp(&last, &r.items[i]) >= 0) count_error(sh, "order/duplicate");
        last = r.items[i];
        has_last = true;
        unsigned n = (unsigned)strtoul(r.items[i].id + 24, NULL, 10);
        if (n < STABLE) seen[n] = true;
      }
      if (!r.more) break;
      cur.created_us = last.created_us;
      memcpy(cur.id, last.id, sizeof(cur.id));
      last.name = last.description = NULL; /* arena memory goes away below */
      last.categories = NULL;
      arena_reset(a);
    }
    for (unsigned i = 0; i < STABLE; i++)
      if (!seen[i]) count_error(sh, "a stable product was skipped");
    arena_reset(a);
    pthread_mutex_lock(&sh->mu);
    sh->passes++;
    pthread_mutex_unlock(&sh->mu);
  }
  arena_destroy(a);
  return NULL;
}

static void paging_during_creates_and_deletes_lists_each_product_once(void **state) {
  fixture *fx = *state;
  for (unsigned i = 0; i < STABLE; i++) {
    product p = make_product(i, "stable", (int64_t)i * 100);
    create_ok(fx, &p);
  }
  shared sh = {.fx = fx};
  pthread_mutex_init(&sh.mu, NULL);
  pthread_t writers[WRITERS], pager;
  writer_arg args[WRITERS];
  assert_int_equal(pthread_create(&pager, NULL, pager_main, &sh), 0);
  for (unsigned i = 0; i < WRITERS; i++) {
    args[i] = (writer_arg){.sh = &sh, .index = i};
    assert_int_equal(pthread_create(&writers[i], NULL, writer_main, &args[i]), 0);
  }
  for (unsigned i = 0; i < WRITERS; i++) pthread_join(writers[i], NULL);
  __atomic_store_n(&sh.writers_done, 1, __ATOMIC_SEQ_CST);
  pthread_join(pager, NULL);
  pthread_mutex_destroy(&sh.mu);
  assert_int_equal(sh.errors, 0);
  assert_true(sh.passes >= 3);
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 1, fx->a, &r), STORE_OK);
  assert_int_equal(r.total, STABLE + WRITERS * WRITER_ROUNDS / 2);
}

typedef struct patcher_arg {
  fixture *fx;
  const char *id;
  unsigned field;
  int errors;
} patcher_arg;

#define PATCH_ROUNDS 40

static void *patcher_main(void *arg) {
  patcher_arg *pa = arg;
  arena *a = arena_create(4096);
  for (int k = 1; a && k <= PATCH_ROUNDS; k++) {
    char name[32];
    snprintf(name, sizeof(name), "name-%d", k);
    product_patch patch = {.fields = pa->field, .name = name, .price = k, .updated_us = k};
    product out;
    if (store_update(pa->fx->s, pa->id, &patch, a, &out) != STORE_OK) pa->errors++;
    arena_reset(a);
  }
  arena_destroy(a);
  return NULL;
}

static void concurrent_updates_of_different_fields_are_not_lost(void **state) {
  fixture *fx = *state;
  product p = make_product(1, "name-0", 1);
  p.price = 0;
  create_ok(fx, &p);
  patcher_arg names = {.fx = fx, .id = p.id, .field = PATCH_NAME};
  patcher_arg prices = {.fx = fx, .id = p.id, .field = PATCH_PRICE};
  pthread_t t1, t2;
  assert_int_equal(pthread_create(&t1, NULL, patcher_main, &names), 0);
  assert_int_equal(pthread_create(&t2, NULL, patcher_main, &prices), 0);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  assert_int_equal(names.errors + prices.errors, 0);
  product got;
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, "name-40");
  assert_true(got.price == PATCH_ROUNDS);
}

/* An update racing a remove, round after round on a fresh product: two
 * threads spin on one start flag (so neither is still waking up when the
 * other runs), then one updates and the other removes. Whichever wins, the
 * remove succeeds and the product is gone for good. The race is real only if
 * both orders happened, so the rounds count them and the test fails when one
 * was never seen in RACE_ROUNDS (a test that always ran the remove first, as
 * one update thread started just before the remove did, could not fail). */
#define RACE_ROUNDS 2000
#define RACE_ENOUGH 5 /* of each outcome, then the rounds stop */

typedef struct race_round {
  fixture *fx;
  const char *id;
  atomic_int ready;
  atomic_bool go;
  store_status update_st, remove_st;
} race_round;

static void race_start(race_round *r) {
  atomic_fetch_add(&r->ready, 1);
  while (!atomic_load(&r->go)) sched_yield();
}

static void *race_updater(void *arg) {
  race_round *r = arg;
  arena *a = arena_create(4096);
  race_start(r);
  product_patch patch = {.fields = PATCH_NAME, .name = "racing", .updated_us = 2};
  product out;
  r->update_st = a ? store_update(r->fx->s, r->id, &patch, a, &out) : STORE_ERROR;
  arena_destroy(a);
  return NULL;
}

static void *race_remover(void *arg) {
  race_round *r = arg;
  race_start(r);
  r->remove_st = store_remove(r->fx->s, r->id);
  return NULL;
}

static void update_racing_a_remove_never_brings_the_product_back(void **state) {
  fixture *fx = *state;
  unsigned updated_first = 0, removed_first = 0, rounds = 0;
  while (rounds < RACE_ROUNDS && (updated_first < RACE_ENOUGH || removed_first < RACE_ENOUGH)) {
    product p = make_product(rounds + 1, "victim", 1);
    create_ok(fx, &p);
    race_round r = {.fx = fx, .id = p.id};
    atomic_init(&r.ready, 0);
    atomic_init(&r.go, false);
    pthread_t tu, tr;
    /* Each side is the one started first in every other round. */
    for (int k = 0; k < 2; k++) {
      if ((k + rounds) % 2 == 0)
        assert_int_equal(pthread_create(&tu, NULL, race_updater, &r), 0);
      else
        assert_int_equal(pthread_create(&tr, NULL, race_remover, &r), 0);
    }
    while (atomic_load(&r.ready) < 2) sched_yield();
    atomic_store(&r.go, true);
    pthread_join(tu, NULL);
    pthread_join(tr, NULL);
    rounds++;
    assert_int_equal(r.remove_st, STORE_OK);
    if (r.update_st == STORE_OK)
      updated_first++;
    else if (r.update_st == STORE_NOT_FOUND)
      removed_first++;
    else
      fail_msg("round %u: the update ended %d", rounds, (int)r.update_st);
    product got;
    assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_NOT_FOUND);
    arena_reset(fx->a);
  }
  print_message("%s: %u rounds, update first %u, remove first %u\n", current->name, rounds,
                updated_first, removed_first);
  if (updated_first == 0 || removed_first == 0)
    fail_msg("in %u rounds the update came first %u times and the remove first %u times: "
             "the two never raced both ways", rounds, updated_first, removed_first);
  store_list_result lr;
  assert_int_equal(store_list(fx->s, NULL, NULL, 10, fx->a, &lr), STORE_OK);
  assert_int_equal(lr.total, 0);
  assert_int_equal(lr.n, 0);
}

/* ------------------------------------------- request ids and etags --- */

/* Request-id rows outlive wipe() in a shared database: every test names
 * its own callers, unique to this run. */
static void unique_caller(const char *tag, char *out, size_t n) {
  static atomic_uint seq;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(out, n, "%s-%ld-%ld.%09ld-%u", tag, (long)getpid(), (long)ts.tv_sec, ts.tv_nsec,
           atomic_fetch_add(&seq, 1));
}

/* The first call's clock: now, since the SQLite and PostgreSQL backends
 * purge ids older than 24 hours by the wall clock in the background. */
static int64_t T0;

static store_request request_of(const char *caller, const char *id, const char *fp,
                                int64_t now_us) {
  store_request r = {.caller = caller, .id = id, .fingerprint = fp, .now_us = now_us};
  return r;
}

static store_status once(fixture *fx, unsigned n, const char *name, const store_request *req,
                         product *out) {
  product p = make_product(n, name, req->now_us);
  return store_create_once(fx->s, &p, req, fx->a, out);
}

static int64_t total_of(fixture *fx) {
  store_list_result r;
  assert_int_equal(store_list(fx->s, NULL, NULL, 1, fx->a, &r), STORE_OK);
  return r.total;
}

static void request_id_first_call_creates_and_a_repeat_returns_the_first(void **state) {
  fixture *fx = *state;
  char caller[96];
  unique_caller("alice", caller, sizeof caller);
  store_request req = request_of(caller, "6f1c0a4e-0000-4000-8000-000000000001", "fp-a", T0);
  product first, again, got;
  char *cats[] = {"c1", "c2"};
  product p = make_product(1, "lamp", T0);
  p.categories = cats;
  p.n_categories = 2;
  assert_int_equal(store_create_once(fx->s, &p, &req, fx->a, &first), STORE_OK);
  assert_string_equal(first.id, p.id);
  assert_string_equal(first.name, "lamp");
  assert_int_equal(first.n_categories, 2);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  /* The retry comes with a new product id (the service makes one per call)
   * and a later clock: it gets the first product and creates nothing. */
  req.now_us = T0 + 5000000;
  assert_int_equal(once(fx, 2, "lamp", &req, &again), STORE_OK);
  assert_string_equal(again.id, p.id);
  assert_int_equal(again.created_us, T0);
  assert_int_equal(again.n_categories, 2);
  assert_string_equal(again.categories[1], "c2");
  char other[PRODUCT_ID_LEN + 1];
  make_id(2, other);
  assert_int_equal(store_get(fx->s, other, fx->a, &got), STORE_NOT_FOUND);
  assert_int_equal(total_of(fx), 1);
}

static void request_id_repeat_returns_the_product_as_it_is_now(void **state) {
  fixture *fx = *state;
  char caller[96];
  unique_caller("bob", caller, sizeof caller);
  store_request req = request_of(caller, "6f1c0a4e-0000-4000-8000-000000000002", "fp", T0);
  product first, out;
  assert_int_equal(once(fx, 1, "before", &req, &first), STORE_OK);
  product_patch patch = {.fields = PATCH_NAME, .name = "after", .updated_us = T0 + 10};
  assert_int_equal(store_update(fx->s, first.id, &patch, fx->a, &out), STORE_OK);
  assert_int_equal(once(fx, 2, "before", &req, &out), STORE_OK);
  assert_string_equal(out.id, first.id);
  assert_string_equal(out.name, "after");
  assert_int_equal(out.updated_us, T0 + 10);
}

static void request_id_repeat_after_a_delete_is_not_found_and_creates_nothing(void **state) {
  fixture *fx = *state;
  char caller[96];
  unique_caller("carol", caller, sizeof caller);
  store_request req = request_of(caller, "6f1c0a4e-0000-4000-8000-000000000003", "fp", T0);
  product first, out;
  assert_int_equal(once(fx, 1, "x", &req, &first), STORE_OK);
  assert_int_equal(store_remove(fx->s, first.id), STORE_OK);
  assert_int_equal(once(fx, 2, "x", &req, &out), STORE_NOT_FOUND);
  assert_int_equal(total_of(fx), 0);
}

static void request_id_repeat_with_other_fields_is_a_mismatch(void **state) {
  fixture *fx = *state;
  char caller[96];
  unique_caller("dave", caller, sizeof caller);
  store_request req = request_of(caller, "6f1c0a4e-0000-4000-8000-000000000004", "fp-1", T0);
  product first, out;
  assert_int_equal(once(fx, 1, "x", &req, &first), STORE_OK);
  req.fingerprint = "fp-2";
  assert_int_equal(once(fx, 2, "y", &req, &out), STORE_MISMATCH);
  assert_int_equal(total_of(fx), 1);
  /* The first request still answers as before. */
  req.fingerprint = "fp-1";
  assert_int_equal(once(fx, 3, "x", &req, &out), STORE_OK);
  assert_string_equal(out.id, first.id);
  assert_int_equal(total_of(fx), 1);
}

static void request_ids_are_per_caller(void **state) {
  fixture *fx = *state;
  char a[96], b[96];
  unique_caller("erin", a, sizeof a);
  unique_caller("frank", b, sizeof b);
  const char *id = "6f1c0a4e-0000-4000-8000-000000000005";
  store_request ra = request_of(a, id, "fp", T0), rb = request_of(b, id, "fp", T0);
  product pa, pb;
  assert_int_equal(once(fx, 1, "x", &ra, &pa), STORE_OK);
  assert_int_equal(once(fx, 2, "x", &rb, &pb), STORE_OK);
  assert_string_not_equal(pa.id, pb.id);
  assert_int_equal(total_of(fx), 2);
}

/* 24 hours: one microsecond short of it the id is remembered; at 24 hours
 * it is forgotten and the call creates again (and is remembered anew). */
static void request_ids_are_remembered_for_24_hours(void **state) {
  fixture *fx = *state;
  char caller[96];
  unique_caller("gina", caller, sizeof caller);
  store_request req = request_of(caller, "6f1c0a4e-0000-4000-8000-000000000006", "fp", T0);
  product first, out, later;
  assert_int_equal(once(fx, 1, "x", &req, &first), STORE_OK);
  req.now_us = T0 + STORE_REQUEST_WINDOW_US - 1;
  assert_int_equal(once(fx, 2, "x", &req, &out), STORE_OK);
  assert_string_equal(out.id, first.id);
  req.now_us = T0 + STORE_REQUEST_WINDOW_US;
  req.fingerprint = "other fields are fine now";
  assert_int_equal(once(fx, 3, "x", &req, &later), STORE_OK);
  assert_string_not_equal(later.id, first.id);
  assert_int_equal(total_of(fx), 2);
  req.now_us += 1;
  assert_int_equal(once(fx, 4, "x", &req, &out), STORE_OK);
  assert_string_equal(out.id, later.id);
  assert_int_equal(total_of(fx), 2);
}

static void etag_changes_on_every_update_and_only_then(void **state) {
  fixture *fx = *state;
  product p = make_product(1, "x", 100), got, out;
  create_ok(fx, &p);
  char e0[STORE_ETAG_LEN + 1], e1[STORE_ETAG_LEN + 1], e2[STORE_ETAG_LEN + 1];
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  store_etag(&got, e0);
  assert_true(strlen(e0) > 0 && strlen(e0) <= 64);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  store_etag(&got, e1);
  assert_string_equal(e0, e1); /* reads leave it */
  product_patch same = {.fields = PATCH_NAME, .name = "x", .updated_us = 100};
  assert_int_equal(store_update(fx->s, p.id, &same, fx->a, &out), STORE_OK);
  store_etag(&out, e1);
  assert_string_not_equal(e0, e1); /* even an update that changes no value */
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  store_etag(&got, e2);
  assert_string_equal(e1, e2); /* what the update returned is current */
  int64_t back;
  assert_int_equal(store_etag_parse(e2, &back), 0);
  assert_int_equal(back, got.updated_us);
  assert_int_not_equal(store_etag_parse("", &back), 0);
  assert_int_not_equal(store_etag_parse("0000000000000ZZZ", &back), 0);
}

static void update_with_the_current_etag_applies_and_a_stale_one_conflicts(void **state) {
  fixture *fx = *state;
  product p = make_product(1, "v1", 100), out, got;
  create_ok(fx, &p);
  product_patch first = {.fields = PATCH_NAME, .name = "v2", .updated_us = 200,
                         .if_match = true, .match_updated_us = 100};
  assert_int_equal(store_update(fx->s, p.id, &first, fx->a, &out), STORE_OK);
  assert_string_equal(out.name, "v2");
  /* The same etag again is stale now: nothing changes. */
  product_patch stale = {.fields = PATCH_NAME | PATCH_PRICE, .name = "v3", .price = 7,
                         .updated_us = 300, .if_match = true, .match_updated_us = 100};
  assert_int_equal(store_update(fx->s, p.id, &stale, fx->a, &out), STORE_CONFLICT);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_string_equal(got.name, "v2");
  assert_true(got.price == 1.5);
  assert_int_equal(got.updated_us, 200);
  /* No etag: unconditional, as before. */
  product_patch plain = {.fields = PATCH_NAME, .name = "v4", .updated_us = 400};
  assert_int_equal(store_update(fx->s, p.id, &plain, fx->a, &out), STORE_OK);
  product_patch missing = first;
  assert_int_equal(store_update(fx->s, "00000000-0000-4000-8000-000000009999", &missing, fx->a,
                                &out),
                   STORE_NOT_FOUND);
}

static void remove_with_a_stale_etag_conflicts_and_with_the_current_one_removes(void **state) {
  fixture *fx = *state;
  product p = make_product(1, "x", 100), out, got;
  create_ok(fx, &p);
  product_patch patch = {.fields = PATCH_NAME, .name = "y", .updated_us = 200};
  assert_int_equal(store_update(fx->s, p.id, &patch, fx->a, &out), STORE_OK);
  assert_int_equal(store_remove_if(fx->s, p.id, 100), STORE_CONFLICT);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
  assert_int_equal(store_remove_if(fx->s, p.id, 200), STORE_OK);
  assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_NOT_FOUND);
  assert_int_equal(store_remove_if(fx->s, p.id, 200), STORE_NOT_FOUND);
  assert_int_equal(total_of(fx), 0);
}

/* 8 threads, one request id or one etag, started together by a barrier;
 * 50 rounds. Exactly one effect per round. */
#define SAME_THREADS 8
#define SAME_ROUNDS 50

typedef struct same_round {
  fixture *fx;
  pthread_barrier_t start;
  const store_request *req;
  const char *id;      /* the etag race: the product */
  int64_t etag_us;     /* its etag */
  unsigned round;
  atomic_int ok, conflict, other;
  char first_id[PRODUCT_ID_LEN + 1];
  pthread_mutex_t mu;
  bool ids_differ;
} same_round;

typedef struct same_arg {
  same_round *r;
  unsigned k;
} same_arg;

static void *same_creator(void *arg) {
  same_arg *sa = arg;
  same_round *r = sa->r;
  arena *a = arena_create(4096);
  product p = make_product(100000 + r->round * SAME_THREADS + sa->k, "racer", r->req->now_us), out;
  pthread_barrier_wait(&r->start);
  store_status st = a ? store_create_once(r->fx->s, &p, r->req, a, &out) : STORE_ERROR;
  if (st == STORE_OK) {
    atomic_fetch_add(&r->ok, 1);
    pthread_mutex_lock(&r->mu);
    if (!r->first_id[0]) memcpy(r->first_id, out.id, sizeof r->first_id);
    else if (strcmp(r->first_id, out.id) != 0) r->ids_differ = true;
    pthread_mutex_unlock(&r->mu);
  } else {
    atomic_fetch_add(&r->other, 1);
  }
  arena_destroy(a);
  return NULL;
}

static void *same_updater(void *arg) {
  same_arg *sa = arg;
  same_round *r = sa->r;
  arena *a = arena_create(4096);
  char name[32];
  snprintf(name, sizeof name, "writer %u", sa->k);
  product_patch patch = {.fields = PATCH_NAME, .name = name, .updated_us = 1,
                         .if_match = true, .match_updated_us = r->etag_us};
  product out;
  pthread_barrier_wait(&r->start);
  store_status st = a ? store_update(r->fx->s, r->id, &patch, a, &out) : STORE_ERROR;
  atomic_fetch_add(st == STORE_OK ? &r->ok : st == STORE_CONFLICT ? &r->conflict : &r->other, 1);
  arena_destroy(a);
  return NULL;
}

static void run_same_round(same_round *r, void *(*fn)(void *)) {
  pthread_t t[SAME_THREADS];
  same_arg args[SAME_THREADS];
  assert_int_equal(pthread_barrier_init(&r->start, NULL, SAME_THREADS), 0);
  for (unsigned k = 0; k < SAME_THREADS; k++) {
    args[k] = (same_arg){.r = r, .k = k};
    assert_int_equal(pthread_create(&t[k], NULL, fn, &args[k]), 0);
  }
  for (unsigned k = 0; k < SAME_THREADS; k++) pthread_join(t[k], NULL);
  pthread_barrier_destroy(&r->start);
}

static void concurrent_creates_with_one_request_id_create_exactly_one(void **state) {
  fixture *fx = *state;
  for (unsigned round = 0; round < SAME_ROUNDS; round++) {
    char caller[96];
    unique_caller("racer", caller, sizeof caller);
    store_request req = request_of(caller, "6f1c0a4e-0000-4000-8000-0000000000aa", "fp", T0);
    same_round r = {.fx = fx, .req = &req, .round = round};
    pthread_mutex_init(&r.mu, NULL);
    run_same_round(&r, same_creator);
    pthread_mutex_destroy(&r.mu);
    /* Every call answers OK with the one product; one product exists. */
    if (atomic_load(&r.ok) != SAME_THREADS || r.ids_differ)
      fail_msg("round %u: %d OK, %d failed, ids differ: %d", round, atomic_load(&r.ok),
               atomic_load(&r.other), r.ids_differ);
    assert_int_equal(total_of(fx), 1);
    product got;
    assert_int_equal(store_get(fx->s, r.first_id, fx->a, &got), STORE_OK);
    assert_int_equal(wipe(fx), 0);
  }
  print_message("%s: %d rounds of %d creates with one request id: one product each\n",
                current->name, SAME_ROUNDS, SAME_THREADS);
}

static void concurrent_updates_with_one_etag_apply_exactly_once(void **state) {
  fixture *fx = *state;
  for (unsigned round = 0; round < SAME_ROUNDS; round++) {
    product p = make_product(round + 1, "start", 1000);
    create_ok(fx, &p);
    same_round r = {.fx = fx, .id = p.id, .etag_us = 1000, .round = round};
    pthread_mutex_init(&r.mu, NULL);
    run_same_round(&r, same_updater);
    pthread_mutex_destroy(&r.mu);
    if (atomic_load(&r.ok) != 1 || atomic_load(&r.conflict) != SAME_THREADS - 1)
      fail_msg("round %u: %d applied, %d ABORTED, %d other", round, atomic_load(&r.ok),
               atomic_load(&r.conflict), atomic_load(&r.other));
    product got;
    assert_int_equal(store_get(fx->s, p.id, fx->a, &got), STORE_OK);
    assert_int_equal(got.updated_us, 1001); /* moved once */
    assert_true(strncmp(got.name, "writer ", 7) == 0);
    arena_reset(fx->a);
  }
  print_message("%s: %d rounds of %d updates with one etag: one applied each\n", current->name,
                SAME_ROUNDS, SAME_THREADS);
}

int main(void) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  T0 = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(create_then_get_returns_every_field),
      T(get_of_unknown_id_is_not_found),
      T(create_with_an_existing_id_fails_and_keeps_the_original),
      T(update_replaces_only_the_patched_fields),
      T(update_returns_what_get_then_returns),
      T(update_always_moves_updated_forward),
      T(update_of_unknown_id_is_not_found),
      T(remove_deletes_once_then_not_found),
      T(list_orders_by_created_then_id),
      T(list_pages_continue_exactly_after_the_cursor),
      T(list_limit_and_more_flag),
      T(list_continues_after_a_cursor_whose_product_was_deleted),
      T(list_with_a_filter_counts_and_pages_only_matches),
      T(strings_that_look_like_sql_are_stored_verbatim),
      T(categories_keep_order_and_duplicates_and_may_be_empty),
      T(unicode_round_trips_byte_for_byte),
      T(extreme_numbers_round_trip),
      T(paging_during_creates_and_deletes_lists_each_product_once),
      T(concurrent_updates_of_different_fields_are_not_lost),
      T(update_racing_a_remove_never_brings_the_product_back),
      T(request_id_first_call_creates_and_a_repeat_returns_the_first),
      T(request_id_repeat_returns_the_product_as_it_is_now),
      T(request_id_repeat_after_a_delete_is_not_found_and_creates_nothing),
      T(request_id_repeat_with_other_fields_is_a_mismatch),
      T(request_ids_are_per_caller),
      T(request_ids_are_remembered_for_24_hours),
      T(etag_changes_on_every_update_and_only_then),
      T(update_with_the_current_etag_applies_and_a_stale_one_conflicts),
      T(remove_with_a_stale_etag_conflicts_and_with_the_current_one_removes),
      T(concurrent_creates_with_one_request_id_create_exactly_one),
      T(concurrent_updates_with_one_etag_apply_exactly_once),
  };
#undef T
  int failed = 0;
  for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
    current = &backends[i];
    fixture probe = {0};
    char spec[512];
    if (current->make_spec(&probe, spec, sizeof(spec)) == 1) {
      /* Not a skip: integration.test_store_postgres runs this row with a
       * server and fails unless its BACKEND line is there. */
      print_message("[ NOT HERE ] %s: needs PRODUCT_TEST_PG_DSN (run by "
                    "integration.test_store_postgres)\n", current->name);
      continue;
    }
    remove_tree(probe.dir);
    print_message("[ BACKEND  ] %s\n", current->name);
    failed += _cmocka_run_group_tests(current->name, tests, sizeof(tests) / sizeof(tests[0]),
                                      NULL, NULL);
  }
  return failed;
}
