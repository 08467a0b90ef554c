/* Tests for src/config/config.c's refusals: every bad flag, value and
 * combination gets CONFIG_ERROR and one line that names the problem. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config_fixture.h"

static void test_bad_port_variable_is_refused(void **state) {
  (void)state;
  env_set("PORT", "99999");
  REFUSED0("PORT");
  env_set("PORT", "http");
  REFUSED0("PORT");
  env_set("PORT", "-1");
  REFUSED0("PORT");
}

/* -------------------------------------------------------------- refusals --- */

static void test_unknown_flags_are_refused(void **state) {
  (void)state;
  REFUSED("--bogus", "--bogus");
  REFUSED("--bogus=1", "--bogus=1");
  REFUSED("-x", "-x");
  REFUSED("unexpected argument 'serve'", "serve");
  REFUSED("unexpected argument", "--insecure", "--", "extra");
}

static void test_missing_values_are_refused(void **state) {
  (void)state;
  const char *flags[] = {"--listen",        "--tls-cert",    "--tls-key",      "--tls-client-ca",
                         "--jwt-secret-file", "--jwt-issuer", "--jwt-audience", "--jwt-leeway",
                         "--store",         "--log-format",  "--ready-file",   "--health-listen",
                         "--metrics-listen", "--etcd-endpoints", "--advertise-addr", "--threads",
                         "--jwt-keys",      "--jwt-revocations"};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    expect_refusal(flags[i], (const char *[]){"product-server", flags[i], NULL});
    expect_refusal("needs a value", (const char *[]){"product-server", flags[i], NULL});
    char eq[64];
    snprintf(eq, sizeof eq, "%s=", flags[i]);
    expect_refusal("non-empty", (const char *[]){"product-server", eq, NULL});
  }
}

static void test_insecure_flag_takes_no_value(void **state) {
  (void)state;
  REFUSED("--insecure takes no value", "--insecure=1");
}

static void test_bad_addresses_are_refused(void **state) {
  (void)state;
  REFUSED("--listen", "--listen", "127.0.0.1:99999");
  REFUSED("--listen", "--listen", "127.0.0.1:65536");
  REFUSED("--listen", "--listen", "127.0.0.1:-1");
  REFUSED("--listen", "--listen", "127.0.0.1:");
  REFUSED("--listen", "--listen", ":50051");
  REFUSED("--listen", "--listen", "::1:50051");
  REFUSED("--listen", "--listen", "[::1]");
  REFUSED("--health-listen", "--health-listen", "localhost:http");
  REFUSED("--metrics-listen", "--metrics-listen", "300.1.1.1:80");
  REFUSED("--advertise-addr", "--advertise-addr", "a b:1");
  env_set("LISTEN_ADDR", "127.0.0.1:70000");
  REFUSED0("LISTEN_ADDR");
  env_unset("LISTEN_ADDR");
  env_set("HEALTH_LISTEN_ADDR", "x:");
  REFUSED0("HEALTH_LISTEN_ADDR");
  env_unset("HEALTH_LISTEN_ADDR");
  env_set("METRICS_LISTEN_ADDR", "[nope]:1");
  REFUSED0("METRICS_LISTEN_ADDR");
  env_unset("METRICS_LISTEN_ADDR");
  env_set("ADVERTISE_ADDR", "host:1x");
  REFUSED0("ADVERTISE_ADDR");
}

static void test_bad_leeway_is_refused(void **state) {
  (void)state;
  const char *bad[] = {"abc", "-1", "1.5", "30s", " 30", "+30", "86401",
                       "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    expect_refusal("--jwt-leeway", (const char *[]){"product-server", "--jwt-leeway", bad[i], NULL});
    env_set("JWT_LEEWAY", bad[i]);
    REFUSED0("JWT_LEEWAY");
    env_unset("JWT_LEEWAY");
  }
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--jwt-leeway", "86400"), CONFIG_OK);
  assert_int_equal(c->jwt_leeway_s, 86400);
  config_destroy(c);
}

