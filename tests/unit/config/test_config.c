/* Tests for src/config/config.c: defaults, every flag and variable, flag over
 * variable, PORT, INSECURE, help and version. Refusals are in
 * test_config_refusals.c. */
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

/* ------------------------------------------------------------ defaults --- */

static void test_defaults_match_the_contract(void **state) {
  (void)state;
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_non_null(c);
  assert_string_equal(c->listen.text, "0.0.0.0:50051");
  assert_string_equal(c->listen.host, "0.0.0.0");
  assert_int_equal(c->listen.port, 50051);
  assert_null(c->tls_cert);
  assert_null(c->tls_key);
  assert_null(c->tls_client_ca);
  assert_true(c->insecure);
  assert_int_equal(c->jwt_secret.len, 40);
  assert_memory_equal(c->jwt_secret.bytes, g_secret40, 40);
  assert_string_equal(c->jwt_issuer, "product-service");
  assert_string_equal(c->jwt_audience, "client");
  assert_int_equal(c->jwt_leeway_s, 30);
  assert_string_equal(c->store_spec, "sqlite:./data/products.db");
  assert_int_equal(c->log_format, LOG_FORMAT_JSON);
  assert_null(c->ready_file);
  assert_false(c->health_listen.set);
  assert_false(c->metrics_listen.set);
  assert_null(c->etcd_endpoints);
  assert_int_equal(c->n_etcd_endpoints, 0);
  assert_false(c->advertise.set);
  assert_int_equal(c->threads, 0);
  assert_int_equal(c->drain_ms, 10000);
  config_destroy(c);
}

/* ---------------------------------------------------------- every flag --- */

static void test_every_flag_sets_its_field(void **state) {
  (void)state;
  char secret_path[128];
  snprintf(secret_path, sizeof secret_path, "%s/flag-secret", g_tmpdir);
  write_file(secret_path, g_secret32);
  g_n_env = 0; /* nothing from the environment */
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--listen", "127.0.0.1:0", "--tls-cert", "/x/cert.pem", "--tls-key",
                         "/x/key.pem", "--tls-client-ca", "/x/ca.pem", "--jwt-secret-file",
                         secret_path, "--jwt-issuer", "iss-flag", "--jwt-audience", "aud-flag",
                         "--jwt-leeway", "5", "--store", "memory", "--log-format", "text",
                         "--ready-file", "/x/ready", "--health-listen", "127.0.0.1:8081",
                         "--metrics-listen", "[::1]:9090", "--etcd-endpoints",
                         "http://127.0.0.1:2379,localhost:2380", "--advertise-addr",
                         "10.0.0.1:50051", "--threads", "4"),
                   CONFIG_OK);
  assert_string_equal(c->listen.text, "127.0.0.1:0");
  assert_int_equal(c->listen.port, 0);
  assert_string_equal(c->tls_cert, "/x/cert.pem");
  assert_string_equal(c->tls_key, "/x/key.pem");
  assert_string_equal(c->tls_client_ca, "/x/ca.pem");
  assert_false(c->insecure);
  assert_int_equal(c->jwt_secret.len, 32);
  assert_memory_equal(c->jwt_secret.bytes, g_secret32, 32);
  assert_string_equal(c->jwt_issuer, "iss-flag");
  assert_string_equal(c->jwt_audience, "aud-flag");
  assert_int_equal(c->jwt_leeway_s, 5);
  assert_string_equal(c->store_spec, "memory");
  assert_int_equal(c->log_format, LOG_FORMAT_TEXT);
  assert_string_equal(c->ready_file, "/x/ready");
  assert_true(c->health_listen.set);
  assert_string_equal(c->health_listen.text, "127.0.0.1:8081");
  assert_string_equal(c->metrics_listen.text, "[::1]:9090");
  assert_string_equal(c->metrics_listen.host, "::1");
  assert_int_equal(c->n_etcd_endpoints, 2);
  assert_string_equal(c->etcd_endpoints[0], "http://127.0.0.1:2379");
  assert_string_equal(c->etcd_endpoints[1], "http://localhost:2380");
  assert_null(c->etcd_endpoints[2]);
  assert_string_equal(c->advertise.text, "10.0.0.1:50051");
  assert_int_equal(c->threads, 4);
  config_destroy(c);
}

