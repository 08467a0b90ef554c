/* Tests for src/config/config_values.c: address and etcd endpoint syntax,
 * store spec redaction, and the start-up description. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

/* ------------------------------------------------------------ addresses --- */

static void expect_addr(const char *text, const char *host, int port, const char *canon) {
  config_addr a;
  char err[256];
  if (config_parse_addr(text, &a, err, sizeof err) != 0) fail_msg("'%s' refused: %s", text, err);
  assert_true(a.set);
  assert_string_equal(a.host, host);
  assert_int_equal(a.port, port);
  assert_string_equal(a.text, canon);
}

static void expect_bad_addr(const char *text) {
  config_addr a;
  char err[256] = "";
  if (config_parse_addr(text, &a, err, sizeof err) == 0) fail_msg("'%s' accepted", text);
  assert_true(err[0] != '\0');
  assert_null(strchr(err, '\n'));
}

static void test_address_ports_and_forms(void **state) {
  (void)state;
  expect_addr("127.0.0.1:0", "127.0.0.1", 0, "127.0.0.1:0");
  expect_addr("127.0.0.1:65535", "127.0.0.1", 65535, "127.0.0.1:65535");
  expect_addr("localhost:50051", "localhost", 50051, "localhost:50051");
  expect_addr("8080", "0.0.0.0", 8080, "0.0.0.0:8080");
  expect_addr("0", "0.0.0.0", 0, "0.0.0.0:0");
  expect_addr("[::1]:0", "::1", 0, "[::1]:0");
  expect_addr("[::]:50051", "::", 50051, "[::]:50051");
  expect_addr("[fe80::1%eth0]:7", "fe80::1%eth0", 7, "[fe80::1%eth0]:7");
  expect_addr("my-host.example.com:443", "my-host.example.com", 443, "my-host.example.com:443");
  expect_bad_addr("127.0.0.1:65536");
  expect_bad_addr("127.0.0.1:99999");
  expect_bad_addr("127.0.0.1:-1");
  expect_bad_addr("127.0.0.1:");
  expect_bad_addr("127.0.0.1:+1");
  expect_bad_addr("127.0.0.1: 1");
  expect_bad_addr("127.0.0.1:0x10");
  expect_bad_addr("");
  expect_bad_addr(":80");
  expect_bad_addr("65536");
  expect_bad_addr("-1");
  expect_bad_addr("::1:50051");
  expect_bad_addr("[::1]");
  expect_bad_addr("[::1]50051");
  expect_bad_addr("[::1:50051");
  expect_bad_addr("[]:1");
  expect_bad_addr("[not-v6]:1");
  expect_bad_addr("[127.0.0.1]:1");
  expect_bad_addr("256.0.0.1:1");
  expect_bad_addr("1.2.3:1");
  expect_bad_addr("host name:1");
  expect_bad_addr("host/x:1");
  expect_bad_addr("localhost");
}

static void test_etcd_endpoints_are_normalised(void **state) {
  (void)state;
  char **list = NULL;
  size_t n = 0;
  char err[256];
  assert_int_equal(config_parse_etcd_endpoints(
                       "http://127.0.0.1:2379, HTTPS://[::1]:2379/ ,etcd-0.etcd:2379", &list, &n,
                       err, sizeof err),
                   0);
  assert_int_equal(n, 3);
  assert_string_equal(list[0], "http://127.0.0.1:2379");
  assert_string_equal(list[1], "https://[::1]:2379");
  assert_string_equal(list[2], "http://etcd-0.etcd:2379");
  assert_null(list[3]);
  for (size_t i = 0; i < n; i++) free(list[i]);
  free(list);
  assert_int_not_equal(config_parse_etcd_endpoints("", &list, &n, err, sizeof err), 0);
  assert_null(list);
  assert_int_equal(n, 0);
}

/* ------------------------------------------------------------ redaction --- */

static void expect_redacted(const char *spec, const char *want) {
  char out[512];
  config_redact_store_spec(spec, out, sizeof out);
  assert_string_equal(out, want);
}

