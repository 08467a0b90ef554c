/* Command line of product-client: global options (getopt_long, "+" so that
 * parsing stops at the command word), then the command's own options in a
 * second getopt_long pass over the rest of argv. Nothing is started here;
 * every problem is one "product-client: ..." line and exit status 2. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "product_client.h"

#define PC_MAX_TIMEOUT_S 1e9 /* ~31 years: anything longer is a typo */

static const char usage_text[] =
    "Usage: product-client [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "A command-line client for product.ProductService.\n"
    "\n"
    "Options:\n"
    "  --addr HOST:PORT      server address (default: $PRODUCT_ADDR, else " PC_DEFAULT_ADDR ")\n"
    "  --discover ETCD_URL   pick a server registered in etcd instead of --addr\n"
    "  --ca PATH             PEM CA certificates that sign the server's certificate\n"
    "                        (default: grpc's root bundle)\n"
    "  --insecure            plaintext instead of TLS\n"
    "  --cert PATH           client certificate for mutual TLS (with --key)\n"
    "  --key PATH            private key of --cert\n"
    "  --server-name NAME    expect NAME in the server's certificate (testing)\n"
    "  --token JWT           bearer token (default: $PRODUCT_TOKEN)\n"
    "  --timeout SECONDS     deadline of each call, decimals allowed (default: 10)\n"
    "  -h, --help            show this help and exit\n"
    "  -V, --version         show the version and exit\n"
    "\n"
    "Commands:\n"
    "  create --name N [--description D] [--price P] [--category C]...\n"
    "         [--request-id UUID]  (a retry with the same UUID creates nothing new)\n"
    "  get ID\n"
    "  update ID [--name N] [--description D] [--price P] [--category C]...\n"
    "            [--mask PATH,...]   (with --mask exactly those fields change)\n"
    "            [--etag E]   (only if the product's etag is still E, else ABORTED)\n"
    "  delete ID [--etag E]\n"
    "  list [--page-size N] [--page-token T] [--filter F]\n"
    "  demo                  create, get, update, list and delete one product\n"
    "  health [SERVICE]      grpc.health.v1.Health/Check of SERVICE (default \"\":\n"
    "                        the server as a whole); exit 0 only when it is SERVING\n"
    "\n"
    "Options may also follow the command. Each command prints its result as\n"
    "one JSON object on stdout.\n"
    "Exit status: 0 done; 1 the call failed (\"error: CODE: message\" on stderr),\n"
    "or health's SERVICE is not SERVING (its status is printed); 2 bad usage.\n"
    "Set PRODUCT_CLIENT_DEBUG to see the gRPC core's own log lines on stderr.\n";

int pc_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("product-client: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return PC_EXIT_USAGE;
}

/* How many long options start with the "--name" part of arg (before '='). */
static int count_prefix_matches(const struct option *opts, const char *arg) {
  size_t len = strcspn(arg + 2, "=");
  int n = 0;
  for (; opts->name; opts++)
    if (strncmp(opts->name, arg + 2, len) == 0)
      n++;
  return n;
}

/* Reports getopt_long's '?' or ':' (opterr is 0, so it printed nothing). */
static int option_error(int c, char **argv, const struct option *opts, const char *where) {
  const char *arg = (optind > 0 && argv[optind - 1]) ? argv[optind - 1] : "?";
  if (c == ':')
    return pc_usage_error("%soption '%s' needs a value", where, arg);
  if (strncmp(arg, "--", 2) != 0)
    return pc_usage_error("%sunknown option '-%c'", where, optopt ? optopt : '?');
  if (optopt && strchr(arg, '='))
    return pc_usage_error("%soption '%s' takes no value", where, arg);
  if (count_prefix_matches(opts, arg) > 1)
    return pc_usage_error("%sambiguous option '%s'", where, arg);
  return pc_usage_error("%sunknown option '%s'", where, arg);
}

