#ifndef TEST_CONFIG_FIXTURE_H
#define TEST_CONFIG_FIXTURE_H
/* Shared by test_config.c and test_config_refusals.c: a fake environment
 * handed to config_parse (never the process environment), secrets made at
 * run time, and parse/refusal helpers. Include after <cmocka.h>. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

/* ------------------------------------------------------------ fixtures --- */

#define MAX_ENV 32
static __attribute__((unused)) struct {
  const char *name;
  const char *value;
} g_env[MAX_ENV];
static __attribute__((unused)) size_t g_n_env;

static inline const char *fake_getenv(const char *name) {
  for (size_t i = 0; i < g_n_env; i++)
    if (strcmp(g_env[i].name, name) == 0) return g_env[i].value;
  return NULL;
}

static inline void env_set(const char *name, const char *value) {
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

static inline void env_unset(const char *name) {
  for (size_t i = 0; i < g_n_env; i++)
    if (strcmp(g_env[i].name, name) == 0) {
      g_env[i] = g_env[--g_n_env];
      return;
    }
}

/* Secrets are made at run time, never stored in the tree. */
static __attribute__((unused)) char g_secret40[41];
static __attribute__((unused)) char g_secret32[33];
static __attribute__((unused)) char g_secret31[32];
static __attribute__((unused)) char g_tmpdir[64];

static inline void make_secret(char *buf, size_t len, char fill) {
  memset(buf, fill, len);
  buf[len] = '\0';
  buf[0] = (char)('a' + (getpid() % 26));
}

static inline int group_setup(void **state) {
  (void)state;
  make_secret(g_secret40, 40, 'k');
  make_secret(g_secret32, 32, 'm');
  make_secret(g_secret31, 31, 'n');
  snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_config.XXXXXX");
  return mkdtemp(g_tmpdir) ? 0 : -1;
}

static inline int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline int group_teardown(void **state) {
  (void)state;
  return nftw(g_tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A working environment: a secret and plaintext. */
static inline int setup(void **state) {
  (void)state;
  g_n_env = 0;
  env_set("JWT_SECRET", g_secret40);
  env_set("INSECURE", "1");
  return 0;
}

static inline void write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(content, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static __attribute__((unused)) char g_err[512];

/* Parses "product-server" + args (NULL-terminated). */
#define PARSE(cfgp, ...) parse_args(cfgp, (const char *[]){"product-server", __VA_ARGS__, NULL})
#define PARSE0(cfgp) parse_args(cfgp, (const char *[]){"product-server", NULL})

static inline config_result parse_args(config **out, const char **args) {
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

static inline void expect_refusal(const char *want, const char **args) {
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

#endif
