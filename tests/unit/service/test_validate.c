/* Tests for src/service/validate.c: every row of the contract's "Statuses for
 * bad input" that is a field rule, the boundaries, and every field-mask rule
 * of "UpdateProduct with a field mask". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "service/validate.h"

static char g_err[256];

/* A string of n copies of c (static storage, several at once). */
static char *repeat(char c, size_t n) {
  static char bufs[4][8192];
  static int next;
  char *b = bufs[next++ % 4];
  assert_true(n < sizeof bufs[0]);
  memset(b, c, n);
  b[n] = '\0';
  return b;
}

#define OK(call)                                         \
  do {                                                   \
    g_err[0] = '\0';                                     \
    if ((call) != 0) fail_msg("refused: %s", g_err);     \
  } while (0)

#define BAD(call, want)                                                          \
  do {                                                                           \
    g_err[0] = '\0';                                                             \
    if ((call) == 0) fail_msg("accepted, wanted '%s'", want);                    \
    if (!strstr(g_err, want)) fail_msg("error '%s' lacks '%s'", g_err, want);    \
  } while (0)

/* ------------------------------------------------------------ id / name --- */

static void test_id_must_not_be_empty(void **state) {
  (void)state;
  BAD(validate_id("", g_err, sizeof g_err), "id must not be empty");
  BAD(validate_id(NULL, g_err, sizeof g_err), "id must not be empty");
  OK(validate_id("9b2f0c44-0000-4000-8000-000000000000", g_err, sizeof g_err));
  OK(validate_id("x", g_err, sizeof g_err));
}

static void test_name_required_on_create_and_at_most_256_bytes(void **state) {
  (void)state;
  BAD(validate_name("", true, g_err, sizeof g_err), "name must not be empty");
  BAD(validate_name(NULL, true, g_err, sizeof g_err), "name must not be empty");
  OK(validate_name("", false, g_err, sizeof g_err));
  OK(validate_name("a", true, g_err, sizeof g_err));
  OK(validate_name(repeat('n', 256), true, g_err, sizeof g_err));
  BAD(validate_name(repeat('n', 257), true, g_err, sizeof g_err), "256");
  BAD(validate_name(repeat('n', 257), false, g_err, sizeof g_err), "name");
}

static void test_name_limit_counts_bytes_not_characters(void **state) {
  (void)state;
  /* 128 two-byte characters are 256 bytes; 129 are 258. */
  char buf[300] = "";
  for (int i = 0; i < 128; i++) memcpy(buf + 2 * i, "\xc3\xa9", 2);
  buf[256] = '\0';
  OK(validate_name(buf, true, g_err, sizeof g_err));
  memcpy(buf + 256, "\xc3\xa9", 3);
  BAD(validate_name(buf, true, g_err, sizeof g_err), "name");
}

static void test_strings_must_be_utf8(void **state) {
  (void)state;
  BAD(validate_name("bad \xff", true, g_err, sizeof g_err), "name is not valid UTF-8");
  BAD(validate_description("\xed\xa0\x80", g_err, sizeof g_err), "description is not valid UTF-8");
  BAD(validate_id("\xc0\x80", g_err, sizeof g_err), "id is not valid UTF-8");
  char *cats[] = {"ok", "\xf8"};
  BAD(validate_categories(cats, 2, g_err, sizeof g_err), "categories[1] is not valid UTF-8");
}

/* --------------------------------------------------------- description --- */

static void test_description_at_most_4096_bytes(void **state) {
  (void)state;
  OK(validate_description("", g_err, sizeof g_err));
  OK(validate_description(NULL, g_err, sizeof g_err));
  OK(validate_description(repeat('d', 4096), g_err, sizeof g_err));
  BAD(validate_description(repeat('d', 4097), g_err, sizeof g_err), "4096");
}

/* ---------------------------------------------------------------- price --- */