static void test_bad_log_format_is_refused(void **state) {
  (void)state;
  REFUSED("--log-format", "--log-format", "xml");
  env_set("LOG_FORMAT", "yaml");
  REFUSED0("LOG_FORMAT");
}

static void test_bad_threads_are_refused(void **state) {
  (void)state;
  REFUSED("--threads", "--threads", "-2");
  REFUSED("--threads", "--threads", "many");
  REFUSED("--threads", "--threads", "100000");
  env_set("WORKER_THREADS", "1.5");
  REFUSED0("WORKER_THREADS");
}

/* A key set and a secret from any source: exit 2. */
static void test_key_set_and_secret_are_exclusive(void **state) {
  (void)state;
  REFUSED("--jwt-keys (JWT_KEYS_FILE) and JWT_SECRET both given", "--jwt-keys", "/k/jwks.json");
  env_unset("JWT_SECRET");
  env_set("JWT_SECRET_FILE", "/k/secret");
  REFUSED("and JWT_SECRET_FILE both given", "--jwt-keys", "/k/jwks.json");
  env_unset("JWT_SECRET_FILE");
  REFUSED("and --jwt-secret-file both given", "--jwt-keys", "/k/jwks.json", "--jwt-secret-file",
          "/k/secret");
  env_set("JWT_KEYS_FILE", "/k/jwks.json");
  env_set("JWT_SECRET", "s");
  REFUSED0("both given: choose one");
}

static void test_missing_secret_is_refused_with_the_contract_message(void **state) {
  (void)state;
  env_unset("JWT_SECRET");
  REFUSED0("no JWT secret: set --jwt-secret-file, JWT_SECRET_FILE or JWT_SECRET, or --jwt-keys");
  assert_string_equal(g_err, "no JWT secret: set --jwt-secret-file, JWT_SECRET_FILE or JWT_SECRET, or --jwt-keys");
  env_set("JWT_SECRET", "");
  REFUSED0("no JWT secret");
}

static void test_short_secret_is_refused(void **state) {
  (void)state;
  env_set("JWT_SECRET", g_secret31);
  REFUSED0("31 bytes");
  assert_null(strstr(g_err, g_secret31)); /* never the secret itself */
  env_set("JWT_SECRET", g_secret32);
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  config_destroy(c);
}

static void test_secret_file_trailing_newline_is_stripped(void **state) {
  (void)state;
  char path[128], content[64];
  snprintf(path, sizeof path, "%s/nl-secret", g_tmpdir);
  snprintf(content, sizeof content, "%s\n", g_secret32);
  write_file(path, content);
  env_unset("JWT_SECRET");
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--jwt-secret-file", path), CONFIG_OK);
  assert_int_equal(c->jwt_secret.len, 32);
  assert_memory_equal(c->jwt_secret.bytes, g_secret32, 32);
  config_destroy(c);
  /* 31 bytes plus a newline is still 31 bytes. */
  snprintf(content, sizeof content, "%s\n", g_secret31);
  write_file(path, content);
  REFUSED("31 bytes", "--jwt-secret-file", path);
}

static void test_unreadable_secret_file_is_refused(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/does-not-exist", g_tmpdir);
  REFUSED("--jwt-secret-file", "--jwt-secret-file", path);
  env_set("JWT_SECRET_FILE", path);
  REFUSED0("JWT_SECRET_FILE");
  /* A directory is not a secret. */
  env_set("JWT_SECRET_FILE", g_tmpdir);
  REFUSED0("JWT_SECRET_FILE");
}

static void test_bad_store_spec_is_refused(void **state) {
  (void)state;
  REFUSED("--store", "--store", "mongodb://x");
  REFUSED("--store", "--store", "sqlite:");
  env_set("STORE", "redis");
  REFUSED0("STORE");
}

