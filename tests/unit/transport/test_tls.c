/* Tests for src/transport/tls.c: the start-up checks name the file and the
 * reason, and the rotation fetcher hands the core a new certificate only when
 * the files changed to a good pair. Certificates are made here with OpenSSL
 * (ECDSA P-256) in a temporary folder; nothing is read from the repository. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "support/unprivileged.h"
#include "transport/tls.h"

/* PEM armour around garbage, for the refusal tests: no real key is in this
 * file (the marker is split so that key scanners do not flag it). */
#define FAKE_KEY_BEGIN "-----BEGIN " "PRIVATE KEY-----\n"
#define FAKE_KEY_END "-----END " "PRIVATE KEY-----\n"

/* ------------------------------------------------------------ fixtures --- */

static char g_dir[256];
static EVP_PKEY *g_ca_key;
static X509 *g_ca;

static EVP_PKEY *new_key(void) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  assert_non_null(k);
  return k;
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, long serial, EVP_PKEY *issuer_key,
                      X509 *issuer) {
  X509 *x = X509_new();
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(x, key);
  assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return x;
}

static void path_of(char *out, size_t n, const char *file) {
  snprintf(out, n, "%s/%s", g_dir, file);
}

static void write_text(const char *file, const char *text) {
  char p[512], tmp[520];
  path_of(p, sizeof p, file);
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rename(tmp, p), 0); /* atomic, as an operator should */
}

/* Writes a certificate or key (PEM) atomically into the test folder. */
static void write_pem(const char *file, X509 *x, EVP_PKEY *k, const char *pass) {
  BIO *b = BIO_new(BIO_s_mem());
  if (x) PEM_write_bio_X509(b, x);
  if (k) {
    const EVP_CIPHER *c = pass ? EVP_aes_128_cbc() : NULL;
    PEM_write_bio_PrivateKey(b, k, c, (unsigned char *)pass, pass ? (int)strlen(pass) : 0, NULL,
                             NULL);
  }
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *text = strndup(data, (size_t)n);
  write_text(file, text);
  free(text);
  BIO_free(b);
}

/* server.crt/server.key: a fresh pair signed by the test CA with `serial`. */
static void write_server_pair(long serial) {
  EVP_PKEY *k = new_key();
  X509 *x = new_cert(k, "localhost", serial, g_ca_key, g_ca);
  write_pem("server.crt", x, NULL, NULL);
  write_pem("server.key", NULL, k, NULL);
  X509_free(x);
  EVP_PKEY_free(k);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/test_tls.XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  g_ca_key = new_key();
  g_ca = new_cert(g_ca_key, "test CA", 1, NULL, NULL);
  write_pem("ca.crt", g_ca, NULL, NULL);
  write_server_pair(0x1001);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  X509_free(g_ca);
  EVP_PKEY_free(g_ca_key);
  return 0;
}

static int group_setup(void **state) {
  (void)state;
  grpc_init();
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  grpc_shutdown();
  return 0;
}

typedef struct paths {
  char cert[512], key[512], ca[512];
} paths;

/* Runs tls_server_credentials on files of the test folder (ca may be NULL);
 * returns its result, with *r set on success (the caller destroys it). */
static int load(const char *cert, const char *key, const char *ca, tls_reloader **r, char *err,
                size_t errlen) {
  paths p;
  path_of(p.cert, sizeof p.cert, cert);
  path_of(p.key, sizeof p.key, key);
  if (ca) path_of(p.ca, sizeof p.ca, ca);
  config c;
  memset(&c, 0, sizeof c);
  c.tls_cert = p.cert;
  c.tls_key = p.key;
  c.tls_client_ca = ca ? p.ca : NULL;
  grpc_server_credentials *creds = NULL;
  tls_reloader *rl = NULL;
  err[0] = '\0';
  int rc = tls_server_credentials(&c, &creds, &rl, err, errlen);
  if (rc == 0) {
    assert_non_null(creds);
    assert_non_null(rl);
    grpc_server_credentials_release(creds);
    if (r) *r = rl;
    else tls_reloader_destroy(rl);
  } else {
    assert_null(creds);
    assert_null(rl);
  }
  return rc;
}