static void test_flag_equals_form_and_insecure_flag(void **state) {
  (void)state;
  env_unset("INSECURE");
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--listen=127.0.0.1:7000", "--insecure", "--jwt-leeway=0"), CONFIG_OK);
  assert_string_equal(c->listen.text, "127.0.0.1:7000");
  assert_true(c->insecure);
  assert_int_equal(c->jwt_leeway_s, 0);
  config_destroy(c);
}

/* ------------------------------------------------------- every variable --- */

static void test_every_variable_sets_its_field(void **state) {
  (void)state;
  char secret_path[128];
  snprintf(secret_path, sizeof secret_path, "%s/env-secret", g_tmpdir);
  write_file(secret_path, g_secret40);
  g_n_env = 0;
  env_set("LISTEN_ADDR", "127.0.0.1:6000");
  env_set("TLS_CERT_FILE", "/e/cert.pem");
  env_set("TLS_KEY_FILE", "/e/key.pem");
  env_set("TLS_CLIENT_CA_FILE", "/e/ca.pem");
  env_set("JWT_SECRET_FILE", secret_path);
  env_set("JWT_SECRET", g_secret32); /* the file wins over the value */
  env_set("JWT_ISSUER", "iss-env");
  env_set("JWT_AUDIENCE", "aud-env");
  env_set("JWT_LEEWAY", "7");
  env_set("STORE", "memory");
  env_set("LOG_FORMAT", "text");
  env_set("READY_FILE", "/e/ready");
  env_set("HEALTH_LISTEN_ADDR", "127.0.0.1:6001");
  env_set("METRICS_LISTEN_ADDR", "127.0.0.1:6002");
  env_set("ETCD_ENDPOINTS", "https://etcd.example:2379");
  env_set("ADVERTISE_ADDR", "pod-1.example:6000");
  env_set("WORKER_THREADS", "3");
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_string_equal(c->listen.text, "127.0.0.1:6000");
  assert_string_equal(c->tls_cert, "/e/cert.pem");
  assert_string_equal(c->tls_key, "/e/key.pem");
  assert_string_equal(c->tls_client_ca, "/e/ca.pem");
  assert_false(c->insecure);
  assert_int_equal(c->jwt_secret.len, 40);
  assert_memory_equal(c->jwt_secret.bytes, g_secret40, 40);
  assert_string_equal(c->jwt_issuer, "iss-env");
  assert_string_equal(c->jwt_audience, "aud-env");
  assert_int_equal(c->jwt_leeway_s, 7);
  assert_string_equal(c->store_spec, "memory");
  assert_int_equal(c->log_format, LOG_FORMAT_TEXT);
  assert_string_equal(c->ready_file, "/e/ready");
  assert_string_equal(c->health_listen.text, "127.0.0.1:6001");
  assert_string_equal(c->metrics_listen.text, "127.0.0.1:6002");
  assert_int_equal(c->n_etcd_endpoints, 1);
  assert_string_equal(c->etcd_endpoints[0], "https://etcd.example:2379");
  assert_string_equal(c->advertise.text, "pod-1.example:6000");
  assert_int_equal(c->threads, 3);
  config_destroy(c);
}

static void test_jwt_secret_variable_used_without_a_file(void **state) {
  (void)state;
  env_set("JWT_SECRET", g_secret32);
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_int_equal(c->jwt_secret.len, 32);
  assert_memory_equal(c->jwt_secret.bytes, g_secret32, 32);
  config_destroy(c);
}

