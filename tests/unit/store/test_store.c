/* src/store/store.c: STORE spec syntax, password redaction, dispatch, and
 * product_copy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "store/store.h"

static void good_specs_pass_the_syntax_check(void **state) {
  (void)state;
  const char *good[] = {
      "memory",
      "sqlite:./data/products.db",
      "sqlite:/var/lib/product/p.db",
      "sqlite:p.db",
      "postgres://",
      "postgres://user:pw@db.example:5432/products",
      "postgresql://db/products?sslmode=require&connect_timeout=5",
      "postgresql://[::1]:5432/db",
      "postgres://h1:5432,h2:5433/db",
      "postgres://user%40corp:p%2Fw@h/db",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    char err[256] = "";
    if (store_spec_check(good[i], err, sizeof(err)) != 0) fail_msg("%s: %s", good[i], err);
  }
}

static void bad_specs_fail_with_one_line(void **state) {
  (void)state;
  const char *bad[] = {
      "", "sqlite:", "sqlite::memory:", "sqlite:/tmp/dir/", "Memory", "memory ", "mem",
      "mysql://u@h/db", "postgres:/h/db", "postgres://h:abc/db", "postgres://h:0/db",
      "postgres://h:70000/db", "postgres://h:/db", "postgres://h/db?sslmode",
      "postgres://h/db?=x", "postgres://u:pa ss@h/db", "postgres://h/d%zz",
      "postgres://[::1/db", "postgres://h\n/db",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char err[256] = "";
    if (store_spec_check(bad[i], err, sizeof(err)) == 0) fail_msg("accepted: '%s'", bad[i]);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
  }
  char err[256];
  assert_int_not_equal(store_spec_check(NULL, err, sizeof(err)), 0);
}

static void errors_never_show_a_password(void **state) {
  (void)state;
  const char *bad[] = {
      "postgres://user:s3cr3t-pw@h:notaport/db",
      "mysql://user:s3cr3t-pw@h/db",
      "postgres://h/db?password=s3cr3t-pw&sslmode",
      "postgres://user:s3cr3t-pw@h/db?x",
      "postgresql://user:s3cr3t-pw@h:99999/db",
      "postgres://user:s3cr3t-pw@h/db?Password=s3cr3t-pw&x",
      "postgres://user:s3cr3t-pw@@h/db?x",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char err[512] = "";
    assert_int_not_equal(store_spec_check(bad[i], err, sizeof(err)), 0);
    if (strstr(err, "s3cr3t")) fail_msg("password in: %s", err);
    store *s = NULL;
    assert_int_not_equal(store_open(bad[i], NULL, &s, err, sizeof(err)), 0);
    assert_null(s);
    if (strstr(err, "s3cr3t")) fail_msg("password in: %s", err);
  }
  /* A well-formed URI whose server is not there (or not built in): whatever
   * store_open answers, the password stays out of the message. */
  char err[512] = "";
  store *s = NULL;
  if (store_open("postgres://user:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=1", NULL, &s, err,
                 sizeof(err)) == 0)
    store_destroy(s);
  else if (strstr(err, "s3cr3t"))
    fail_msg("password in: %s", err);
}