static void assert_refused(const char *cert, const char *key, const char *ca, const char *want1,
                           const char *want2) {
  char err[512];
  assert_int_not_equal(load(cert, key, ca, NULL, err, sizeof err), 0);
  if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
    fail_msg("error %s lacks \"%s\" / \"%s\"", err, want1, want2 ? want2 : "");
  assert_null(strchr(err, '\n'));
}

/* --------------------------------------------------------------- tests --- */

static void test_matching_pair_loads_and_reports_its_serial(void **state) {
  (void)state;
  tls_reloader *r = NULL;
  char err[512], serial[64];
  assert_int_equal(load("server.crt", "server.key", NULL, &r, err, sizeof err), 0);
  tls_reloader_serial(r, serial, sizeof serial);
  assert_string_equal(serial, "1001");
  tls_reloader_destroy(r);
}

static void test_mutual_tls_loads_with_a_client_ca(void **state) {
  (void)state;
  char err[512];
  assert_int_equal(load("server.crt", "server.key", "ca.crt", NULL, err, sizeof err), 0);
}

static void test_missing_certificate_names_the_file_and_errno(void **state) {
  (void)state;
  assert_refused("nope.crt", "server.key", NULL, "TLS certificate", "nope.crt: No such file");
}

static void test_missing_client_ca_names_the_file(void **state) {
  (void)state;
  assert_refused("server.crt", "server.key", "nope-ca.crt", "client CA", "nope-ca.crt: No such");
}

static void test_directory_as_key_is_refused(void **state) {
  (void)state;
  char p[512];
  path_of(p, sizeof p, "keydir");
  assert_int_equal(mkdir(p, 0700), 0);
  assert_refused("server.crt", "keydir", NULL, "TLS key", "keydir: it is a directory");
}

/* As root too: the load runs with an unprivileged file-system identity
 * (support/unprivileged.h), to which the certificate and the folder stay
 * readable and only the key is not. */
static void test_unreadable_key_says_permission_denied(void **state) {
  (void)state;
  char p[512];
  path_of(p, sizeof p, "server.crt");
  assert_int_equal(chmod(p, 0644), 0);
  path_of(p, sizeof p, "server.key");
  assert_int_equal(chmod(p, 0), 0);
  assert_int_equal(chmod(g_dir, 0711), 0);
  fs_identity id;
  fs_identity_drop(&id);
  char err[512];
  int rc = load("server.crt", "server.key", NULL, NULL, err, sizeof err);
  fs_identity_restore(&id);
  assert_int_not_equal(rc, 0);
  if (!strstr(err, "TLS key") || !strstr(err, "Permission denied") || !strstr(err, p))
    fail_msg("error %s lacks \"TLS key\" / \"Permission denied\" / the path", err);
  assert_null(strchr(err, '\n'));
}

static void test_garbage_certificate_is_refused(void **state) {
  (void)state;
  write_text("server.crt", "this is not a certificate\n");
  assert_refused("server.crt", "server.key", NULL, "TLS certificate", "no valid PEM certificate");
}

static void test_empty_certificate_is_refused(void **state) {
  (void)state;
  write_text("server.crt", "");
  assert_refused("server.crt", "server.key", NULL, "server.crt is empty", NULL);
}

static void test_truncated_second_certificate_is_refused(void **state) {
  (void)state;
  char p[512];
  path_of(p, sizeof p, "server.crt");
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  char leaf[8192];
  size_t n = fread(leaf, 1, sizeof leaf - 1, f);
  fclose(f);
  leaf[n] = '\0';
  char chain[16384];
  snprintf(chain, sizeof chain, "%s%.*s", leaf, (int)(n / 2), leaf);
  write_text("server.crt", chain);
  assert_refused("server.crt", "server.key", NULL, "certificate 2 is not valid PEM", NULL);
}

