/* Tests for auth/revocations.c: what a list revokes, and that every
 * malformed line refuses the whole list, naming the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/revocations.h"

static char g_err[512];

static revocations *parse_ok(const char *text) {
  revocations *r = NULL;
  if (revocations_parse(text, strlen(text), &r, g_err, sizeof g_err) != 0)
    fail_msg("refused: %s", g_err);
  return r;
}

static void refused(const char *text, const char *want) {
  revocations *r = (revocations *)1;
  g_err[0] = '\0';
  assert_int_not_equal(revocations_parse(text, strlen(text), &r, g_err, sizeof g_err), 0);
  assert_null(r);
  if (!strstr(g_err, want)) fail_msg("message \"%s\" lacks \"%s\"", g_err, want);
}

static void test_jti_entries_revoke_exactly_that_jti(void **state) {
  (void)state;
  revocations *r = parse_ok("# leaked on 2026-12-01\n"
                            "jti abc\n"
                            "\n"
                            "   \t\n"
                            "jti\tdef   # ticket 42\r\n"
                            "jti abc\n");
  assert_int_equal(revocations_count(r), 2); /* the duplicate merged */
  assert_true(revocations_match(r, "abc", "alice", true, 100));
  assert_true(revocations_match(r, "def", "bob", false, 0));
  assert_false(revocations_match(r, "ab", "alice", true, 100));
  assert_false(revocations_match(r, "abcd", "alice", true, 100));
  assert_false(revocations_match(r, NULL, "alice", true, 100));
  revocations_destroy(r);
}

static void test_sub_entries_revoke_tokens_issued_before(void **state) {
  (void)state;
  revocations *r = parse_ok("sub alice 1000\nsub a#b 5\nsub alice 900\nsub jos\xc3\xa9 7\n");
  assert_true(revocations_match(r, NULL, "jos\xc3\xa9", true, 6)); /* UTF-8 is data */
  assert_true(revocations_match(r, NULL, "alice", true, 999));
  assert_false(revocations_match(r, NULL, "alice", true, 1000)); /* not earlier */
  assert_false(revocations_match(r, "x", "alice", true, 2000));
  assert_true(revocations_match(r, NULL, "alice", false, 0)); /* no iat: not provably newer */
  assert_false(revocations_match(r, NULL, "alicia", true, 1));
  assert_true(revocations_match(r, NULL, "a#b", true, 4)); /* '#' inside a field is data */
  assert_false(revocations_match(r, NULL, NULL, true, 4));
  revocations_destroy(r);
}

static void test_an_empty_list_revokes_nothing(void **state) {
  (void)state;
  revocations *r = parse_ok("");
  assert_int_equal(revocations_count(r), 0);
  assert_false(revocations_match(r, "a", "b", true, 0));
  revocations_destroy(r);
  r = parse_ok("# nothing yet\n");
  assert_false(revocations_match(r, "a", "b", false, 0));
  revocations_destroy(r);
  assert_false(revocations_match(NULL, "a", "b", false, 0));
}

static void test_malformed_lines_refuse_the_list_by_number(void **state) {
  (void)state;
  refused("jti a\nbogus\n", "line 2: expected");
  refused("jti\n", "line 1: expected \"jti VALUE\"");
  refused("jti a b\n", "line 1: expected \"jti VALUE\"");
  refused("sub alice\n", "line 1: expected \"sub VALUE BEFORE\"");
  refused("sub alice 1 2\n", "line 1: expected \"sub VALUE BEFORE\"");
  refused("\n\nsub alice 12x\n", "line 3: BEFORE must be");
  refused("sub alice -5\n", "BEFORE must be");
  refused("sub alice 99999999999999999999\n", "BEFORE must be");
  refused("JTI a\n", "line 1: expected");
  refused("jtix a\n", "line 1: expected");
  refused("jti a\x01\n", "line 1: control character");
  refused("jti ok\njti a\rb\n", "line 2: control character");
  /* Not UTF-8: Latin-1, a lone continuation byte, an overlong '/', a
   * surrogate, a truncated sequence. */
  refused("sub ok 5\nsub jos\xe9 1900000000\n", "line 2: not UTF-8");
  refused("jti a\x80\n", "line 1: not UTF-8");
  refused("jti \xc0\xaf\n", "line 1: not UTF-8");
  refused("jti \xed\xa0\x80\n", "line 1: not UTF-8");
  refused("jti \xe2\x82\n", "line 1: not UTF-8");
  refused("# caf\xe9\n", "line 1: not UTF-8"); /* comments are text too */
  char big[1100] = "jti ";
  memset(big + 4, 'x', 1025);
  big[1029] = '\0';
  refused(big, "longer than 1024");
  const char nul[] = "jti a\0b\n";
  revocations *r;
  assert_int_not_equal(revocations_parse(nul, sizeof nul - 1, &r, g_err, sizeof g_err), 0);
}

static void test_load_file_names_the_file_and_line(void **state) {
  (void)state;
  char path[] = "/tmp/test_revocations_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "jti a\n\nsub b\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  revocations *r;
  assert_int_not_equal(revocations_load_file(path, &r, g_err, sizeof g_err), 0);
  assert_non_null(strstr(g_err, path));
  assert_non_null(strstr(g_err, "line 3"));
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jti_entries_revoke_exactly_that_jti),
      cmocka_unit_test(test_sub_entries_revoke_tokens_issued_before),
      cmocka_unit_test(test_an_empty_list_revokes_nothing),
      cmocka_unit_test(test_malformed_lines_refuse_the_list_by_number),
      cmocka_unit_test(test_load_file_names_the_file_and_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