static void redact_replaces_the_password_and_keeps_the_rest(void **state) {
  (void)state;
  const struct { const char *in, *out; } cases[] = {
      {"postgres://user:s3cr3t@host:5432/db", "postgres://user:<redacted>@host:5432/db"},
      {"postgres://user@host/db", "postgres://user@host/db"},
      {"postgres://host/db?password=s3cr3t&sslmode=require",
       "postgres://host/db?password=<redacted>&sslmode=require"},
      {"postgres://u:p@ss/w?rd@h/db", "postgres://u:<redacted>@h/db"},
      {"memory", "memory"},
      {"sqlite:./data/products.db", "sqlite:./data/products.db"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char out[256];
    store_spec_redact(cases[i].in, out, sizeof(out));
    assert_string_equal(out, cases[i].out);
  }
  char small[12];
  memset(small, 'X', sizeof(small));
  store_spec_redact("postgres://user:s3cr3t@host/db", small, sizeof(small));
  assert_int_equal(strlen(small), sizeof(small) - 1);
  assert_null(strstr(small, "s3cr3t"));
}

/* What a PostgreSQL spec meets depends on the build, and each build checks
 * its own case (neither opens a connection): with libpq (the backend built
 * in), libpq's own parser is the last word on the URI, so an option libpq
 * does not know is a bad spec before anything connects; without libpq,
 * store_open says the backend is not built. */
static void postgres_spec_meets_the_backend_the_build_has(void **state) {
  (void)state;
  char err[256] = "";
  store *s = NULL;
#ifdef PRODUCT_HAVE_POSTGRES
  const char *unknown = "postgres://h/db?no_such_libpq_option=1";
  assert_int_not_equal(store_spec_check(unknown, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "libpq rejects"));
  err[0] = '\0';
  assert_int_not_equal(store_open(unknown, NULL, &s, err, sizeof(err)), 0);
  assert_null(s);
  assert_non_null(strstr(err, "libpq rejects"));
  assert_int_equal(store_spec_check("postgres://h/db?connect_timeout=1", err, sizeof(err)), 0);
#else
  assert_int_not_equal(store_open("postgres://h/db", NULL, &s, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "postgres store not built"));
#endif
}

static void unusable_sqlite_directory_is_an_error(void **state) {
  (void)state;
  char err[256] = "";
  store *s = NULL;
  assert_int_not_equal(store_open("sqlite:/proc/self/no/such/p.db", NULL, &s, err, sizeof(err)),
                       0);
  assert_null(s);
  assert_true(strlen(err) > 0);
}

static void memory_spec_opens_an_empty_store(void **state) {
  (void)state;
  char err[256];
  store *s = NULL;
  arena *a = arena_create(1024);
  assert_int_equal(store_open("memory", NULL, &s, err, sizeof(err)), 0);
  assert_string_equal(s->ops->name, "memory");
  store_list_result r;
  assert_int_equal(store_list(s, NULL, NULL, 10, a, &r), STORE_OK);
  assert_int_equal(r.total, 0);
  assert_true(store_healthy(s));
  store_destroy(s);
  arena_destroy(a);
}

static void product_copy_is_deep(void **state) {
  (void)state;
  arena *a = arena_create(256);
  char name[] = "name", desc[] = "desc", c0[] = "c0", c1[] = "c1";
  char *cats[] = {c0, c1};
  product src = {.id = "id-1", .name = name, .description = desc, .price = 4.5,
                 .categories = cats, .n_categories = 2, .created_us = 7, .updated_us = 8};
  product dst;
  assert_int_equal(product_copy(a, &src, &dst), 0);
  name[0] = desc[0] = c0[0] = 'X';
  cats[1] = NULL;
  assert_string_equal(dst.id, "id-1");
  assert_string_equal(dst.name, "name");
  assert_string_equal(dst.description, "desc");
  assert_string_equal(dst.categories[0], "c0");
  assert_string_equal(dst.categories[1], "c1");
  assert_true(dst.price == 4.5);
  assert_int_equal(dst.created_us, 7);
  assert_int_equal(dst.updated_us, 8);
  product empty = {.id = "id-2"}; /* NULL strings come out as "" */
  assert_int_equal(product_copy(a, &empty, &dst), 0);
  assert_string_equal(dst.name, "");
  assert_string_equal(dst.description, "");
  assert_int_equal(dst.n_categories, 0);
  arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(good_specs_pass_the_syntax_check),
      cmocka_unit_test(bad_specs_fail_with_one_line),
      cmocka_unit_test(errors_never_show_a_password),
      cmocka_unit_test(redact_replaces_the_password_and_keeps_the_rest),
      cmocka_unit_test(postgres_spec_meets_the_backend_the_build_has),
      cmocka_unit_test(unusable_sqlite_directory_is_an_error),
      cmocka_unit_test(memory_spec_opens_an_empty_store),
      cmocka_unit_test(product_copy_is_deep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