static void test_flags_win_over_variables(void **state) {
  (void)state;
  char file_a[128], file_b[128];
  snprintf(file_a, sizeof file_a, "%s/secret-a", g_tmpdir);
  snprintf(file_b, sizeof file_b, "%s/secret-b", g_tmpdir);
  write_file(file_a, g_secret40);
  write_file(file_b, g_secret32);
  g_n_env = 0;
  env_set("LISTEN_ADDR", "127.0.0.1:1");
  env_set("PORT", "2");
  env_set("TLS_CERT_FILE", "/e/c");
  env_set("TLS_KEY_FILE", "/e/k");
  env_set("TLS_CLIENT_CA_FILE", "/e/ca");
  env_set("JWT_SECRET_FILE", file_a);
  env_set("JWT_ISSUER", "e-iss");
  env_set("JWT_AUDIENCE", "e-aud");
  env_set("JWT_LEEWAY", "1");
  env_set("STORE", "memory");
  env_set("LOG_FORMAT", "text");
  env_set("READY_FILE", "/e/r");
  env_set("HEALTH_LISTEN_ADDR", "127.0.0.1:3");
  env_set("METRICS_LISTEN_ADDR", "127.0.0.1:4");
  env_set("ETCD_ENDPOINTS", "e1:1");
  env_set("ADVERTISE_ADDR", "e:5");
  env_set("WORKER_THREADS", "9");
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--listen", "127.0.0.1:11", "--tls-cert", "/f/c", "--tls-key", "/f/k",
                         "--tls-client-ca", "/f/ca", "--jwt-secret-file", file_b, "--jwt-issuer",
                         "f-iss", "--jwt-audience", "f-aud", "--jwt-leeway", "11", "--store",
                         "sqlite:/f/db", "--log-format", "json", "--ready-file", "/f/r",
                         "--health-listen", "127.0.0.1:13", "--metrics-listen", "127.0.0.1:14",
                         "--etcd-endpoints", "f1:1", "--advertise-addr", "f:15", "--threads", "2"),
                   CONFIG_OK);
  assert_string_equal(c->listen.text, "127.0.0.1:11");
  assert_string_equal(c->tls_cert, "/f/c");
  assert_string_equal(c->tls_key, "/f/k");
  assert_string_equal(c->tls_client_ca, "/f/ca");
  assert_int_equal(c->jwt_secret.len, 32);
  assert_string_equal(c->jwt_issuer, "f-iss");
  assert_string_equal(c->jwt_audience, "f-aud");
  assert_int_equal(c->jwt_leeway_s, 11);
  assert_string_equal(c->store_spec, "sqlite:/f/db");
  assert_int_equal(c->log_format, LOG_FORMAT_JSON);
  assert_string_equal(c->ready_file, "/f/r");
  assert_string_equal(c->health_listen.text, "127.0.0.1:13");
  assert_string_equal(c->metrics_listen.text, "127.0.0.1:14");
  assert_string_equal(c->etcd_endpoints[0], "http://f1:1");
  assert_string_equal(c->advertise.text, "f:15");
  assert_int_equal(c->threads, 2);
  config_destroy(c);
}

static void test_flag_wins_over_a_bad_variable(void **state) {
  (void)state;
  env_set("LISTEN_ADDR", "garbage:port");
  env_set("JWT_LEEWAY", "soon");
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--listen", "127.0.0.1:5", "--jwt-leeway", "3"), CONFIG_OK);
  assert_string_equal(c->listen.text, "127.0.0.1:5");
  assert_int_equal(c->jwt_leeway_s, 3);
  config_destroy(c);
}

static void test_empty_variable_counts_as_unset(void **state) {
  (void)state;
  env_set("LISTEN_ADDR", "");
  env_set("JWT_ISSUER", "");
  env_set("STORE", "");
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_string_equal(c->listen.text, "0.0.0.0:50051");
  assert_string_equal(c->jwt_issuer, "product-service");
  assert_string_equal(c->store_spec, "sqlite:./data/products.db");
  config_destroy(c);
}

static void test_last_repeated_flag_wins(void **state) {
  (void)state;
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--jwt-issuer", "first", "--jwt-issuer", "second"), CONFIG_OK);
  assert_string_equal(c->jwt_issuer, "second");
  config_destroy(c);
}

