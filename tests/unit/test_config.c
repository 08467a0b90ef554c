/* Tests for src/config: every flag and variable, precedence, refusals, help
 * and version, address and endpoint syntax, redaction. The environment is a
 * fake table handed to config_parse, never the process environment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

/* ------------------------------------------------------------ fixtures --- */

#define MAX_ENV 32
static struct {
  const char *name;
  const char *value;
} g_env[MAX_ENV];
static size_t g_n_env;

static const char *fake_getenv(const char *name) {
  for (size_t i = 0; i < g_n_env; i++)
    if (strcmp(g_env[i].name, name) == 0) return g_env[i].value;
  return NULL;
}

static void env_set(const char *name, const char *value) {
  for (size_t i = 0; i < g_n_env; i++)
    if (strcmp(g_env[i].name, name) == 0) {
      g_env[i].value = value;
      return;
    }
  assert_true(g_n_env < MAX_ENV);
  g_env[g_n_env].name = name;
  g_env[g_n_env].value = value;
  g_n_env++;
}

static void env_unset(const char *name) {
  for (size_t i = 0; i < g_n_env; i++)
    if (strcmp(g_env[i].name, name) == 0) {
      g_env[i] = g_env[--g_n_env];
      return;
    }
}

/* Secrets are made at run time, never stored in the tree. */
static char g_secret40[41];
static char g_secret32[33];
static char g_secret31[32];
static char g_tmpdir[64];

static void make_secret(char *buf, size_t len, char fill) {
  memset(buf, fill, len);
  buf[len] = '\0';
  buf[0] = (char)('a' + (getpid() % 26));
}

static int group_setup(void **state) {
  (void)state;
  make_secret(g_secret40, 40, 'k');
  make_secret(g_secret32, 32, 'm');
  make_secret(g_secret31, 31, 'n');
  snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_config.XXXXXX");
  return mkdtemp(g_tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int group_teardown(void **state) {
  (void)state;
  return nftw(g_tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A working environment: a secret and plaintext. */
static int setup(void **state) {
  (void)state;
  g_n_env = 0;
  env_set("JWT_SECRET", g_secret40);
  env_set("INSECURE", "1");
  return 0;
}

static void write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(content, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static char g_err[512];

/* Parses "product-server" + args (NULL-terminated). */
#define PARSE(cfgp, ...) parse_args(cfgp, (const char *[]){"product-server", __VA_ARGS__, NULL})
#define PARSE0(cfgp) parse_args(cfgp, (const char *[]){"product-server", NULL})

static config_result parse_args(config **out, const char **args) {
  int argc = 0;
  while (args[argc]) argc++;
  g_err[0] = '\0';
  FILE *sink = fopen("/dev/null", "w");
  assert_non_null(sink);
  config_result rc = config_parse(argc, (char **)args, fake_getenv, sink, out, g_err, sizeof g_err);
  fclose(sink);
  return rc;
}

/* A refusal: CONFIG_ERROR, no config, one non-empty line containing `want`. */
#define REFUSED(want, ...) expect_refusal(want, (const char *[]){"product-server", __VA_ARGS__, NULL})
#define REFUSED0(want) expect_refusal(want, (const char *[]){"product-server", NULL})

static void expect_refusal(const char *want, const char **args) {
  config *c = (config *)0x1;
  config_result rc = parse_args(&c, args);
  if (rc != CONFIG_ERROR) {
    config_destroy(rc == CONFIG_OK ? c : NULL);
    fail_msg("expected a refusal containing '%s' for %s", want, args[1] ? args[1] : "(none)");
  }
  assert_null(c);
  assert_true(g_err[0] != '\0');
  assert_null(strchr(g_err, '\n'));
  if (!strstr(g_err, want)) fail_msg("error '%s' lacks '%s'", g_err, want);
}

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

static void test_bad_port_variable_is_refused(void **state) {
  (void)state;
  env_set("PORT", "99999");
  REFUSED0("PORT");
  env_set("PORT", "http");
  REFUSED0("PORT");
  env_set("PORT", "-1");
  REFUSED0("PORT");
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
                         "--metrics-listen", "--etcd-endpoints", "--advertise-addr", "--threads"};
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

static void test_missing_secret_is_refused_with_the_contract_message(void **state) {
  (void)state;
  env_unset("JWT_SECRET");
  REFUSED0("no JWT secret: set --jwt-secret-file, JWT_SECRET_FILE or JWT_SECRET");
  assert_string_equal(g_err, "no JWT secret: set --jwt-secret-file, JWT_SECRET_FILE or JWT_SECRET");
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
  /* plaintext and a certificate at once is ambiguous */
  REFUSED("--insecure", "--tls-cert", "c.pem", "--tls-key", "k.pem");
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
      "WORKER_THREADS",   "--help",             "--version",          "PORT"};
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
  }
}

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

static void test_describe_redacts_secret_and_password(void **state) {
  (void)state;
  config *c = NULL;
  assert_int_equal(PARSE(&c, "--store", "postgres://app:hunter2@db:5432/products", "--listen",
                         "127.0.0.1:0", "--etcd-endpoints", "h1:1,h2:2"),
                   CONFIG_OK);
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
      T(test_bad_port_variable_is_refused),
      T(test_insecure_variable_values),
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
      T(test_help_lists_every_flag_and_variable),
      T(test_version_names_product_and_core_versions),
      T(test_parse_can_run_many_times),
      T(test_address_ports_and_forms),
      T(test_etcd_endpoints_are_normalised),
      T(test_store_spec_password_is_redacted),
      T(test_describe_redacts_secret_and_password),
  };
#undef T
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