static void test_garbage_key_is_refused(void **state) {
  (void)state;
  write_text("server.key", FAKE_KEY_BEGIN "AAAA\n" FAKE_KEY_END);
  assert_refused("server.crt", "server.key", NULL, "TLS key", "no valid PEM private key");
}

static void test_encrypted_key_is_refused_without_prompting(void **state) {
  (void)state;
  EVP_PKEY *k = new_key();
  X509 *x = new_cert(k, "localhost", 7, g_ca_key, g_ca);
  write_pem("server.crt", x, NULL, NULL);
  write_pem("server.key", NULL, k, "passphrase");
  assert_refused("server.crt", "server.key", NULL, "is encrypted", NULL);
  X509_free(x);
  EVP_PKEY_free(k);
}

static void test_mismatched_pair_is_refused(void **state) {
  (void)state;
  EVP_PKEY *other = new_key();
  write_pem("server.key", NULL, other, NULL);
  EVP_PKEY_free(other);
  assert_refused("server.crt", "server.key", NULL, "does not match the certificate", NULL);
}

static void test_garbage_client_ca_is_refused(void **state) {
  (void)state;
  write_text("ca.crt", "garbage\n");
  assert_refused("server.crt", "server.key", "ca.crt", "client CA", "no valid PEM certificate");
}

/* The server pair loaded, re-read at every poll, and its first poll (the
 * start-up pair handed to the core) taken. */
static tls_reloader *polled_reloader(void) {
  tls_reloader *r = NULL;
  char err[512];
  assert_int_equal(load("server.crt", "server.key", NULL, &r, err, sizeof err), 0);
  tls_reloader_set_interval_ms(r, 0);
  assert_int_equal(tls_reloader_poll(r), 1);
  return r;
}

static void test_first_fetch_hands_out_the_start_up_pair_then_nothing(void **state) {
  (void)state;
  tls_reloader *r = polled_reloader();
  assert_int_equal(tls_reloader_poll(r), 0);
  assert_int_equal(tls_reloader_poll(r), 0);
  tls_reloader_destroy(r);
}

static void test_replaced_pair_is_picked_up(void **state) {
  (void)state;
  tls_reloader *r = NULL;
  char err[512], serial[64];
  assert_int_equal(load("server.crt", "server.key", "ca.crt", &r, err, sizeof err), 0);
  tls_reloader_set_interval_ms(r, 0);
  assert_int_equal(tls_reloader_poll(r), 1);
  write_server_pair(0x2002);
  assert_int_equal(tls_reloader_poll(r), 1);
  tls_reloader_serial(r, serial, sizeof serial);
  assert_string_equal(serial, "2002");
  assert_int_equal(tls_reloader_poll(r), 0);
  tls_reloader_destroy(r);
}

static void test_rewrite_with_same_content_is_not_a_reload(void **state) {
  (void)state;
  tls_reloader *r = polled_reloader();
  char p[512];
  path_of(p, sizeof p, "server.crt");
  FILE *f = fopen(p, "r");
  char text[8192];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  write_text("server.crt", text); /* new inode, same bytes */
  assert_int_equal(tls_reloader_poll(r), 0);
  tls_reloader_destroy(r);
}

static void test_broken_replacement_keeps_the_last_good_pair(void **state) {
  (void)state;
  tls_reloader *r = polled_reloader();
  char serial[64];
  /* a new certificate whose key has not been written yet: mismatch */
  EVP_PKEY *k = new_key();
  X509 *x = new_cert(k, "localhost", 0x3003, g_ca_key, g_ca);
  write_pem("server.crt", x, NULL, NULL);
  assert_int_equal(tls_reloader_poll(r), 0);
  tls_reloader_serial(r, serial, sizeof serial);
  assert_string_equal(serial, "1001");
  /* half-written key */
  write_text("server.key", FAKE_KEY_BEGIN "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n");
  assert_int_equal(tls_reloader_poll(r), 0);
  /* the key arrives: the new pair is taken */
  write_pem("server.key", NULL, k, NULL);
  assert_int_equal(tls_reloader_poll(r), 1);
  tls_reloader_serial(r, serial, sizeof serial);
  assert_string_equal(serial, "3003");
  X509_free(x);
  EVP_PKEY_free(k);
  tls_reloader_destroy(r);
}