static void test_tls_combinations(void **state) {
  (void)state;
  REFUSED("--tls-key", "--tls-cert", "c.pem");
  REFUSED("--tls-cert", "--tls-key", "k.pem");
  REFUSED("--tls-client-ca", "--tls-client-ca", "ca.pem");
  REFUSED("--tls-cert", "--tls-client-ca", "ca.pem", "--tls-key", "k.pem");
  env_set("TLS_CERT_FILE", "c.pem");
  REFUSED0("TLS_KEY_FILE");
  env_unset("TLS_CERT_FILE");
  /* plaintext and a certificate both on the command line is ambiguous */
  REFUSED("both given", "--insecure", "--tls-cert", "c.pem", "--tls-key", "k.pem");
  env_unset("INSECURE");
  /* ... and both in the environment too */
  env_set("INSECURE", "1");
  env_set("TLS_CERT_FILE", "c.pem");
  env_set("TLS_KEY_FILE", "k.pem");
  REFUSED0("both given");
  /* but the command line wins over the environment, as for any setting */
  config *mix = NULL;
  assert_int_equal(PARSE(&mix, "--insecure"), CONFIG_OK); /* env: TLS files */
  assert_true(mix->insecure);
  assert_null(mix->tls_cert);
  assert_null(mix->tls_key);
  config_destroy(mix);
  env_unset("TLS_CERT_FILE");
  env_unset("TLS_KEY_FILE");
  mix = NULL;
  assert_int_equal(PARSE(&mix, "--tls-cert", "c.pem", "--tls-key", "k.pem"), CONFIG_OK); /* env: INSECURE=1 */
  assert_false(mix->insecure);
  assert_string_equal(mix->tls_cert, "c.pem");
  config_destroy(mix);
  env_unset("INSECURE");
  REFUSED0("no TLS certificate: give --tls-cert and --tls-key, or --insecure for plaintext");
  assert_string_equal(g_err,
                      "no TLS certificate: give --tls-cert and --tls-key, or --insecure for plaintext");
  /* TLS files are not opened here: the TLS module reports on them. */
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem",
                         "--tls-client-ca", "/nonexistent/ca.pem"),
                   CONFIG_OK);
  assert_false(c->insecure);
  config_destroy(c);
}

static void test_bad_etcd_endpoints_are_refused(void **state) {
  (void)state;
  const char *bad[] = {"ftp://h:1", "http://", "http://host", "2379", "h:1,,h:2", "h:1,",
                       "http://h:1/v3", "http://u@h:1", "h:99999", ","};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_refusal("--etcd-endpoints",
                   (const char *[]){"product-server", "--etcd-endpoints", bad[i], NULL});
  env_set("ETCD_ENDPOINTS", "nope");
  REFUSED0("ETCD_ENDPOINTS");
}

static void test_syntax_errors_come_before_the_missing_secret(void **state) {
  (void)state;
  env_unset("JWT_SECRET");
  REFUSED("--listen", "--listen", "127.0.0.1:99999");
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, setup)
  const struct CMUnitTest tests[] = {
      T(test_unknown_flags_are_refused),
      T(test_missing_values_are_refused),
      T(test_insecure_flag_takes_no_value),
      T(test_bad_addresses_are_refused),
      T(test_bad_leeway_is_refused),
      T(test_bad_log_format_is_refused),
      T(test_bad_threads_are_refused),
      T(test_missing_secret_is_refused_with_the_contract_message),
      T(test_short_secret_is_refused),
      T(test_secret_file_trailing_newline_is_stripped),
      T(test_unreadable_secret_file_is_refused),
      T(test_bad_store_spec_is_refused),
      T(test_tls_combinations),
      T(test_bad_etcd_endpoints_are_refused),
      T(test_syntax_errors_come_before_the_missing_secret),
      T(test_bad_port_variable_is_refused),
      T(test_key_set_and_secret_are_exclusive),
  };
#undef T
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