static void test_price_finite_and_not_negative(void **state) {
  (void)state;
  OK(validate_price(0.0, g_err, sizeof g_err));
  OK(validate_price(-0.0, g_err, sizeof g_err));
  OK(validate_price(0.01, g_err, sizeof g_err));
  OK(validate_price(1e300, g_err, sizeof g_err));
  OK(validate_price(4.9e-324, g_err, sizeof g_err));
  BAD(validate_price(-0.01, g_err, sizeof g_err), "negative");
  BAD(validate_price(-4.9e-324, g_err, sizeof g_err), "negative");
  BAD(validate_price(-1e300, g_err, sizeof g_err), "negative");
  BAD(validate_price(NAN, g_err, sizeof g_err), "finite");
  BAD(validate_price(-NAN, g_err, sizeof g_err), "finite");
  BAD(validate_price(INFINITY, g_err, sizeof g_err), "finite");
  BAD(validate_price(-INFINITY, g_err, sizeof g_err), "finite");
}

/* ----------------------------------------------------------- categories --- */

static void test_categories_count_and_length(void **state) {
  (void)state;
  char *cats[33];
  for (int i = 0; i < 33; i++) cats[i] = "c";
  OK(validate_categories(NULL, 0, g_err, sizeof g_err));
  OK(validate_categories(cats, 32, g_err, sizeof g_err));
  BAD(validate_categories(cats, 33, g_err, sizeof g_err), "at most 32");

  char *one[1];
  one[0] = repeat('c', 64);
  OK(validate_categories(one, 1, g_err, sizeof g_err));
  one[0] = repeat('c', 65);
  BAD(validate_categories(one, 1, g_err, sizeof g_err), "64");
  one[0] = "";
  BAD(validate_categories(one, 1, g_err, sizeof g_err), "categories[0] is empty");
  char *mixed[] = {"a", "b", ""};
  BAD(validate_categories(mixed, 3, g_err, sizeof g_err), "categories[2] is empty");
  one[0] = "x";
  OK(validate_categories(one, 1, g_err, sizeof g_err));
}

/* --------------------------------------------------------------- create --- */

static void test_create_request_rules(void **state) {
  (void)state;
  Product__CreateProductRequest req = PRODUCT__CREATE_PRODUCT_REQUEST__INIT;
  char *cats[] = {"tools", "garden"};
  req.name = "Rake";
  req.description = "A rake";
  req.price = 12.5;
  req.categories = cats;
  req.n_categories = 2;
  OK(validate_create(&req, g_err, sizeof g_err));

  req.name = "";
  BAD(validate_create(&req, g_err, sizeof g_err), "name must not be empty");
  req.name = "Rake";
  req.price = -1;
  BAD(validate_create(&req, g_err, sizeof g_err), "price");
  req.price = NAN;
  BAD(validate_create(&req, g_err, sizeof g_err), "price");
  req.price = 0; /* free is fine */
  OK(validate_create(&req, g_err, sizeof g_err));
  req.description = repeat('d', 4097);
  BAD(validate_create(&req, g_err, sizeof g_err), "description");
  req.description = "";
  cats[1] = "";
  BAD(validate_create(&req, g_err, sizeof g_err), "categories[1]");
  BAD(validate_create(NULL, g_err, sizeof g_err), "missing");
}

static void test_page_size_rules(void **state) {
  (void)state;
  size_t n = 999;
  OK(validate_page_size(0, &n, g_err, sizeof g_err));
  assert_int_equal(n, 10);
  OK(validate_page_size(1, &n, g_err, sizeof g_err));
  assert_int_equal(n, 1);
  OK(validate_page_size(100, &n, g_err, sizeof g_err));
  assert_int_equal(n, 100);
  OK(validate_page_size(101, &n, g_err, sizeof g_err));
  assert_int_equal(n, 100);
  OK(validate_page_size(INT32_MAX, &n, g_err, sizeof g_err));
  assert_int_equal(n, 100);
  BAD(validate_page_size(-1, &n, g_err, sizeof g_err), "page_size");
  BAD(validate_page_size(INT32_MIN, &n, g_err, sizeof g_err), "page_size");
}

/* ---------------------------------------------------------------- update --- */