/* ------------------------------------------------------------------ PORT --- */

static void test_port_alone_means_every_interface(void **state) {
  (void)state;
  env_set("PORT", "8080");
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_string_equal(c->listen.text, "0.0.0.0:8080");
  assert_int_equal(c->listen.port, 8080);
  config_destroy(c);
}

static void test_port_ignored_when_listen_addr_or_flag_given(void **state) {
  (void)state;
  env_set("PORT", "8080");
  env_set("LISTEN_ADDR", "127.0.0.1:9000");
  config *c = NULL;
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_string_equal(c->listen.text, "127.0.0.1:9000");
  config_destroy(c);
  env_unset("LISTEN_ADDR");
  assert_int_equal(PARSE(&c, "--listen", "127.0.0.1:9001"), CONFIG_OK);
  assert_string_equal(c->listen.text, "127.0.0.1:9001");
  config_destroy(c);
}

/* -------------------------------------------------------------- INSECURE --- */

static void test_insecure_variable_values(void **state) {
  (void)state;
  const char *on[] = {"1", "true", "yes", "TRUE", "Yes"};
  for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
    env_set("INSECURE", on[i]);
    config *c = NULL;
    assert_int_equal(PARSE0(&c), CONFIG_OK);
    assert_true(c->insecure);
    config_destroy(c);
  }
  const char *off[] = {"0", "false", "no", "", "FALSE"};
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
    env_set("INSECURE", off[i]);
    REFUSED0("no TLS certificate");
    config *c = NULL;
    assert_int_equal(PARSE(&c, "--tls-cert", "c.pem", "--tls-key", "k.pem"), CONFIG_OK);
    assert_false(c->insecure);
    config_destroy(c);
  }
  env_set("INSECURE", "maybe");
  REFUSED0("INSECURE");
  env_set("INSECURE", "2");
  REFUSED0("INSECURE");
}

/* ---------------------------------------------------------- help/version --- */

static char *capture(config_result *rc, const char **args) {
  int argc = 0;
  while (args[argc]) argc++;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  config *c = (config *)0x1;
  *rc = config_parse(argc, (char **)args, fake_getenv, f, &c, g_err, sizeof g_err);
  fclose(f);
  assert_null(c);
  return buf;
}

static void test_help_lists_every_flag_and_variable(void **state) {
  (void)state;
  g_n_env = 0; /* works without any configuration */
  config_result rc;
  char *out = capture(&rc, (const char *[]){"product-server", "--help", NULL});
  assert_int_equal(rc, CONFIG_EXIT_SUCCESS);
  const char *want[] = {
      "--listen",         "LISTEN_ADDR",        "0.0.0.0:50051",      "--tls-cert",
      "TLS_CERT_FILE",    "--tls-key",          "TLS_KEY_FILE",       "--tls-client-ca",
      "TLS_CLIENT_CA_FILE", "--insecure",       "INSECURE",           "--jwt-secret-file",
      "JWT_SECRET_FILE",  "JWT_SECRET",         "--jwt-issuer",       "JWT_ISSUER",
      "product-service",  "--jwt-audience",     "JWT_AUDIENCE",       "client",
      "--jwt-leeway",     "JWT_LEEWAY",         "30",                 "--store",
      "STORE",            "sqlite:./data/products.db", "--log-format", "LOG_FORMAT",
      "json",             "--ready-file",       "READY_FILE",         "--health-listen",
      "HEALTH_LISTEN_ADDR", "--metrics-listen", "METRICS_LISTEN_ADDR", "--etcd-endpoints",
      "ETCD_ENDPOINTS",   "--advertise-addr",   "ADVERTISE_ADDR",     "--threads",
      "WORKER_THREADS",   "--help",             "--version",          "PORT",
      "--jwt-keys",       "JWT_KEYS_FILE",      "--jwt-revocations",  "JWT_REVOCATIONS_FILE"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!strstr(out, want[i])) fail_msg("help lacks '%s'", want[i]);
  free(out);
  out = capture(&rc, (const char *[]){"product-server", "-h", NULL});
  assert_int_equal(rc, CONFIG_EXIT_SUCCESS);
  assert_non_null(strstr(out, "Usage: product-server"));
  free(out);
}

