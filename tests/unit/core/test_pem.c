/* Tests for core/pem.c, the one PEM check (the server's TLS files and the
 * outbound client's): a chain parses whole or names the bad certificate, a
 * key parses unencrypted without a prompt and must match its certificate,
 * and a file that is empty or holds a NUL byte is refused. The material is
 * made here, in memory, for each run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/pem.h"

static EVP_PKEY *new_key(void) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  assert_non_null(k);
  return k;
}

static X509 *new_cert(EVP_PKEY *key, const char *cn) {
  X509 *x = X509_new();
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, key);
  assert_true(X509_sign(x, key, EVP_sha256()) > 0);
  return x;
}

/* PEM text of a certificate and/or a key (encrypted with pass when given). */
static char *pem_of(X509 *x, EVP_PKEY *k, const char *pass) {
  BIO *b = BIO_new(BIO_s_mem());
  assert_non_null(b);
  if (x) assert_int_equal(PEM_write_bio_X509(b, x), 1);
  if (k)
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, pass ? EVP_aes_128_cbc() : NULL,
                                              (unsigned char *)pass, pass ? (int)strlen(pass) : 0,
                                              NULL, NULL),
                     1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *text = strndup(data, (size_t)n);
  BIO_free(b);
  assert_non_null(text);
  return text;
}

static void a_chain_parses_and_the_leaf_is_the_first(void **state) {
  (void)state;
  EVP_PKEY *k1 = new_key(), *k2 = new_key();
  X509 *a = new_cert(k1, "first"), *b = new_cert(k2, "second");
  char *ta = pem_of(a, NULL, NULL), *tb = pem_of(b, NULL, NULL);
  char *chain = malloc(strlen(ta) + strlen(tb) + 1);
  assert_non_null(chain);
  memcpy(chain, ta, strlen(ta));
  memcpy(chain + strlen(ta), tb, strlen(tb) + 1);
  X509 *leaf = NULL;
  char err[256] = "";
  assert_int_equal(pem_check_chain(chain, "TLS certificate", "/x.crt", &leaf, err, sizeof err), 0);
  assert_non_null(leaf);
  assert_int_equal(X509_cmp(leaf, a), 0);
  X509_free(leaf);
  /* Cut inside the second certificate: named by its position. */
  chain[strlen(ta) + strlen(tb) / 2] = '\0';
  assert_int_not_equal(pem_check_chain(chain, "TLS certificate", "/x.crt", &leaf, err, sizeof err), 0);
  assert_null(leaf);
  assert_non_null(strstr(err, "/x.crt: certificate 2 is not valid PEM"));
  assert_int_not_equal(pem_check_chain("not a certificate\n", "CA file", "/ca.pem", NULL, err,
                                       sizeof err),
                       0);
  assert_string_equal(err, "CA file /ca.pem holds no valid PEM certificate");
  free(chain);
  free(ta);
  free(tb);
  X509_free(a);
  X509_free(b);
  EVP_PKEY_free(k1);
  EVP_PKEY_free(k2);
}

static void a_key_must_be_plain_and_match(void **state) {
  (void)state;
  EVP_PKEY *k = new_key(), *other = new_key();
  X509 *x = new_cert(k, "pair");
  char *key = pem_of(NULL, k, NULL), *wrong = pem_of(NULL, other, NULL);
  char *locked = pem_of(NULL, k, "passphrase");
  char err[256] = "";
  assert_int_equal(pem_check_key(key, "key file", "/k.pem", x, "/c.pem", err, sizeof err), 0);
  assert_int_equal(pem_check_key(wrong, "key file", "/k.pem", NULL, NULL, err, sizeof err), 0);
  assert_int_not_equal(pem_check_key(wrong, "key file", "/k.pem", x, "/c.pem", err, sizeof err), 0);
  assert_string_equal(err, "key file /k.pem does not match the certificate in /c.pem");
  assert_int_not_equal(pem_check_key(locked, "TLS key", "/k.pem", x, "/c.pem", err, sizeof err), 0);
  assert_non_null(strstr(err, "is encrypted"));
  assert_int_not_equal(pem_check_key("garbage", "TLS key", "/k.pem", x, "/c.pem", err, sizeof err), 0);
  assert_string_equal(err, "TLS key /k.pem holds no valid PEM private key");
  free(key);
  free(wrong);
  free(locked);
  X509_free(x);
  EVP_PKEY_free(k);
  EVP_PKEY_free(other);
}

static void an_empty_file_or_a_nul_byte_is_refused(void **state) {
  (void)state;
  char path[] = "/tmp/test_pem_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  char *pem = (char *)"x";
  char err[256] = "";
  assert_int_not_equal(pem_read_file(path, "CA file", &pem, err, sizeof err), 0);
  assert_null(pem);
  assert_non_null(strstr(err, "is empty"));
  assert_int_equal(write(fd, "-----\0-----\n", 12), 12);
  assert_int_not_equal(pem_read_file(path, "CA file", &pem, err, sizeof err), 0);
  assert_non_null(strstr(err, "NUL byte"));
  assert_int_equal(ftruncate(fd, 0), 0);
  assert_int_equal(pwrite(fd, "text\n", 5, 0), 5);
  assert_int_equal(pem_read_file(path, "CA file", &pem, err, sizeof err), 0);
  assert_string_equal(pem, "text\n");
  pem_free(pem);
  close(fd);
  unlink(path);
  assert_int_not_equal(pem_read_file(path, "CA file", &pem, err, sizeof err), 0);
  assert_non_null(strstr(err, "No such file"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_chain_parses_and_the_leaf_is_the_first),
      cmocka_unit_test(a_key_must_be_plain_and_match),
      cmocka_unit_test(an_empty_file_or_a_nul_byte_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
