/* Tests for src/client/rpc_client.c without a gRPC server: option and PEM
 * checks at create, and the statuses a call gets from a closed port, from a
 * listener that never speaks HTTP/2, and from metadata gRPC cannot send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client/rpc_client.h"

/* ------------------------------------------------------------- helpers ---- */

/* A listening TCP socket on 127.0.0.1 (never accepted from); *port gets its port. */
static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 8), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void target_for(int port, char *buf, size_t n) { snprintf(buf, n, "127.0.0.1:%d", port); }

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes text to a fresh temporary file; the caller unlinks it. */
static void temp_file(char *path, size_t n, const char *text) {
  snprintf(path, n, "/tmp/test_rpc_client_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t len = strlen(text);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
}

/* A fresh EC key and a self-signed certificate for it, as PEM files. */
static void make_cert(char *cert_path, char *key_path, size_t n) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  assert_non_null(key);
  X509 *x = X509_new();
  assert_non_null(x);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
  X509_set_issuer_name(x, name);
  assert_true(X509_sign(x, key, EVP_sha256()) > 0);

  snprintf(cert_path, n, "/tmp/test_rpc_client_cert_XXXXXX");
  snprintf(key_path, n, "/tmp/test_rpc_client_key_XXXXXX");
  int cfd = mkstemp(cert_path), kfd = mkstemp(key_path);
  assert_true(cfd >= 0 && kfd >= 0);
  FILE *cf = fdopen(cfd, "w"), *kf = fdopen(kfd, "w");
  assert_true(cf && kf);
  assert_true(PEM_write_X509(cf, x) == 1);
  assert_true(PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) == 1);
  fclose(cf);
  fclose(kf);
  X509_free(x);
  EVP_PKEY_free(key);
}

/* --------------------------------------------------------------- create ---- */

static void create_fails_on_missing_ca_file_and_names_it(void **state) {
  (void)state;
  rpc_client_options opt = {.target = "127.0.0.1:1", .ca_file = "/nonexistent/ca.pem"};
  rpc_client *c = (rpc_client *)0x1;
  char err[256] = "";
  assert_int_not_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  assert_null(c);
  assert_non_null(strstr(err, "/nonexistent/ca.pem"));
}

static void create_fails_on_ca_file_without_certificate(void **state) {
  (void)state;
  char path[64];
  temp_file(path, sizeof path, "hello, not a certificate\n");
  rpc_client_options opt = {.target = "127.0.0.1:1", .ca_file = path};
  rpc_client *c = NULL;
  char err[256] = "";
  assert_int_not_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  assert_null(c);
  assert_non_null(strstr(err, "holds no valid PEM certificate"));
  unlink(path);
}

static void create_fails_on_certificate_without_key(void **state) {
  (void)state;
  rpc_client_options opt = {.target = "127.0.0.1:1", .cert_file = "/tmp/x.pem"};
  rpc_client *c = NULL;
  char err[256] = "";
  assert_int_not_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  assert_non_null(strstr(err, "key"));
}

static void create_fails_when_certificate_and_key_do_not_match(void **state) {
  (void)state;
  char cert1[64], key1[64], cert2[64], key2[64];
  make_cert(cert1, key1, sizeof cert1);
  make_cert(cert2, key2, sizeof cert2);
  rpc_client_options opt = {
      .target = "127.0.0.1:1", .ca_file = cert1, .cert_file = cert1, .key_file = key2};
  rpc_client *c = NULL;
  char err[256] = "";
  assert_int_not_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  assert_non_null(strstr(err, "does not match the certificate in"));

  opt.key_file = key1; /* the matching pair loads */
  assert_int_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  assert_non_null(c);
  rpc_client_destroy(c);
  unlink(cert1);
  unlink(key1);
  unlink(cert2);
  unlink(key2);
}

static void create_fails_without_target(void **state) {
  (void)state;
  rpc_client_options opt = {.target = "", .insecure = true};
  rpc_client *c = NULL;
  char err[256] = "";
  assert_int_not_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  assert_true(err[0] != '\0');
}

/* ----------------------------------------------------------------- calls ---- */