static void test_store_spec_password_is_redacted(void **state) {
  (void)state;
  expect_redacted("postgres://app:hunter2@db:5432/products",
                  "postgres://app:<redacted>@db:5432/products");
  expect_redacted("postgresql://app:p@ss@db/products?sslmode=require",
                  "postgresql://app:<redacted>@db/products?sslmode=require");
  expect_redacted("postgres://db/products?sslmode=disable&password=hunter2&user=app",
                  "postgres://db/products?sslmode=disable&password=<redacted>&user=app");
  expect_redacted("postgres://db/products?PASSWORD=hunter2",
                  "postgres://db/products?PASSWORD=<redacted>");
  expect_redacted("host=db password='a b\\' c' user=app", "host=db password=<redacted> user=app");
  /* libpq takes '#' and '?' before the '@' as part of the password. */
  expect_redacted("postgres://app:pa#ss@db/products", "postgres://app:<redacted>@db/products");
  expect_redacted("postgres://app:pa?ss@db/products", "postgres://app:<redacted>@db/products");
  expect_redacted("postgres://app@db/products", "postgres://app@db/products");
  expect_redacted("postgres://db/x?passwordless=1", "postgres://db/x?passwordless=1");
  expect_redacted("sqlite:./data/products.db", "sqlite:./data/products.db");
  expect_redacted("memory", "memory");
  /* Truncation never leaves a password behind. */
  char small[24];
  config_redact_store_spec("postgres://app:hunter2@db/products", small, sizeof small);
  assert_null(strstr(small, "hunter2"));
  assert_true(strlen(small) < sizeof small);
}

static char g_secret40[41];

static const char *describe_env(const char *name) {
  if (strcmp(name, "JWT_SECRET") == 0) return g_secret40;
  if (strcmp(name, "INSECURE") == 0) return "1";
  if (strcmp(name, "OTEL_EXPORTER_OTLP_ENDPOINT") == 0) return "https://otel:tr4ce-key@collector:4318";
  if (strcmp(name, "OTEL_EXPORTER_OTLP_HEADERS") == 0) return "api-key=h3ader-key";
  return NULL;
}

static void test_describe_redacts_secret_and_password(void **state) {
  (void)state;
  /* made at run time, never stored in the tree */
  memset(g_secret40, 'k', 40);
  g_secret40[0] = (char)('a' + (getpid() % 26));
  char *argv[] = {"product-server", "--store", "postgres://app:hunter2@db:5432/products",
                  "--listen", "127.0.0.1:0", "--etcd-endpoints", "h1:1,h2:2", NULL};
  char err[256];
  config *c = NULL;
  assert_int_equal(config_parse(7, argv, describe_env, NULL, &c, err, sizeof err), CONFIG_OK);
  log_line l;
  memset(&l, 0, sizeof l);
  l.format = LOG_FORMAT_JSON;
  log_line_begin(&l, LOG_INFO, "starting");
  config_describe(c, &l);
  l.buf[l.len < LOG_LINE_MAX ? l.len : LOG_LINE_MAX - 1] = '\0';
  assert_non_null(strstr(l.buf, "<redacted, 40 bytes>"));
  assert_null(strstr(l.buf, g_secret40));
  assert_null(strstr(l.buf, "hunter2"));
  assert_non_null(strstr(l.buf, "postgres://app:<redacted>@db:5432/products"));
  assert_non_null(strstr(l.buf, "127.0.0.1:0"));
  assert_non_null(strstr(l.buf, "http://h1:1,http://h2:2"));
  assert_non_null(strstr(l.buf, "product-service"));
  /* The collector's URL without its credentials, and never the headers. */
  assert_non_null(strstr(l.buf, "\"otlp_traces_url\":\"https://<redacted>@collector:4318/v1/traces\""));
  assert_null(strstr(l.buf, "tr4ce-key"));
  assert_null(strstr(l.buf, "h3ader-key"));
  config_destroy(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_address_ports_and_forms),
      cmocka_unit_test(test_etcd_endpoints_are_normalised),
      cmocka_unit_test(test_store_spec_password_is_redacted),
      cmocka_unit_test(test_describe_redacts_secret_and_password),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