/* A decimal number (no hex, no "inf"/"nan" spellings) that strtod reads whole. */
static int parse_decimal(const char *s, double *out) {
  if (!s[0] || strspn(s, "0123456789+-.eE") != strlen(s))
    return -1;
  char *end;
  double v = strtod(s, &end); /* overflow gives inf; underflow a tiny value: fine */
  if (*end || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

/* HOST:PORT with a port in 1..65535 (grpc itself wraps larger ports around),
 * or a grpc target with a scheme we pass through (unix:, dns:, ipv4:, ...). */
static int check_addr(const char *addr) {
  if (strncmp(addr, "unix:", 5) == 0 || strncmp(addr, "unix-abstract:", 14) == 0)
    return addr[5] ? 0 : -1;
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
    return -1;
  if (strlen(colon + 1) > 5)
    return -1;
  long port = strtol(colon + 1, NULL, 10);
  return port >= 1 && port <= 65535 ? 0 : -1;
}

enum {
  OPT_ADDR = 256,
  OPT_DISCOVER,
  OPT_CA,
  OPT_INSECURE,
  OPT_CERT,
  OPT_KEY,
  OPT_SERVER_NAME,
  OPT_TOKEN,
  OPT_TIMEOUT,
};

static const struct option global_options[] = {
    {"addr", required_argument, NULL, OPT_ADDR},
    {"discover", required_argument, NULL, OPT_DISCOVER},
    {"ca", required_argument, NULL, OPT_CA},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"server-name", required_argument, NULL, OPT_SERVER_NAME},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int check_global(const pc_global *g) {
  if (g->discover && g->addr)
    return pc_usage_error("--addr and --discover cannot be used together");
  if (g->addr && check_addr(g->addr) != 0)
    return pc_usage_error("--addr: '%s' is not HOST:PORT with a port in 1..65535", g->addr);
  if (g->discover && !g->discover[0])
    return pc_usage_error("--discover needs an etcd URL");
  if (g->insecure && (g->ca || g->cert || g->key || g->server_name))
    return pc_usage_error("--insecure cannot be used with --ca, --cert, --key or --server-name");
  if (!g->cert != !g->key)
    return pc_usage_error("--cert and --key go together");
  if ((g->ca && !g->ca[0]) || (g->cert && !g->cert[0]) || (g->key && !g->key[0]))
    return pc_usage_error("--ca, --cert and --key need a file path");
  return -1;
}

/* Applies one global option. Returns -1 when done, -2 when c is not a
 * global option, or an exit status (after printing why). */
static int apply_global(pc_global *g, int c) {
  double seconds;
  switch (c) {
  case OPT_ADDR: g->addr = optarg; return -1;
  case OPT_DISCOVER: g->discover = optarg; return -1;
  case OPT_CA: g->ca = optarg; return -1;
  case OPT_INSECURE: g->insecure = true; return -1;
  case OPT_CERT: g->cert = optarg; return -1;
  case OPT_KEY: g->key = optarg; return -1;
  case OPT_SERVER_NAME: g->server_name = optarg; return -1;
  case OPT_TOKEN: g->token = optarg; return -1;
  case OPT_TIMEOUT:
    if (parse_decimal(optarg, &seconds) != 0 || seconds <= 0 || seconds > PC_MAX_TIMEOUT_S)
      return pc_usage_error("--timeout: '%s' is not a positive number of seconds", optarg);
    /* round up so that 0.0001 is 1 ms, not "no deadline" */
    g->timeout_ms = (int64_t)ceil(seconds * 1000.0);
    return -1;
  case 'V':
    printf("product-client %s\n", PRODUCT_VERSION);
    return fflush(stdout) == 0 ? PC_EXIT_OK : PC_EXIT_FAILED;
  default:
    return -2;
  }
}

int pc_parse_global(int argc, char **argv, pc_global *g, int *command_index) {
  *g = (pc_global){.timeout_ms = PC_DEFAULT_TIMEOUT_MS};
  int c;
  opterr = 0;
  optind = 0; /* full re-initialisation in glibc */
  while ((c = getopt_long(argc, argv, "+:hV", global_options, NULL)) != -1) {
    if (c == 'h') {
      fputs(usage_text, stdout);
      return fflush(stdout) == 0 ? PC_EXIT_OK : PC_EXIT_FAILED;
    }
    int rc = apply_global(g, c);
    if (rc == -2)
      return option_error(c, argv, global_options, "");
    if (rc >= 0)
      return rc;
  }
  if (optind >= argc)
    return pc_usage_error("missing command (create, get, update, delete, list, demo or health); "
                          "see --help");
  *command_index = optind;
  return -1;
}

int pc_finish_global(pc_global *g) {
  int rc = check_global(g);
  if (rc >= 0)
    return rc;
  if (!g->addr && !g->discover) {
    const char *env = getenv("PRODUCT_ADDR");
    g->addr = env && env[0] ? env : PC_DEFAULT_ADDR;
    if (check_addr(g->addr) != 0)
      return pc_usage_error("PRODUCT_ADDR: '%s' is not HOST:PORT with a port in 1..65535",
                            g->addr);
  }
  if (!g->token) /* an explicit --token "" means no token, not the environment's */
    g->token = getenv("PRODUCT_TOKEN");
  return -1;
}

/* ------------------------------------------------------------ commands ---- */

enum {
  OPT_NAME = 300,
  OPT_DESCRIPTION,
  OPT_PRICE,
  OPT_CATEGORY,
  OPT_MASK,
  OPT_PAGE_SIZE,
  OPT_PAGE_TOKEN,
  OPT_FILTER,
  OPT_REQUEST_ID,
  OPT_ETAG,
};

#define HELP_OPTION {"help", no_argument, NULL, 'h'}
static const struct option create_options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"description", required_argument, NULL, OPT_DESCRIPTION},
    {"price", required_argument, NULL, OPT_PRICE},
    {"category", required_argument, NULL, OPT_CATEGORY},
    {"request-id", required_argument, NULL, OPT_REQUEST_ID},
    HELP_OPTION,
    {NULL, 0, NULL, 0},
};
static const struct option update_options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"description", required_argument, NULL, OPT_DESCRIPTION},
    {"price", required_argument, NULL, OPT_PRICE},
    {"category", required_argument, NULL, OPT_CATEGORY},
    {"mask", required_argument, NULL, OPT_MASK},
    {"etag", required_argument, NULL, OPT_ETAG},
    HELP_OPTION,
    {NULL, 0, NULL, 0},
};
static const struct option delete_options[] = {
    {"etag", required_argument, NULL, OPT_ETAG},
    HELP_OPTION,
    {NULL, 0, NULL, 0},
};
static const struct option list_options[] = {
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"page-token", required_argument, NULL, OPT_PAGE_TOKEN},
    {"filter", required_argument, NULL, OPT_FILTER},
    HELP_OPTION,
    {NULL, 0, NULL, 0},
};
static const struct option no_options[] = {
    HELP_OPTION,
    {NULL, 0, NULL, 0},
};

