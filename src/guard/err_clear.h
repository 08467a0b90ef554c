#ifndef PRODUCT_GUARD_ERR_CLEAR_H
#define PRODUCT_GUARD_ERR_CLEAR_H
/* ERR_clear_error that returns at once when there is nothing to clear.
 *
 * The 1.51 core's TLS frame protector calls ERR_clear_error about five
 * times per call, error or not; OpenSSL 3.0's walks and resets all 16 slots
 * of the thread's error queue every time (~830 instructions): skipping it
 * saves about 11 % of the TLS cost per call (docs/performance.md). product-server defines
 * ERR_clear_error: when the calling thread's queue is empty and no slot
 * holds anything the real one would free or truncate, it returns; else it
 * calls the real one (dlsym RTLD_NEXT). Why that is exact: err_clear.c.
 *
 * It reads OpenSSL 3.0's ERR_STATE (public in its err.h); err_clear_start()
 * proves at start that the hook is in the path and that the layout is the
 * library's (an error pushed is seen where the header says). Until then,
 * and if the proof fails, every call goes to the real one. Only
 * product-server and this layer's tests link it. */
#include <stddef.h>

/* 0 when the hook is in the path and its fast path is on; else -1 and
 * `err` says why (every call then goes to OpenSSL's). */
int err_clear_start(char *err, size_t errlen);

/* Calls that returned at once, and calls passed to OpenSSL's. */
unsigned long err_clear_skipped(void);
unsigned long err_clear_passed(void);

#endif
