/* mint-token: prints one HS256 JWT that product-server accepts
 * (mint-token(1), "mint-token"). Exit status: 0 on success, 2 for a usage or
 * secret or key-set problem (one line on stderr), 1 when signing or writing
 * fails. With --keys (or JWT_KEYS_FILE) it signs with one key of a JWK Set
 * and names it in the kid header: --kid ID, else the last key that may sign.
 * Neither the secret nor the token ever goes to stderr. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwks.h"
#include "auth/jwt_sign.h"
#include "auth/jwt_verify.h"
#include "auth/secret.h"
#include "auth/ttl.h"

#ifndef PRODUCT_VERSION
#define PRODUCT_VERSION "0.0.0"
#endif

#define PROG "mint-token"
#define EXIT_USAGE 2

typedef struct mint_options {
  const char *sub;
  const char *role;
  const char *ttl;
  const char *issuer;
  const char *audience;
  const char *secret_file;
  const char *keys_file;
  const char *kid;
} mint_options;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: " PROG " --sub ID [--role ROLE] [--ttl DURATION] [--issuer S]\n"
          "                  [--audience S] [--secret-file PATH | --keys PATH [--kid ID]]\n"
          "\n"
          "Prints one compact HS256 JWT and a newline on stdout.\n"
          "\n"
          "Options:\n"
          "  --sub ID            subject (also written as user_id); required\n"
          "  --role ROLE         role claim, e.g. admin (none when not given)\n"
          "  --ttl DURATION      lifetime: 90s, 15m, 1h, 7d or plain seconds (default 1h)\n"
          "  --issuer S          iss claim (default product-service)\n"
          "  --audience S        aud claim (default client)\n"
          "  --secret-file PATH  file holding the HS256 secret (trailing newline stripped)\n"
          "  --keys PATH         sign with a key of this JWK Set (env JWT_KEYS_FILE)\n"
          "  --kid ID            the key to sign with (default: the last one that may sign)\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       print the version and exit\n"
          "\n"
          "The secret comes from --secret-file, else the file named by JWT_SECRET_FILE,\n"
          "else JWT_SECRET itself; it must be at least %d bytes. A key set replaces the\n"
          "secret: --keys or --secret-file chooses whatever the environment holds; both\n"
          "flags, or both kinds of variables and no flag, exit 2. Every token carries a\n"
          "random jti.\n",
          SECRET_MIN_LEN);
}

/* One line on stderr, the form every binary of the project uses. */
static int fail_usage(const char *what, const char *detail) {
  if (detail != NULL)
    fprintf(stderr, PROG ": %s%s\n", what, detail);
  else
    fprintf(stderr, PROG ": %s\n", what);
  return EXIT_USAGE;
}

enum {
  OPT_SUB = 256,
  OPT_ROLE,
  OPT_TTL,
  OPT_ISSUER,
  OPT_AUDIENCE,
  OPT_SECRET_FILE,
  OPT_KEYS,
  OPT_KID
};

