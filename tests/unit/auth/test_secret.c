/* auth/secret.c: loading the HS256 secret from a file or a value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/secret.h"
#include "support/unprivileged.h"

static char dir[64];
static char path[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/test_secret.XXXXXX");
  return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Writes content[0..len) to a fresh file and returns its path. */
static const char *write_file(const char *name, const void *content, size_t len) {
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(content, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

static void assert_loads_as(const char *content, size_t len, const char *want, size_t want_len) {
  secret s = {0};
  char err[256] = "";
  assert_int_equal(secret_load_file(write_file("s", content, len), &s, err, sizeof(err)), 0);
  assert_int_equal(s.len, want_len);
  assert_memory_equal(s.bytes, want, want_len);
  secret_wipe(&s);
  assert_null(s.bytes);
  assert_int_equal(s.len, 0);
}

#define S40 "0123456789abcdef0123456789abcdef01234567"

static void test_only_the_trailing_newline_is_stripped(void **state) {
  (void)state;
  assert_loads_as(S40, 40, S40, 40);
  assert_loads_as(S40 "\n", 41, S40, 40);
  assert_loads_as(S40 "\r\n", 42, S40, 40);
  assert_loads_as(S40 "\n\n", 42, S40 "\n", 41);
  assert_loads_as(S40 " ", 41, S40 " ", 41);
  assert_loads_as(" " S40 "\t\n", 43, " " S40 "\t", 42);
  assert_loads_as(S40 "\r", 41, S40 "\r", 41);
}

static void test_binary_bytes_are_kept(void **state) {
  (void)state;
  const char bin[] = "abc\0def\xff\x01" S40;
  assert_loads_as(bin, sizeof(bin) - 1, bin, sizeof(bin) - 1);
}

static void test_size_limit_is_4096_bytes(void **state) {
  (void)state;
  static char big[SECRET_MAX_LEN + 3];
  memset(big, 'k', sizeof(big));
  assert_loads_as(big, SECRET_MAX_LEN, big, SECRET_MAX_LEN);
  big[SECRET_MAX_LEN] = '\r';
  big[SECRET_MAX_LEN + 1] = '\n';
  assert_loads_as(big, SECRET_MAX_LEN + 2, big, SECRET_MAX_LEN);

  memset(big, 'k', sizeof(big));
  secret s = {0};
  char err[256] = "";
  assert_int_not_equal(
      secret_load_file(write_file("big", big, SECRET_MAX_LEN + 1), &s, err, sizeof(err)), 0);
  assert_null(s.bytes);
  assert_non_null(strstr(err, path));
  assert_null(strstr(err, "kkkk"));
}

static void test_errors_name_the_path_never_the_content(void **state) {
  (void)state;
  secret s = {0};
  char err[256] = "";
  snprintf(path, sizeof(path), "%s/does-not-exist", dir);
  assert_int_not_equal(secret_load_file(path, &s, err, sizeof(err)), 0);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "No such file"));

  assert_int_not_equal(secret_load_file(dir, &s, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "not a regular file"));

  /* Unreadable: as root too (support/unprivileged.h), so this case runs
   * wherever the suite runs. */
  write_file("unreadable", S40, 40);
  assert_int_equal(chmod(path, 0), 0);
  assert_int_equal(chmod(dir, 0711), 0);
  fs_identity id;
  fs_identity_drop(&id);
  int rc = secret_load_file(path, &s, err, sizeof(err));
  fs_identity_restore(&id);
  assert_int_not_equal(rc, 0);
  assert_null(s.bytes);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "Permission denied"));
  assert_null(strstr(err, "0123456789"));
}

static void test_fifo_is_refused_without_blocking(void **state) {
  (void)state;
  snprintf(path, sizeof(path), "%s/fifo", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  secret s = {0};
  char err[256] = "";
  assert_int_not_equal(secret_load_file(path, &s, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "not a regular file"));
  assert_int_not_equal(secret_load_file("/dev/zero", &s, err, sizeof(err)), 0);
}

static void test_check_requires_32_bytes(void **state) {
  (void)state;
  secret s = {0};
  char err[256] = "";
  assert_int_equal(secret_from_value("0123456789abcdef0123456789abcde", &s, err, sizeof(err)), 0);
  assert_int_equal(s.len, 31);
  assert_int_not_equal(secret_check(&s, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "31 bytes"));
  assert_null(strstr(err, "0123"));
  secret_wipe(&s);

  assert_int_equal(secret_from_value("0123456789abcdef0123456789abcdef", &s, err, sizeof(err)), 0);
  assert_int_equal(secret_check(&s, err, sizeof(err)), 0);
  secret_wipe(&s);

  assert_int_equal(secret_load_file(write_file("empty", "", 0), &s, err, sizeof(err)), 0);
  assert_int_equal(s.len, 0);
  assert_int_not_equal(secret_check(&s, err, sizeof(err)), 0);
  secret_wipe(&s);
}

static void test_value_is_copied_unchanged(void **state) {
  (void)state;
  char value[] = S40 "\n";
  secret s = {0};
  assert_int_equal(secret_from_value(value, &s, NULL, 0), 0);
  memset(value, 0, sizeof(value)); /* the caller may wipe its own copy */
  assert_int_equal(s.len, 41);    /* a value is taken as is, newline included */
  assert_memory_equal(s.bytes, S40 "\n", 41);
  secret_wipe(&s);
  secret_wipe(&s); /* twice is harmless */
}

static void test_value_longer_than_limit_is_refused(void **state) {
  (void)state;
  static char big[SECRET_MAX_LEN + 2];
  memset(big, 'v', SECRET_MAX_LEN + 1);
  secret s = {0};
  char err[256] = "";
  assert_int_not_equal(secret_from_value(big, &s, err, sizeof(err)), 0);
  assert_null(s.bytes);
  assert_null(strstr(err, "vvvv"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_only_the_trailing_newline_is_stripped),
      cmocka_unit_test(test_binary_bytes_are_kept),
      cmocka_unit_test(test_size_limit_is_4096_bytes),
      cmocka_unit_test(test_errors_name_the_path_never_the_content),
      cmocka_unit_test(test_fifo_is_refused_without_blocking),
      cmocka_unit_test(test_check_requires_32_bytes),
      cmocka_unit_test(test_value_is_copied_unchanged),
      cmocka_unit_test(test_value_longer_than_limit_is_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
