/* See err_clear.h.
 *
 * Why skipping is exact (OpenSSL 3.0, crypto/err/err.c and err_local.h).
 * The queue is a ring of ERR_NUM_ERRORS slots; the errors are the slots in
 * (bottom, top]. The real ERR_clear_error does err_clear(es, i, 0) on every
 * slot and sets top = bottom = 0. We skip only when top == bottom (no entry
 * at all, an ERR_FLAG_CLEAR one included: those still sit between bottom
 * and top until a reader drops them) and when, in every slot, err_file and
 * err_func are NULL and err_data is NULL or an empty string. Then:
 * - ERR_get_error/ERR_peek_error/ERR_peek_last_error and the _all forms
 *   read only (bottom, top]: empty either way, so 0 either way. (We do not
 *   test ERR_peek_error() == 0: an entry whose code is 0 also peeks as 0
 *   and would survive the skip.)
 * - Marks: ERR_set_mark on an empty queue sets none and returns 0;
 *   ERR_pop_to_mark and ERR_clear_last_mark walk (bottom, top] only. A
 *   mark, flag, code or line left in a slot outside it is never read: a
 *   slot joins the queue only through ERR_new, which clears it first.
 * - The slots' buffers: what err_clear would do to a slot outside the queue
 *   and a caller could still see is free the file/function copies and
 *   truncate a kept data buffer to "" (pointers ERR_get_error_all handed
 *   out for popped errors). We skip only when there is none of that.
 * - top and bottom keep their values instead of 0: a ring position, which
 *   no function reports and which does not change how many errors it holds.
 * - errno: ERR_get_state saves and restores it as ERR_clear_error does, and
 *   nothing else here sets it (the one dlsym is wrapped); SSL_get_error
 *   after SSL_read reads the queue and errno, both as they were.
 * The state is the calling thread's (thread-local), so the test and the
 * skip see no other thread's writes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* ERR_get_state and struct err_state_st are deprecated in 3.0, not gone:
 * they are what lets the test be exact and cheap. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "guard/err_clear.h"

#include <dlfcn.h>
#include <errno.h>
#include <openssl/err.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*clear_fn)(void);

static _Atomic(clear_fn) g_real;
static _Atomic int g_fast; /* set once the layout is proven */
static _Atomic unsigned long g_skipped, g_passed;

/* Resolved on first use, as h2_guard's REAL(): the store is idempotent, so
 * a race only resolves twice. dlsym may set errno; the caller's is kept. */
static clear_fn real_clear(void) {
  clear_fn fn = atomic_load_explicit(&g_real, memory_order_relaxed);
  if (!fn) {
    int saved = errno;
    fn = (clear_fn)dlsym(RTLD_NEXT, "ERR_clear_error");
    errno = saved;
    atomic_store_explicit(&g_real, fn, memory_order_relaxed);
  }
  return fn;
}

/* Nothing the real clear would change that anyone can see (above). The
 * file and function pointers are OR-ed without a branch (the compiler
 * vectorises it); a data buffer is read only where there is one. */
static bool nothing_to_clear(const ERR_STATE *es) {
  if (es->top != es->bottom) return false;
  uintptr_t any = 0;
  for (int i = 0; i < ERR_NUM_ERRORS; i++)
    any |= (uintptr_t)es->err_file[i] | (uintptr_t)es->err_func[i];
  if (any) return false;
  for (int i = 0; i < ERR_NUM_ERRORS; i++)
    if (es->err_data[i] && es->err_data[i][0]) return false;
  return true;
}

void ERR_clear_error(void) {
  if (atomic_load_explicit(&g_fast, memory_order_relaxed)) {
    const ERR_STATE *es = ERR_get_state();
    if (es && nothing_to_clear(es)) {
      atomic_fetch_add_explicit(&g_skipped, 1, memory_order_relaxed);
      return;
    }
  }
  atomic_fetch_add_explicit(&g_passed, 1, memory_order_relaxed);
  clear_fn real = real_clear();
  if (real) real();
}

/* An error pushed with data must show in the slot the header says, the
 * real clear must empty it, and a call through the dynamic linker must
 * reach this definition. */
static int prove(char *err, size_t errlen) {
  clear_fn bound = (clear_fn)dlsym(RTLD_DEFAULT, "ERR_clear_error");
  if (bound != ERR_clear_error) {
    snprintf(err, errlen, "the ERR_clear_error hook is not in the path (it binds elsewhere: a "
             "statically linked TLS library?)");
    return -1;
  }
  real_clear()();
  const ERR_STATE *es = ERR_get_state();
  if (!es) {
    snprintf(err, errlen, "the ERR_clear_error hook cannot read OpenSSL's error state");
    return -1;
  }
  bool empty_ok = es->top == es->bottom;
  ERR_raise_data(ERR_LIB_USER, 42, "err-clear-probe");
  unsigned long code = ERR_peek_last_error();
  int top = es->top;
  bool seen = code == ERR_PACK(ERR_LIB_USER, 0, 42) && top != es->bottom && top >= 0 &&
              top < ERR_NUM_ERRORS && es->err_buffer[top] == code && es->err_data[top] &&
              strcmp(es->err_data[top], "err-clear-probe") == 0;
  real_clear()();
  bool cleared = ERR_peek_error() == 0 && nothing_to_clear(es);
  if (!empty_ok || !seen || !cleared) {
    snprintf(err, errlen, "the ERR_clear_error hook does not recognise OpenSSL's error state (%s): "
             "not the OpenSSL 3.0 the server was built for", !seen ? "an error pushed is not "
             "where err.h says" : "not empty after a clear");
    return -1;
  }
  return 0;
}

int err_clear_start(char *err, size_t errlen) {
  if (!real_clear()) {
    snprintf(err, errlen, "the ERR_clear_error hook finds no OpenSSL ERR_clear_error");
    return -1;
  }
  if (prove(err, errlen) != 0) return -1;
  atomic_store_explicit(&g_fast, 1, memory_order_release);
  return 0;
}

unsigned long err_clear_skipped(void) { return atomic_load(&g_skipped); }
unsigned long err_clear_passed(void) { return atomic_load(&g_passed); }
