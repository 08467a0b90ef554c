/* guard/err_clear.c: ERR_clear_error through the hook clears what OpenSSL's
 * clears and skips only an empty queue: errors pushed (ERR_raise, a failing
 * PEM read) are gone after it; an empty queue stays empty and errno is kept;
 * no mark survives; a new error after a clear is reported alone, without the
 * data of an old one; an entry flagged ERR_FLAG_CLEAR or with code 0 (both
 * peek as 0) is still cleared; another thread's queue is its own. */
#define OPENSSL_SUPPRESS_DEPRECATED /* ERR_get_state: to flag an entry */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "guard/err_clear.h"

static int group_setup(void **state) {
  (void)state;
  char err[256];
  /* Before the start, the hook passes every call on (and still clears). */
  unsigned long passed = err_clear_passed();
  ERR_raise(ERR_LIB_USER, 1);
  ERR_clear_error();
  if (ERR_peek_error() != 0 || err_clear_passed() != passed + 1 || err_clear_skipped() != 0)
    return -1;
  if (err_clear_start(err, sizeof err) != 0) {
    print_error("err_clear_start: %s\n", err);
    return -1;
  }
  return 0;
}

/* One clear through the hook: 1 when it skipped, 0 when it called OpenSSL's. */
static int clear_skipped(void) {
  unsigned long s = err_clear_skipped(), p = err_clear_passed();
  ERR_clear_error();
  assert_int_equal(err_clear_skipped() + err_clear_passed(), s + p + 1);
  return err_clear_skipped() == s + 1;
}

static void assert_empty(void) {
  assert_int_equal(ERR_peek_error(), 0);
  assert_int_equal(ERR_peek_last_error(), 0);
  assert_int_equal(ERR_get_error(), 0);
}

static void test_pushed_errors_are_cleared(void **state) {
  (void)state;
  ERR_raise(ERR_LIB_USER, 7);
  ERR_raise_data(ERR_LIB_USER, 8, "detail %d", 8);
  BIO *b = BIO_new_mem_buf("-----BEGIN CERTIFICATE-----\nnot base64\n", -1);
  assert_non_null(b);
  assert_null(PEM_read_bio_X509(b, NULL, NULL, NULL));
  BIO_free(b);
  assert_int_equal(ERR_GET_REASON(ERR_peek_error()), 7);
  assert_int_not_equal(ERR_peek_last_error(), 0);
  assert_false(clear_skipped());
  assert_empty();
}

static void test_an_empty_queue_stays_empty_and_errno_is_kept(void **state) {
  (void)state;
  ERR_clear_error(); /* whatever an earlier test left */
  assert_true(clear_skipped());
  errno = EAGAIN;
  assert_true(clear_skipped());
  assert_int_equal(errno, EAGAIN);
  assert_empty();
  assert_true(clear_skipped());
}

static void test_no_mark_survives_a_clear(void **state) {
  (void)state;
  ERR_clear_error();
  assert_int_equal(ERR_set_mark(), 0); /* none on an empty queue */
  assert_true(clear_skipped());
  ERR_raise(ERR_LIB_USER, 1);
  assert_int_equal(ERR_set_mark(), 1);
  ERR_raise(ERR_LIB_USER, 2);
  assert_false(clear_skipped());
  assert_int_equal(ERR_pop_to_mark(), 0);
  assert_int_equal(ERR_clear_last_mark(), 0);
  assert_empty();
  /* A mark set after the clear pops only what came after it. */
  ERR_raise(ERR_LIB_USER, 3);
  assert_int_equal(ERR_set_mark(), 1);
  ERR_raise(ERR_LIB_USER, 4);
  assert_int_equal(ERR_pop_to_mark(), 1);
  assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), 3);
  assert_false(clear_skipped());
  assert_empty();
}

static void test_a_new_error_after_a_clear_is_reported_alone(void **state) {
  (void)state;
  ERR_clear_error();
  ERR_raise_data(ERR_LIB_USER, 5, "old data");
  const char *file = NULL, *func = NULL, *data = NULL;
  int line = 0, flags = 0;
  /* Popped with its data: the slot keeps the data buffer and the file and
   * function copies, which OpenSSL's clear empties and frees. */
  assert_int_equal(ERR_GET_REASON(ERR_get_error_all(&file, &line, &func, &data, &flags)), 5);
  assert_string_equal(data, "old data");
  assert_int_equal(ERR_peek_error(), 0);
  /* The queue is empty, the slot is not: OpenSSL's clear empties the kept
   * buffer (not freed) that `data` still points at, and so must the hook. */
  assert_false(clear_skipped());
  assert_string_equal(data, "");
  assert_true(clear_skipped());
  ERR_raise(ERR_LIB_USER, 6);
  unsigned long code = ERR_peek_last_error();
  assert_int_equal(ERR_GET_REASON(code), 6);
  assert_int_equal(ERR_peek_error(), code);
  data = NULL;
  flags = -1;
  assert_int_equal(ERR_get_error_all(NULL, NULL, NULL, &data, &flags), code);
  assert_string_equal(data, "");
  assert_int_equal(flags & ERR_TXT_STRING, 0);
  assert_empty();
}

/* Entries that peek as 0 are still in the queue: an ERR_peek_error() == 0
 * test would skip the clear and a later error would come out behind them. */
static void test_entries_that_peek_as_zero_are_cleared(void **state) {
  (void)state;
  ERR_clear_error();
  ERR_raise(0, 0); /* code 0 */
  assert_int_equal(ERR_peek_error(), 0);
  unsigned long passed = err_clear_passed();
  ERR_clear_error();
  ERR_raise(ERR_LIB_USER, 9);
  assert_int_equal(ERR_GET_REASON(ERR_peek_error()), 9); /* not the stale 0 first */
  assert_int_equal(err_clear_passed(), passed + 1);
  assert_false(clear_skipped());

  /* ERR_FLAG_CLEAR, as OpenSSL's constant-time paths leave an entry. */
  ERR_raise(ERR_LIB_USER, 10);
  ERR_STATE *es = ERR_get_state();
  assert_non_null(es);
  es->err_flags[es->top] |= ERR_FLAG_CLEAR;
  assert_false(clear_skipped());
  assert_empty();
  assert_true(clear_skipped());
}

static void *other_thread(void *arg) {
  int *skipped = arg;
  *skipped = clear_skipped() ? 1 : 0; /* this thread's queue is empty */
  ERR_raise(ERR_LIB_USER, 12);
  *skipped += clear_skipped() ? 10 : 0;
  *skipped += ERR_peek_error() == 0 ? 100 : 0;
  return NULL;
}

static void test_each_thread_has_its_own_queue(void **state) {
  (void)state;
  ERR_clear_error();
  ERR_raise(ERR_LIB_USER, 11);
  int skipped = -1;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, other_thread, &skipped), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(skipped, 101); /* skipped on empty, cleared its own error */
  assert_int_equal(ERR_GET_REASON(ERR_peek_error()), 11);
  assert_false(clear_skipped());
  assert_empty();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pushed_errors_are_cleared),
      cmocka_unit_test(test_an_empty_queue_stays_empty_and_errno_is_kept),
      cmocka_unit_test(test_no_mark_survives_a_clear),
      cmocka_unit_test(test_a_new_error_after_a_clear_is_reported_alone),
      cmocka_unit_test(test_entries_that_peek_as_zero_are_cleared),
      cmocka_unit_test(test_each_thread_has_its_own_queue),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