static void test_version_names_product_and_core_versions(void **state) {
  (void)state;
  config_result rc;
  char *out = capture(&rc, (const char *[]){"product-server", "--version", NULL});
  assert_int_equal(rc, CONFIG_EXIT_SUCCESS);
  char want[128];
  snprintf(want, sizeof want, "product-server %s (grpc core %s)\n", PRODUCT_VERSION,
           PRODUCT_GRPC_CORE_VERSION);
  assert_string_equal(out, want);
  free(out);
}

static void test_parse_can_run_many_times(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++) {
    config *c = NULL;
    assert_int_equal(PARSE(&c, "--jwt-issuer", "a", "--jwt-audience", "b"), CONFIG_OK);
    assert_string_equal(c->jwt_issuer, "a");
    assert_string_equal(c->jwt_audience, "b");
    config_destroy(c);
    REFUSED("--nope", "--nope");
    assert_int_equal(PARSE0(&c), CONFIG_OK);
    assert_string_equal(c->jwt_issuer, "product-service");
    config_destroy(c);
    /* getopt stops inside "-xyz": the next parse must not resume there */
    REFUSED("-x", "-xyz");
    assert_int_equal(PARSE0(&c), CONFIG_OK);
    assert_string_equal(c->jwt_issuer, "product-service");
    config_destroy(c);
  }
}

/* A key set replaces the secret; the files themselves are checked by
 * auth/keyring.c when the server builds (tests/unit/test_keyring.c). */
static void test_key_set_and_revocation_files(void **state) {
  (void)state;
  config *c = NULL;
  env_unset("JWT_SECRET");
  assert_int_equal(PARSE(&c, "--jwt-keys", "/k/jwks.json", "--jwt-revocations", "/k/rev"),
                   CONFIG_OK);
  assert_string_equal(c->jwt_keys_file, "/k/jwks.json");
  assert_string_equal(c->jwt_revocations_file, "/k/rev");
  assert_null(c->jwt_secret.bytes);
  config_destroy(c);
  env_set("JWT_KEYS_FILE", "/env/jwks.json");
  env_set("JWT_REVOCATIONS_FILE", "/env/rev");
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_string_equal(c->jwt_keys_file, "/env/jwks.json");
  assert_string_equal(c->jwt_revocations_file, "/env/rev");
  config_destroy(c);
  /* Revocations alone go with the secret. */
  env_unset("JWT_KEYS_FILE");
  env_set("JWT_SECRET", g_secret40);
  assert_int_equal(PARSE0(&c), CONFIG_OK);
  assert_null(c->jwt_keys_file);
  assert_non_null(c->jwt_secret.bytes);
  assert_string_equal(c->jwt_revocations_file, "/env/rev");
  config_destroy(c);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, setup)
  const struct CMUnitTest tests[] = {
      T(test_defaults_match_the_contract),
      T(test_every_flag_sets_its_field),
      T(test_flag_equals_form_and_insecure_flag),
      T(test_every_variable_sets_its_field),
      T(test_jwt_secret_variable_used_without_a_file),
      T(test_flags_win_over_variables),
      T(test_flag_wins_over_a_bad_variable),
      T(test_empty_variable_counts_as_unset),
      T(test_last_repeated_flag_wins),
      T(test_port_alone_means_every_interface),
      T(test_port_ignored_when_listen_addr_or_flag_given),
      T(test_insecure_variable_values),
      T(test_help_lists_every_flag_and_variable),
      T(test_version_names_product_and_core_versions),
      T(test_parse_can_run_many_times),
      T(test_key_set_and_revocation_files),
  };
#undef T
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