typedef struct update_fixture {
  Product__UpdateProductRequest req;
  Google__Protobuf__FieldMask mask;
  char *paths[8];
  char *cats[40];
} update_fixture;

static void fixture_init(update_fixture *f) {
  memset(f, 0, sizeof *f);
  Product__UpdateProductRequest r = PRODUCT__UPDATE_PRODUCT_REQUEST__INIT;
  Google__Protobuf__FieldMask m = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  f->req = r;
  f->mask = m;
  f->req.id = "id-1";
}

/* Sets update_mask to the given paths (NULL-terminated). */
static void set_mask(update_fixture *f, const char **paths) {
  size_t n = 0;
  while (paths[n]) {
    f->paths[n] = (char *)paths[n];
    n++;
  }
  f->mask.paths = f->paths;
  f->mask.n_paths = n;
  f->req.update_mask = &f->mask;
}
#define MASK(f, ...) set_mask(f, (const char *[]){__VA_ARGS__, NULL})

static void test_update_requires_an_id(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  f.req.id = "";
  f.req.name = "n";
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "id must not be empty");
  assert_int_equal(p.fields, 0);
  BAD(validate_update_patch(NULL, &p, g_err, sizeof g_err), "missing");
}

static void test_update_without_mask_uses_the_seed_rule(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  /* nothing set: nothing replaced */
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, 0);
  assert_int_equal(p.updated_us, 0);

  f.req.name = "New name";
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_NAME);
  assert_string_equal(p.name, "New name");

  f.req.description = "New description";
  f.req.price = 3.5;
  f.cats[0] = "a";
  f.req.categories = f.cats;
  f.req.n_categories = 1;
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_NAME | PATCH_DESCRIPTION | PATCH_PRICE | PATCH_CATEGORIES);
  assert_string_equal(p.description, "New description");
  assert_true(p.price == 3.5);
  assert_int_equal(p.n_categories, 1);
  assert_string_equal(p.categories[0], "a");

  /* empty description, zero price, no categories: kept */
  f.req.description = "";
  f.req.price = 0;
  f.req.n_categories = 0;
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_NAME);
  f.req.price = -0.0;
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_NAME);
}

static void test_update_without_mask_validates_what_it_replaces(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  f.req.price = -5;
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "negative");
  assert_int_equal(p.fields, 0);
  f.req.price = NAN;
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "finite");
  f.req.price = INFINITY;
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "finite");
  f.req.price = 0;
  f.req.name = repeat('n', 257);
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "name");
  f.req.name = repeat('n', 256);
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  f.req.description = repeat('d', 4097);
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "description");
  f.req.description = "";
  for (int i = 0; i < 33; i++) f.cats[i] = "c";
  f.req.categories = f.cats;
  f.req.n_categories = 33;
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "32");
  f.req.n_categories = 2;
  f.cats[1] = "";
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "categories[1] is empty");
  f.cats[1] = repeat('c', 65);
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "categories[1]");
}

static void test_mask_takes_exactly_the_named_fields_empty_ones_included(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  f.req.name = "ignored name";
  f.req.description = "";
  f.req.price = 7;
  MASK(&f, "description");
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_DESCRIPTION);
  assert_string_equal(p.description, ""); /* a description can be cleared */
  assert_null(p.name);

  f.req.price = 0;
  MASK(&f, "price");
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_PRICE);
  assert_true(p.price == 0.0); /* a price can be set to 0 */

  f.req.price = -0.0;
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_false(signbit(p.price)); /* no negative zero stored */

  f.req.n_categories = 0;
  MASK(&f, "categories");
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_CATEGORIES);
  assert_int_equal(p.n_categories, 0); /* categories can be cleared */

  f.req.name = "Renamed";
  f.req.description = "D";
  f.req.price = 2;
  f.cats[0] = "x";
  f.req.categories = f.cats;
  f.req.n_categories = 1;
  MASK(&f, "name", "description", "price", "categories");
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_NAME | PATCH_DESCRIPTION | PATCH_PRICE | PATCH_CATEGORIES);
  assert_string_equal(p.name, "Renamed");
  assert_string_equal(p.description, "D");
  assert_true(p.price == 2);
  assert_string_equal(p.categories[0], "x");
  assert_int_equal(p.updated_us, 0);
}