/* The command's one positional argument (a product ID, health's SERVICE). */
typedef enum arg_rule { ARG_NONE, ARG_REQUIRED, ARG_OPTIONAL } arg_rule;

typedef struct command_spec {
  const char *name;
  pc_command_kind kind;
  const struct option *options;
  arg_rule arg;
  const char *usage;
} command_spec;

static const command_spec commands[] = {
    {"create", PC_CMD_CREATE, create_options, ARG_NONE,
     "create --name N [--description D] [--price P] [--category C]... [--request-id UUID]"},
    {"get", PC_CMD_GET, no_options, ARG_REQUIRED, "get ID"},
    {"update", PC_CMD_UPDATE, update_options, ARG_REQUIRED,
     "update ID [--name N] [--description D] [--price P] [--category C]... [--mask PATH,...]"
     " [--etag E]"},
    {"delete", PC_CMD_DELETE, delete_options, ARG_REQUIRED, "delete ID [--etag E]"},
    {"list", PC_CMD_LIST, list_options, ARG_NONE,
     "list [--page-size N] [--page-token T] [--filter F]"},
    {"demo", PC_CMD_DEMO, no_options, ARG_NONE, "demo"},
    {"health", PC_CMD_HEALTH, no_options, ARG_OPTIONAL, "health [SERVICE]"},
};

static int add_category(pc_command *cmd, const char *category) {
  const char **grown = realloc(cmd->categories, (cmd->n_categories + 1) * sizeof *grown);
  if (!grown)
    return -1;
  grown[cmd->n_categories++] = category;
  cmd->categories = grown;
  return 0;
}

static int add_mask_path(pc_command *cmd, char *path) {
  char **grown = realloc(cmd->mask_paths, (cmd->n_mask_paths + 1) * sizeof *grown);
  if (!grown)
    return -1;
  grown[cmd->n_mask_paths++] = path;
  cmd->mask_paths = grown;
  return 0;
}

/* "name, price" -> "name", "price" (spaces around a path are trimmed; an
 * empty --mask "" sends a mask with no paths, which the server ignores). */
static int add_mask_paths(pc_command *cmd, const char *list) {
  cmd->has_mask = true;
  const char *p = list;
  if (!*p)
    return 0;
  for (;;) {
    size_t len = strcspn(p, ",");
    const char *b = p, *e = p + len;
    while (b < e && (*b == ' ' || *b == '\t'))
      b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    char *path = strndup(b, (size_t)(e - b));
    if (!path || add_mask_path(cmd, path) != 0) {
      free(path);
      return -1;
    }
    if (!p[len])
      return 0;
    p += len + 1;
  }
}

