/* Tests for src/core/log.c: every line is one JSON object, client text is
 * escaped, buffered lines all arrive whole. stderr is redirected to a file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static int saved_stderr = -1;
static FILE *capture;

static int redirect(void **state) {
  (void)state;
  capture = tmpfile();
  fflush(stderr);
  saved_stderr = dup(STDERR_FILENO);
  dup2(fileno(capture), STDERR_FILENO);
  return 0;
}

static int restore(void **state) {
  (void)state;
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  fclose(capture);
  return 0;
}

/* Everything written so far, then the capture is emptied. */
static char *captured(void) {
  long n = lseek(fileno(capture), 0, SEEK_END);
  char *buf = calloc(1, (size_t)n + 1);
  assert_int_equal(pread(fileno(capture), buf, (size_t)n, 0), n);
  assert_int_equal(ftruncate(fileno(capture), 0), 0);
  lseek(fileno(capture), 0, SEEK_SET);
  return buf;
}

static void test_json_line_has_time_level_and_fields(void **state) {
  (void)state;
  log_set_format(LOG_FORMAT_JSON);
  log_line l;
  log_line_begin(&l, LOG_WARN, "hello");
  log_line_str(&l, "method", "/a.B/C");
  log_line_int(&l, "n", -42);
  log_line_fixed(&l, "ms", 1500, 3);
  log_line_fixed(&l, "f1", 1234, 3);
  log_line_fixed(&l, "f2", 5, 3);
  log_line_fixed(&l, "f3", -1500, 3);
  log_line_int(&l, "big", INT64_MIN);
  log_line_emit(&l);
  char *out = captured();
  json_error_t err;
  json_t *j = json_loads(out, 0, &err);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
  assert_string_equal(json_string_value(json_object_get(j, "msg")), "hello");
  assert_string_equal(json_string_value(json_object_get(j, "method")), "/a.B/C");
  assert_int_equal(json_integer_value(json_object_get(j, "n")), -42);
  assert_true(json_real_value(json_object_get(j, "ms")) == 1.5);
  assert_non_null(strstr(out, "\"f1\":1.234,\"f2\":0.005,\"f3\":-1.500,"));
  assert_non_null(strstr(out, "\"big\":-9223372036854775808"));
  const char *t = json_string_value(json_object_get(j, "time"));
  assert_int_equal(strlen(t), strlen("2026-11-25T07:00:00.123456Z"));
  assert_int_equal(t[strlen(t) - 1], 'Z');
  json_decref(j);
  free(out);
}

static void test_control_characters_and_bad_utf8_are_escaped(void **state) {
  (void)state;
  log_set_format(LOG_FORMAT_JSON);
  static const char evil[] = "a\nb\x1b[31m\"\\\xff\xc3\xa9\x7f";
  log_line l;
  log_line_begin(&l, LOG_INFO, NULL);
  log_line_strn(&l, "peer", evil, sizeof evil - 1);
  log_line_emit(&l);
  char *out = captured();
  /* Exactly one line, with no raw control byte in it. */
  assert_non_null(strchr(out, '\n'));
  assert_int_equal(strchr(out, '\n')[1], '\0');
  for (char *p = out; *p != '\n'; p++) assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "peer")),
                      "a\nb\x1b[31m\"\\\xef\xbf\xbd\xc3\xa9\x7f");
  json_decref(j);
  free(out);
}

static void test_c1_controls_and_line_separators_are_escaped(void **state) {
  (void)state;
  log_set_format(LOG_FORMAT_JSON);
  log_line l;
  log_line_begin(&l, LOG_INFO, NULL);
  log_line_str(&l, "sub", "a\xc2\x9b" "b\xe2\x80\xa8" "c\xc2\xa0");
  log_line_emit(&l);
  char *out = captured();
  assert_non_null(strstr(out, "\"sub\":\"a\\u009bb\\u2028c\xc2\xa0\""));
  free(out);
}

static void test_overlong_line_stays_one_valid_object(void **state) {
  (void)state;
  log_set_format(LOG_FORMAT_JSON);
  char big[3 * LOG_LINE_MAX];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  log_line l;
  log_line_begin(&l, LOG_INFO, NULL);
  log_line_str(&l, "a", big);
  log_line_str(&l, "b", big);
  log_line_emit(&l);
  char *out = captured();
  assert_true(strlen(out) <= LOG_LINE_MAX + 32);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  assert_true(json_is_true(json_object_get(j, "truncated")));
  json_decref(j);
  free(out);
}

static void test_text_format_is_not_json(void **state) {
  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  log_line l;
  log_line_begin(&l, LOG_INFO, NULL);
  log_line_str(&l, "code", "OK");
  log_line_emit(&l);
  log_set_format(LOG_FORMAT_JSON);
  char *out = captured();
  assert_null(json_loads(out, 0, NULL));
  assert_non_null(strstr(out, " info code=\"OK\"\n"));
  free(out);
}

#define THREADS 4
#define LINES 2000

static void *writer(void *arg) {
  for (int i = 0; i < LINES; i++) {
    log_line l;
    log_line_begin(&l, LOG_INFO, NULL);
    log_line_int(&l, "thread", (int64_t)(intptr_t)arg);
    log_line_int(&l, "i", i);
    log_line_emit(&l);
  }
  return NULL;
}

static void test_buffered_lines_from_many_threads_all_arrive_whole(void **state) {
  (void)state;
  log_set_format(LOG_FORMAT_JSON);
  assert_int_equal(log_start_buffering(), 0);
  pthread_t t[THREADS];
  for (intptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, writer, (void *)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  log_stop_buffering();
  char *out = captured();
  int seen[THREADS] = {0};
  int lines = 0;
  for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
    *nl = '\0';
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    int th = (int)json_integer_value(json_object_get(j, "thread"));
    int i = (int)json_integer_value(json_object_get(j, "i"));
    assert_int_equal(i, seen[th]); /* each thread's lines in order, none lost */
    seen[th]++;
    lines++;
    json_decref(j);
  }
  assert_int_equal(lines, THREADS * LINES);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_line_has_time_level_and_fields),
      cmocka_unit_test(test_control_characters_and_bad_utf8_are_escaped),
      cmocka_unit_test(test_c1_controls_and_line_separators_are_escaped),
      cmocka_unit_test(test_overlong_line_stays_one_valid_object),
      cmocka_unit_test(test_text_format_is_not_json),
      cmocka_unit_test(test_buffered_lines_from_many_threads_all_arrive_whole),
  };
  return cmocka_run_group_tests(tests, redirect, restore);
}
