/* Tests for core/file_watch.c: a change is reported once, looks are spaced
 * by the interval (driven with explicit times, not the clock), and a
 * rewritten, replaced, deleted or re-pointed (symlink) file counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/call.h"
#include "core/file_watch.h"

static char dir[64], path[128];

static void put(const char *p, const char *text) {
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/test_file_watch_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/f", dir);
  put(path, "one");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

#define SEC INT64_C(1000000000)

static void test_changes_are_reported_once_and_only_after_the_interval(void **state) {
  (void)state;
  const char *paths[] = {path, NULL};
  file_watch *w = file_watch_create(paths, 2, 1000);
  assert_non_null(w);
  int64_t t = clock_mono_ns();
  assert_false(file_watch_changed(w, t + 2 * SEC)); /* nothing changed */
  put(path, "two!"); /* another size */
  assert_false(file_watch_changed(w, t + 2 * SEC + SEC / 2)); /* within the interval: no look */
  assert_true(file_watch_changed(w, t + 3 * SEC));
  assert_false(file_watch_changed(w, t + 4 * SEC)); /* once */
  file_watch_rearm(w);
  assert_true(file_watch_changed(w, t + 5 * SEC));
  file_watch_destroy(w);
}

static void test_replace_delete_and_symlink_swap_count(void **state) {
  (void)state;
  char other[160], link[160], tmp[160];
  snprintf(other, sizeof other, "%s/g", dir);
  snprintf(link, sizeof link, "%s/link", dir);
  snprintf(tmp, sizeof tmp, "%s/link.tmp", dir);
  put(other, "one"); /* same size and content as f */
  assert_int_equal(symlink("f", link), 0);
  const char *paths[] = {link};
  file_watch *w = file_watch_create(paths, 1, 1000);
  assert_false(file_watch_look_now(w));
  /* Re-pointed to a file of the same size: stat follows the link. */
  assert_int_equal(symlink("g", tmp), 0);
  assert_int_equal(rename(tmp, link), 0);
  assert_true(file_watch_look_now(w));
  assert_false(file_watch_look_now(w));
  assert_int_equal(unlink(other), 0); /* dangling: stat fails */
  assert_true(file_watch_look_now(w));
  assert_false(file_watch_look_now(w));
  put(other, "back");
  assert_true(file_watch_look_now(w));
  file_watch_destroy(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_changes_are_reported_once_and_only_after_the_interval,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_replace_delete_and_symlink_swap_count, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