static int parse_option(pc_command *cmd, const command_spec *spec, int c) {
  double price;
  char *end;
  long v;
  switch (c) {
  case OPT_NAME:
    cmd->name = optarg;
    cmd->has_name = true;
    return -1;
  case OPT_DESCRIPTION:
    cmd->description = optarg;
    cmd->has_description = true;
    return -1;
  case OPT_PRICE:
    if (parse_decimal(optarg, &price) != 0)
      return pc_usage_error("%s: --price: '%s' is not a finite decimal number", spec->name,
                            optarg);
    cmd->price = price;
    cmd->has_price = true;
    return -1;
  case OPT_CATEGORY:
    if (add_category(cmd, optarg) != 0)
      return pc_usage_error("out of memory");
    return -1;
  case OPT_MASK:
    if (add_mask_paths(cmd, optarg) != 0)
      return pc_usage_error("out of memory");
    return -1;
  case OPT_PAGE_SIZE:
    /* Negative sizes go to the server, which answers INVALID_ARGUMENT. */
    errno = 0;
    v = strtol(optarg, &end, 10);
    if (!optarg[0] || *end || errno == ERANGE || v < INT32_MIN || v > INT32_MAX ||
        strchr(" \t\n", optarg[0]))
      return pc_usage_error("%s: --page-size: '%s' is not a 32-bit integer", spec->name, optarg);
    cmd->page_size = (int32_t)v;
    return -1;
  case OPT_PAGE_TOKEN:
    cmd->page_token = optarg;
    return -1;
  case OPT_FILTER:
    cmd->filter = optarg;
    return -1;
  case OPT_REQUEST_ID: /* the server checks the form: one place for the rule */
    cmd->request_id = optarg;
    return -1;
  case OPT_ETAG:
    cmd->etag = optarg;
    return -1;
  case 'h':
    printf("Usage: product-client [OPTIONS] %s\n", spec->usage);
    return fflush(stdout) == 0 ? PC_EXIT_OK : PC_EXIT_FAILED;
  default:
    return -2; /* a getopt error: the caller reports it */
  }
}

/* The command's options followed by the global ones (but --help, which
 * means the command's help here). */
static void merge_options(const struct option *cmd_opts, struct option *all, size_t cap) {
  size_t n = 0;
  for (; cmd_opts->name && n + 1 < cap; cmd_opts++)
    all[n++] = *cmd_opts;
  for (const struct option *o = global_options; o->name && n + 1 < cap; o++)
    if (strcmp(o->name, "help") != 0)
      all[n++] = *o;
  all[n] = (struct option){NULL, 0, NULL, 0};
}

int pc_parse_command(int argc, char **argv, pc_global *g, pc_command *cmd) {
  *cmd = (pc_command){.id = NULL};
  const command_spec *spec = NULL;
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[0], commands[i].name) == 0)
      spec = &commands[i];
  if (!spec)
    return pc_usage_error("unknown command '%s' (create, get, update, delete, list, demo or health)",
                          argv[0]);
  cmd->kind = spec->kind;

  char where[32];
  snprintf(where, sizeof where, "%s: ", spec->name);
  /* Permuting pass: "update ID --name N" and "update --name N ID" both work;
   * "--" ends the options (for an ID that starts with '-'). Global options
   * are accepted here too, so "get ID --addr X" works. */
  struct option options[32];
  merge_options(spec->options, options, sizeof options / sizeof options[0]);
  opterr = 0;
  optind = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":hV", options, NULL)) != -1) {
    int rc = parse_option(cmd, spec, c);
    if (rc == -2) /* global options may also follow the command */
      rc = apply_global(g, c);
    if (rc == -2)
      rc = option_error(c, argv, options, where);
    if (rc >= 0)
      return rc;
  }
  int positional = argc - optind;
  if (spec->arg == ARG_REQUIRED && positional != 1)
    return pc_usage_error("%s: expected exactly one product ID (usage: %s)", spec->name,
                          spec->usage);
  int allowed = spec->arg == ARG_NONE ? 0 : 1;
  if (positional > allowed)
    return pc_usage_error("%s: unexpected argument '%s' (usage: %s)", spec->name,
                          argv[optind + allowed], spec->usage);
  if (spec->arg != ARG_NONE)
    cmd->id = positional == 1 ? argv[optind] : "";
  if (spec->kind == PC_CMD_CREATE && !cmd->has_name)
    return pc_usage_error("create: --name is required");
  return -1;
}

void pc_command_free(pc_command *cmd) {
  if (!cmd)
    return;
  free(cmd->categories);
  for (size_t i = 0; i < cmd->n_mask_paths; i++)
    free(cmd->mask_paths[i]);
  free(cmd->mask_paths);
  *cmd = (pc_command){.id = NULL};
}