/* Returns -1 to go on, or the exit status to end with. */
static int parse_args(int argc, char **argv, mint_options *o) {
  static const struct option longopts[] = {
      {"sub", required_argument, NULL, OPT_SUB},
      {"role", required_argument, NULL, OPT_ROLE},
      {"ttl", required_argument, NULL, OPT_TTL},
      {"issuer", required_argument, NULL, OPT_ISSUER},
      {"audience", required_argument, NULL, OPT_AUDIENCE},
      {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
      {"keys", required_argument, NULL, OPT_KEYS},
      {"kid", required_argument, NULL, OPT_KID},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  opterr = 0; /* our own messages, in our own one-line form */
  for (;;) {
    int ch = getopt_long(argc, argv, ":hV", longopts, NULL);
    if (ch == -1)
      break;
    switch (ch) {
    case OPT_SUB:
      o->sub = optarg;
      break;
    case OPT_ROLE:
      o->role = optarg;
      break;
    case OPT_TTL:
      o->ttl = optarg;
      break;
    case OPT_ISSUER:
      o->issuer = optarg;
      break;
    case OPT_AUDIENCE:
      o->audience = optarg;
      break;
    case OPT_SECRET_FILE:
      o->secret_file = optarg;
      break;
    case OPT_KEYS:
      o->keys_file = optarg;
      break;
    case OPT_KID:
      o->kid = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf(PROG " %s\n", PRODUCT_VERSION);
      return 0;
    case ':':
      return fail_usage("missing value for ", argv[optind - 1]);
    default:
      if (optopt != 0) {
        char flag[3] = {'-', (char)optopt, '\0'};
        return fail_usage("unknown option ", flag);
      }
      return fail_usage("unknown option ", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return fail_usage("unexpected argument ", argv[optind]);
  if (o->sub == NULL)
    return fail_usage("missing required --sub", NULL);
  if (o->sub[0] == '\0')
    return fail_usage("--sub must not be empty", NULL);
  if (strlen(o->sub) > JWT_SUB_MAX)
    return fail_usage("--sub is too long (at most 1024 bytes)", NULL);
  if (o->role != NULL && strlen(o->role) > JWT_ROLE_MAX)
    return fail_usage("--role is too long (at most 256 bytes)", NULL);
  return -1;
}

static const char *env_value(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* With a key set: a copy of the chosen key's bytes in s, its kid in kid
 * (which the caller frees). */
static int load_key(const mint_options *o, const char *path, secret *s, char **kid) {
  char why[512];
  jwks *set = NULL;
  int status = EXIT_USAGE;
  if (jwks_load_file(path, &set, why, sizeof(why)) != 0)
    return fail_usage(why, NULL);
  const jwks_key *k = o->kid != NULL ? jwks_find(set, o->kid) : jwks_signing_key(set);
  if (k == NULL) {
    if (o->kid != NULL)
      fail_usage("no key with that --kid in ", path);
    else
      fail_usage("no key that may sign (key_ops with \"sign\") in ", path);
    goto cleanup;
  }
  if (!k->can_sign) {
    fail_usage("--kid names a verify-only key (key_ops [\"verify\"]): it cannot sign", NULL);
    goto cleanup;
  }
  *kid = strdup(k->kid);
  s->bytes = malloc(k->k_len + 1);
  if (*kid == NULL || s->bytes == NULL) {
    fail_usage("out of memory", NULL);
    goto cleanup;
  }
  memcpy(s->bytes, k->k, k->k_len);
  s->bytes[k->k_len] = '\0';
  s->len = k->k_len;
  status = 0;
cleanup:
  jwks_destroy(set);
  return status;
}

/* The secret from --secret-file, else JWT_SECRET_FILE, else JWT_SECRET. An
 * empty environment variable counts as unset. */
static int load_secret(const mint_options *o, secret *s) {
  char why[512];
  const char *file = o->secret_file;
  if (file == NULL) {
    const char *env = getenv("JWT_SECRET_FILE");
    if (env != NULL && env[0] != '\0')
      file = env;
  }
  if (file != NULL) {
    if (secret_load_file(file, s, why, sizeof(why)) != 0)
      return fail_usage("secret file ", why);
  } else {
    const char *value = getenv("JWT_SECRET");
    if (value == NULL || value[0] == '\0')
      return fail_usage("no secret: give --secret-file, JWT_SECRET_FILE or JWT_SECRET", NULL);
    if (secret_from_value(value, s, why, sizeof(why)) != 0)
      return fail_usage("JWT_SECRET: ", why);
  }
  if (secret_check(s, why, sizeof(why)) != 0)
    return fail_usage(why, NULL);
  return 0;
}

int main(int argc, char **argv) {
  int status = EXIT_USAGE;
  mint_options o = {.ttl = "1h", .issuer = "product-service", .audience = "client"};
  secret s = {0};
  char *token = NULL;
  char *kid = NULL;

  int r = parse_args(argc, argv, &o);
  if (r >= 0)
    return r;

  int64_t ttl_s;
  if (ttl_parse(o.ttl, &ttl_s) != 0) {
    status = fail_usage("bad --ttl: use 90s, 15m, 1h, 7d or plain seconds, from 1 s to 3650 d",
                        NULL);
    goto cleanup;
  }
  /* A key set or a secret. A flag names the one meant, whatever the
   * environment holds for the other (a shell that exports JWT_SECRET for
   * the server may still mint with --keys); two flags, or the two kinds of
   * variables with no flag to choose, are ambiguous: exit 2, as in the
   * server. */
  const char *keys = o.keys_file;
  const char *secret_src = o.secret_file != NULL ? "--secret-file" : NULL;
  if (keys == NULL && secret_src == NULL) {
    keys = env_value("JWT_KEYS_FILE");
    secret_src = env_value("JWT_SECRET_FILE") != NULL ? "JWT_SECRET_FILE"
                 : env_value("JWT_SECRET") != NULL    ? "JWT_SECRET"
                                                      : NULL;
  }
  if (keys != NULL && secret_src != NULL) {
    status = fail_usage("a key set (--keys, JWT_KEYS_FILE) and a secret both given: ",
                        secret_src);
    goto cleanup;
  }
  if (keys == NULL && o.kid != NULL) {
    status = fail_usage("--kid needs a key set (--keys or JWT_KEYS_FILE)", NULL);
    goto cleanup;
  }
  if ((keys != NULL ? load_key(&o, keys, &s, &kid) : load_secret(&o, &s)) != 0)
    goto cleanup;

  char why[256];
  jwt_sign_claims claims = {
      .sub = o.sub,
      .role = o.role,
      .issuer = o.issuer,
      .audience = o.audience,
      .now = (int64_t)time(NULL),
      .ttl_s = ttl_s,
      .kid = kid,
  };
  if (jwt_sign_hs256(&claims, s.bytes, s.len, &token, why, sizeof(why)) != 0) {
    fprintf(stderr, PROG ": %s\n", why);
    status = 1;
    goto cleanup;
  }
  if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
    fprintf(stderr, PROG ": cannot write the token to stdout\n");
    status = 1;
    goto cleanup;
  }
  status = 0;
cleanup:
  jwt_sign_free(token);
  free(kid);
  if (s.bytes != NULL)
    secret_wipe(&s);
  return status;
}