static void test_mask_path_named_twice_counts_once(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  f.req.name = "N";
  MASK(&f, "name", "name", "name");
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_NAME);
}

static void test_mask_with_other_paths_is_refused(void **state) {
  (void)state;
  static const char *bad[] = {"id",        "created_at", "updated_at", "Name", "name ",
                              "",          "*",          "name.x",     "price,name",
                              "update_mask", "categories[0]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    update_fixture f;
    fixture_init(&f);
    product_patch p;
    f.req.name = "N";
    MASK(&f, "name", bad[i]);
    BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "update_mask");
    assert_int_equal(p.fields, 0);
  }
}

static void test_mask_is_checked_before_the_fields(void **state) {
  (void)state;
  /* A bad path wins over a bad value: the handler answers before lookup. */
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  f.req.price = -1;
  MASK(&f, "price", "sku");
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "'sku'");
}

static void test_masked_result_must_still_be_valid(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  f.req.name = "";
  MASK(&f, "name");
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "name must not be empty");
  f.req.name = repeat('n', 257);
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "name");
  f.req.price = -1;
  MASK(&f, "price");
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "negative");
  f.req.price = NAN;
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "finite");
  f.req.description = repeat('d', 4097);
  MASK(&f, "description");
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "description");
  f.cats[0] = "";
  f.req.categories = f.cats;
  f.req.n_categories = 1;
  MASK(&f, "categories");
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "categories[0] is empty");
  /* an unmasked invalid field does not matter */
  f.req.price = -1;
  f.req.n_categories = 0;
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_CATEGORIES);
}

static void test_mask_with_no_paths_counts_as_no_mask(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  f.req.update_mask = &f.mask; /* present, zero paths */
  f.req.name = "";
  f.req.description = "kept? no: replaced";
  f.req.price = 0;
  OK(validate_update_patch(&f.req, &p, g_err, sizeof g_err));
  assert_int_equal(p.fields, PATCH_DESCRIPTION);
  assert_string_equal(p.description, "kept? no: replaced");
}

static void test_long_bad_path_is_cut_in_the_message(void **state) {
  (void)state;
  update_fixture f;
  fixture_init(&f);
  product_patch p;
  char *path = repeat('p', 5000);
  f.paths[0] = path;
  f.mask.paths = f.paths;
  f.mask.n_paths = 1;
  f.req.update_mask = &f.mask;
  BAD(validate_update_patch(&f.req, &p, g_err, sizeof g_err), "update_mask path");
  assert_true(strlen(g_err) < 200);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_id_must_not_be_empty),
      cmocka_unit_test(test_name_required_on_create_and_at_most_256_bytes),
      cmocka_unit_test(test_name_limit_counts_bytes_not_characters),
      cmocka_unit_test(test_strings_must_be_utf8),
      cmocka_unit_test(test_description_at_most_4096_bytes),
      cmocka_unit_test(test_price_finite_and_not_negative),
      cmocka_unit_test(test_categories_count_and_length),
      cmocka_unit_test(test_create_request_rules),
      cmocka_unit_test(test_page_size_rules),
      cmocka_unit_test(test_update_requires_an_id),
      cmocka_unit_test(test_update_without_mask_uses_the_seed_rule),
      cmocka_unit_test(test_update_without_mask_validates_what_it_replaces),
      cmocka_unit_test(test_mask_takes_exactly_the_named_fields_empty_ones_included),
      cmocka_unit_test(test_mask_path_named_twice_counts_once),
      cmocka_unit_test(test_mask_with_other_paths_is_refused),
      cmocka_unit_test(test_mask_is_checked_before_the_fields),
      cmocka_unit_test(test_masked_result_must_still_be_valid),
      cmocka_unit_test(test_mask_with_no_paths_counts_as_no_mask),
      cmocka_unit_test(test_long_bad_path_is_cut_in_the_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