static void call_to_closed_port_is_unavailable(void **state) {
  (void)state;
  int port;
  close(listen_loopback(&port)); /* a port that nobody listens on now */
  char target[32];
  target_for(port, target, sizeof target);
  rpc_client_options opt = {.target = target, .insecure = true};
  rpc_client *c = NULL;
  char err[256];
  assert_int_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  rpc_result r;
  const uint8_t body[] = {0x0a, 0x01, 'x'};
  assert_int_equal(rpc_client_unary(c, "/product.ProductService/GetProduct", body, sizeof body,
                                    NULL, 0, 5000, &r),
                   0);
  assert_int_equal(r.code, RPC_UNAVAILABLE);
  assert_non_null(r.message);
  assert_null(r.body);
  rpc_result_free(&r);
  rpc_client_destroy(c);
}

/* A listener that accepts TCP but never answers: the deadline ends the call. */
static void call_to_silent_listener_ends_at_deadline(void **state) {
  (void)state;
  int port;
  int fd = listen_loopback(&port);
  char target[32];
  target_for(port, target, sizeof target);
  rpc_client_options opt = {.target = target, .insecure = true};
  rpc_client *c = NULL;
  char err[256];
  assert_int_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  rpc_result r;
  int64_t start = now_ms();
  assert_int_equal(rpc_client_unary(c, "/product.ProductService/ListProducts", NULL, 0, NULL, 0,
                                    300, &r),
                   0);
  int64_t took = now_ms() - start;
  /* DEADLINE_EXCEEDED says the deadline ended it (the listener never
   * answers); not before the deadline. No upper bound: a loaded machine may
   * report late, and a call that hung would not return at all. */
  assert_int_equal(r.code, RPC_DEADLINE_EXCEEDED);
  assert_true(took >= 250);
  rpc_result_free(&r);
  rpc_client_destroy(c);
  close(fd);
}

/* wait_for_ready: a closed port is not UNAVAILABLE at once; the call waits
 * for a connection until its deadline. */
static void wait_for_ready_call_waits_until_deadline(void **state) {
  (void)state;
  int port;
  close(listen_loopback(&port));
  char target[32];
  target_for(port, target, sizeof target);
  rpc_client_options opt = {.target = target, .insecure = true, .wait_for_ready = true};
  rpc_client *c = NULL;
  char err[256];
  assert_int_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  rpc_result r;
  int64_t start = now_ms();
  assert_int_equal(rpc_client_unary(c, "/x.Y/Z", NULL, 0, NULL, 0, 300, &r), 0);
  assert_int_equal(r.code, RPC_DEADLINE_EXCEEDED);
  assert_true(now_ms() - start >= 250);
  rpc_result_free(&r);
  rpc_client_destroy(c);
}

static void metadata_with_newline_is_refused_before_sending(void **state) {
  (void)state;
  rpc_client_options opt = {.target = "127.0.0.1:1", .insecure = true};
  rpc_client *c = NULL;
  char err[256];
  assert_int_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  rpc_metadata md[] = {{.key = "authorization", .value = "Bearer a\nb"}};
  rpc_result r;
  assert_int_not_equal(rpc_client_unary(c, "/x.Y/Z", NULL, 0, md, 1, 1000, &r), 0);
  assert_int_equal(r.code, RPC_INTERNAL);
  assert_non_null(strstr(r.message, "authorization"));
  assert_null(strstr(r.message, "Bearer")); /* the value is never echoed */
  rpc_result_free(&r);

  rpc_metadata upper[] = {{.key = "Authorization", .value = "x"}};
  assert_int_not_equal(rpc_client_unary(c, "/x.Y/Z", NULL, 0, upper, 1, 1000, &r), 0);
  rpc_result_free(&r);
  rpc_client_destroy(c);
}

int main(void) {
  rpc_client_set_core_log(NULL); /* the core's own lines are not test output */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(create_fails_on_missing_ca_file_and_names_it),
      cmocka_unit_test(create_fails_on_ca_file_without_certificate),
      cmocka_unit_test(create_fails_on_certificate_without_key),
      cmocka_unit_test(create_fails_when_certificate_and_key_do_not_match),
      cmocka_unit_test(create_fails_without_target),
      cmocka_unit_test(call_to_closed_port_is_unavailable),
      cmocka_unit_test(call_to_silent_listener_ends_at_deadline),
      cmocka_unit_test(wait_for_ready_call_waits_until_deadline),
      cmocka_unit_test(metadata_with_newline_is_refused_before_sending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
