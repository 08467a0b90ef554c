/* guard/tls_tune.c: the settings land on a server SSL made like the core's
 * (P-256 alone on its context), through the interposed SSL_set_accept_state,
 * and real in-memory handshakes show them: an X25519-only client is refused
 * before the hook starts and served with X25519 after it; one ticket; TLS
 * 1.2 refused when TLS 1.3 only is asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "guard/tls_tune.h"

static EVP_PKEY *g_key;
static X509 *g_cert;

static int group_setup(void **state) {
  (void)state;
  g_key = EVP_EC_gen("P-256");
  g_cert = X509_new();
  if (!g_key || !g_cert) return -1;
  X509_set_version(g_cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(g_cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(g_cert), 3600);
  X509_NAME *n = X509_get_subject_name(g_cert);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(g_cert, n);
  X509_set_pubkey(g_cert, g_key);
  return X509_sign(g_cert, g_key, EVP_sha256()) > 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  X509_free(g_cert);
  EVP_PKEY_free(g_key);
  return 0;
}

/* The server context as the 1.51 core makes it: TLS 1.2-1.3, P-256 alone. */
static SSL_CTX *core_like_server_ctx(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(ctx);
  assert_int_equal(SSL_CTX_use_certificate(ctx, g_cert), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(ctx, g_key), 1);
  assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
  assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION), 1);
  assert_int_equal(SSL_CTX_set1_groups_list(ctx, "P-256"), 1);
  return ctx;
}

typedef struct outcome {
  bool ok;
  int group;          /* NID of the key exchange, 0 when it failed */
  size_t tickets;     /* the server SSL's ticket count setting */
} outcome;

/* One handshake over a memory BIO pair; the client offers `groups` and at
 * most `max_version`. Bounded: a handful of rounds finish any handshake. */
static outcome handshake(const char *groups, int max_version) {
  outcome o = {0};
  SSL_CTX *sctx = core_like_server_ctx();
  SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(cctx);
  assert_int_equal(SSL_CTX_set1_groups_list(cctx, groups), 1);
  assert_int_equal(SSL_CTX_set_max_proto_version(cctx, max_version), 1);
  SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
  BIO *sb = NULL, *cb = NULL;
  assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
  SSL_set_bio(s, sb, sb);
  SSL_set_bio(c, cb, cb);
  SSL_set_accept_state(s); /* as the core does: the interposed one */
  SSL_set_connect_state(c);
  int sr = 0, cr = 0;
  for (int i = 0; i < 20 && (sr != 1 || cr != 1); i++) {
    if (cr != 1) cr = SSL_do_handshake(c);
    if (sr != 1) sr = SSL_do_handshake(s);
    if ((sr <= 0 && SSL_get_error(s, sr) == SSL_ERROR_SSL) ||
        (cr <= 0 && SSL_get_error(c, cr) == SSL_ERROR_SSL))
      break;
  }
  o.ok = sr == 1 && cr == 1;
  o.group = o.ok ? SSL_get_negotiated_group(s) : 0;
  o.tickets = SSL_get_num_tickets(s);
  ERR_clear_error();
  SSL_free(s);
  SSL_free(c);
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  return o;
}

static void test_x25519_client_is_refused_by_the_core_alone_and_served_with_the_hook(void **state) {
  (void)state;
  outcome before = handshake("X25519", TLS1_3_VERSION);
  assert_false(before.ok); /* the core's P-256 alone: no common group */
  assert_int_equal(before.tickets, 2); /* OpenSSL's default */
  unsigned long applied = tls_tune_applied();

  char err[256];
  tls_tune_opts o = {.tls13_only = false};
  assert_int_equal(tls_tune_start(&o, err, sizeof err), 0);

  outcome after = handshake("X25519", TLS1_3_VERSION);
  assert_true(after.ok);
  assert_int_equal(after.group, NID_X25519);
  assert_int_equal(after.tickets, TLS_TUNE_TICKETS);
  /* P-256 stays for clients without X25519, and TLS 1.2 stays on. */
  outcome p256 = handshake("P-256", TLS1_3_VERSION);
  assert_true(p256.ok);
  assert_int_equal(p256.group, NID_X9_62_prime256v1);
  assert_true(handshake("X25519:P-256", TLS1_2_VERSION).ok);
  assert_int_equal(tls_tune_applied(), applied + 3);
  assert_int_equal(tls_tune_failed(), 0);
}

static void test_tls13_only_refuses_a_tls12_client(void **state) {
  (void)state;
  char err[256];
  tls_tune_opts o = {.tls13_only = true};
  assert_int_equal(tls_tune_start(&o, err, sizeof err), 0);
  assert_false(handshake("X25519:P-256", TLS1_2_VERSION).ok);
  assert_true(handshake("X25519:P-256", TLS1_3_VERSION).ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_x25519_client_is_refused_by_the_core_alone_and_served_with_the_hook),
      cmocka_unit_test(test_tls13_only_refuses_a_tls12_client),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
