/* See tls_tune.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "guard/tls_tune.h"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdio.h>

typedef void (*accept_state_fn)(SSL *);

/* Written once by tls_tune_start, before any server exists. */
static _Atomic int g_on;
static _Atomic int g_tls13_only;
static _Atomic unsigned long g_applied, g_failed;
static _Atomic(accept_state_fn) g_real;

static accept_state_fn real_accept_state(void) {
  accept_state_fn fn = atomic_load_explicit(&g_real, memory_order_relaxed);
  if (!fn) {
    fn = (accept_state_fn)dlsym(RTLD_NEXT, "SSL_set_accept_state");
    atomic_store_explicit(&g_real, fn, memory_order_relaxed);
  }
  return fn;
}

/* The settings on one server SSL. OpenSSL's errors from a refused setter
 * are popped: the core reads the error queue after the handshake steps. */
static bool apply(SSL *ssl) {
  ERR_set_mark();
  /* The minimum version first and on its own: the operator asked for it, so
   * it must not depend on the speed settings below succeeding. Should it
   * fail, the SSL is left with no version it may agree (SSL 3 alone, which
   * OpenSSL 3 does not build): the handshake fails closed. */
  bool ok = true;
  if (atomic_load_explicit(&g_tls13_only, memory_order_relaxed) &&
      SSL_set_min_proto_version(ssl, TLS1_3_VERSION) != 1) {
    SSL_set_max_proto_version(ssl, SSL3_VERSION);
    ok = false;
  }
  if (SSL_set1_groups_list(ssl, TLS_TUNE_GROUPS) != 1) ok = false;
  if (SSL_set_num_tickets(ssl, TLS_TUNE_TICKETS) != 1) ok = false;
  ERR_pop_to_mark();
  return ok;
}

void SSL_set_accept_state(SSL *ssl) {
  accept_state_fn real = real_accept_state();
  if (real) real(ssl);
  if (!ssl || !atomic_load_explicit(&g_on, memory_order_acquire)) return;
  if (apply(ssl))
    atomic_fetch_add_explicit(&g_applied, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&g_failed, 1, memory_order_relaxed);
}

/* An SSL as the core makes one (P-256 alone on its context), put in accept
 * state through the symbol the dynamic linker gives every caller: it must
 * come out with our groups, ticket count and minimum version. */
static int prove(char *err, size_t errlen) {
  int rc = -1;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  SSL *ssl = NULL;
  accept_state_fn bound = (accept_state_fn)dlsym(RTLD_DEFAULT, "SSL_set_accept_state");
  if (bound != SSL_set_accept_state) {
    snprintf(err, errlen, "the TLS settings hook is not in the path (SSL_set_accept_state binds "
             "elsewhere: a statically linked TLS library?)");
    goto done;
  }
  if (!ctx || SSL_CTX_set1_groups_list(ctx, "P-256") != 1 || !(ssl = SSL_new(ctx))) {
    snprintf(err, errlen, "the TLS settings hook cannot make a test SSL");
    goto done;
  }
  /* apply() counts only when every setter (the groups included) took. */
  unsigned long before = atomic_load(&g_applied);
  bound(ssl);
  int want_min = atomic_load(&g_tls13_only) ? TLS1_3_VERSION : 0;
  if (atomic_load(&g_applied) != before + 1 || SSL_get_num_tickets(ssl) != TLS_TUNE_TICKETS ||
      (want_min && SSL_get_min_proto_version(ssl) != want_min)) {
    snprintf(err, errlen, "the TLS settings hook did not apply its settings (%s)",
             atomic_load(&g_applied) == before ? "not called" : "refused by OpenSSL");
    goto done;
  }
  atomic_fetch_sub(&g_applied, 1); /* the test SSL is not a connection */
  rc = 0;
done:
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return rc;
}

int tls_tune_start(const tls_tune_opts *o, char *err, size_t errlen) {
  if (!real_accept_state()) {
    snprintf(err, errlen, "the TLS settings hook finds no OpenSSL SSL_set_accept_state");
    return -1;
  }
  atomic_store(&g_tls13_only, o->tls13_only);
  atomic_store_explicit(&g_on, 1, memory_order_release);
  if (prove(err, errlen) != 0) {
    atomic_store(&g_on, 0);
    return -1;
  }
  return 0;
}

unsigned long tls_tune_applied(void) { return atomic_load(&g_applied); }
unsigned long tls_tune_failed(void) { return atomic_load(&g_failed); }
