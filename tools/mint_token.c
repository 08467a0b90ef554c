/* mint-token: prints one HS256 JWT that product-server accepts
 * (CONTRACT.md, "mint-token"). Exit status: 0 on success, 2 for a usage or
 * secret problem (one line on stderr), 1 when signing or writing fails.
 * Neither the secret nor the token ever goes to stderr. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
} mint_options;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: " PROG " --sub ID [--role ROLE] [--ttl DURATION] [--issuer S]\n"
          "                  [--audience S] [--secret-file PATH]\n"
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
          "  -h, --help          show this help and exit\n"
          "  -V, --version       print the version and exit\n"
          "\n"
          "The secret comes from --secret-file, else the file named by JWT_SECRET_FILE,\n"
          "else JWT_SECRET itself; it must be at least %d bytes.\n",
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

enum { OPT_SUB = 256, OPT_ROLE, OPT_TTL, OPT_ISSUER, OPT_AUDIENCE, OPT_SECRET_FILE };

/* Returns -1 to go on, or the exit status to end with. */
static int parse_args(int argc, char **argv, mint_options *o) {
  static const struct option longopts[] = {
      {"sub", required_argument, NULL, OPT_SUB},
      {"role", required_argument, NULL, OPT_ROLE},
      {"ttl", required_argument, NULL, OPT_TTL},
      {"issuer", required_argument, NULL, OPT_ISSUER},
      {"audience", required_argument, NULL, OPT_AUDIENCE},
      {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
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

  int r = parse_args(argc, argv, &o);
  if (r >= 0)
    return r;

  int64_t ttl_s;
  if (ttl_parse(o.ttl, &ttl_s) != 0) {
    status = fail_usage("bad --ttl: use 90s, 15m, 1h, 7d or plain seconds, from 1 s to 3650 d",
                        NULL);
    goto cleanup;
  }
  if (load_secret(&o, &s) != 0)
    goto cleanup;

  char why[256];
  jwt_sign_claims claims = {
      .sub = o.sub,
      .role = o.role,
      .issuer = o.issuer,
      .audience = o.audience,
      .now = (int64_t)time(NULL),
      .ttl_s = ttl_s,
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
  secret_wipe(&s);
  return status;
}