static void test_missing_file_during_rotation_keeps_the_pair(void **state) {
  (void)state;
  tls_reloader *r = polled_reloader();
  char p[512];
  path_of(p, sizeof p, "server.key");
  assert_int_equal(unlink(p), 0);
  assert_int_equal(tls_reloader_poll(r), 0);
  write_server_pair(0x4004);
  assert_int_equal(tls_reloader_poll(r), 1);
  tls_reloader_destroy(r);
}

static void test_files_are_looked_at_no_more_than_the_interval(void **state) {
  (void)state;
  tls_reloader *r = NULL;
  char err[512];
  assert_int_equal(load("server.crt", "server.key", NULL, &r, err, sizeof err), 0);
  tls_reloader_set_interval_ms(r, 60000);
  assert_int_equal(tls_reloader_poll(r), 1); /* the start-up pair */
  write_server_pair(0x5005);
  assert_int_equal(tls_reloader_poll(r), 0); /* not looked at yet */
  tls_reloader_set_interval_ms(r, 0);
  assert_int_equal(tls_reloader_poll(r), 1);
  tls_reloader_destroy(r);
}

/* Unchanged files: the same pair is handed again once the ticket keys are
 * due (the core then makes a new SSL_CTX, with new ticket keys), not before. */
static void test_same_pair_is_handed_again_when_ticket_keys_are_due(void **state) {
  (void)state;
  tls_reloader *r = polled_reloader();
  char serial[64];
  assert_int_equal(tls_reloader_poll(r), 0); /* an hour by default */
  tls_reloader_set_ticket_key_lifetime_ms(r, 0);
  assert_int_equal(tls_reloader_poll(r), 1);
  assert_int_equal(tls_reloader_poll(r), 1);
  tls_reloader_serial(r, serial, sizeof serial);
  assert_string_equal(serial, "1001");
  tls_reloader_set_ticket_key_lifetime_ms(r, 3600 * 1000);
  assert_int_equal(tls_reloader_poll(r), 0);
  /* A broken replacement keeps the last good pair, rotation included. */
  write_text("server.key", "garbage\n");
  tls_reloader_set_ticket_key_lifetime_ms(r, 0);
  assert_int_equal(tls_reloader_poll(r), 0); /* the failed reload is the look */
  assert_int_equal(tls_reloader_poll(r), 1); /* then the kept pair, new keys */
  tls_reloader_serial(r, serial, sizeof serial);
  assert_string_equal(serial, "1001");
  tls_reloader_destroy(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_matching_pair_loads_and_reports_its_serial),
      T(test_mutual_tls_loads_with_a_client_ca),
      T(test_missing_certificate_names_the_file_and_errno),
      T(test_missing_client_ca_names_the_file),
      T(test_directory_as_key_is_refused),
      T(test_unreadable_key_says_permission_denied),
      T(test_garbage_certificate_is_refused),
      T(test_empty_certificate_is_refused),
      T(test_truncated_second_certificate_is_refused),
      T(test_garbage_key_is_refused),
      T(test_encrypted_key_is_refused_without_prompting),
      T(test_mismatched_pair_is_refused),
      T(test_garbage_client_ca_is_refused),
      T(test_first_fetch_hands_out_the_start_up_pair_then_nothing),
      T(test_replaced_pair_is_picked_up),
      T(test_rewrite_with_same_content_is_not_a_reload),
      T(test_broken_replacement_keeps_the_last_good_pair),
      T(test_missing_file_during_rotation_keeps_the_pair),
      T(test_files_are_looked_at_no_more_than_the_interval),
      T(test_same_pair_is_handed_again_when_ticket_keys_are_due),
#undef T
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
