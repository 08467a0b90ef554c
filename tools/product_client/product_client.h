#ifndef PRODUCT_CLIENT_H
#define PRODUCT_CLIENT_H
/* product-client: a command-line client for every ProductService RPC.
 * args.c turns argv into pc_global + pc_command (nothing is started while
 * parsing), commands.c runs a command through rpc_client, product_json.c
 * prints results, discover.c picks a server from etcd. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "client/rpc_client.h"

/* Exit statuses, as the contract fixes them. */
enum { PC_EXIT_OK = 0, PC_EXIT_FAILED = 1, PC_EXIT_USAGE = 2 };

#define PC_DEFAULT_ADDR "localhost:50051"
#define PC_DEFAULT_TIMEOUT_MS 10000

/* Global options. Strings point into argv or the environment. */
typedef struct pc_global {
  const char *addr;     /* --addr, else $PRODUCT_ADDR, else PC_DEFAULT_ADDR */
  const char *discover; /* --discover ETCD_URL, or NULL */
  const char *ca;       /* --ca PATH */
  bool insecure;
  const char *cert, *key;
  const char *server_name; /* --server-name: TLS target name override */
  const char *token;       /* --token, else $PRODUCT_TOKEN; NULL or "" = none */
  int64_t timeout_ms;
} pc_global;

typedef enum pc_command_kind {
  PC_CMD_CREATE,
  PC_CMD_GET,
  PC_CMD_UPDATE,
  PC_CMD_DELETE,
  PC_CMD_LIST,
  PC_CMD_DEMO,
  PC_CMD_HEALTH,
} pc_command_kind;

/* A parsed command. Strings point into argv except mask_paths, which are
 * owned (pc_command_free). */
typedef struct pc_command {
  pc_command_kind kind;
  const char *id; /* the product ID, or health's SERVICE ("" when not given) */
  const char *name, *description;
  bool has_name, has_description, has_price;
  double price;
  const char **categories;
  size_t n_categories;
  char **mask_paths;
  size_t n_mask_paths;
  bool has_mask;
  int32_t page_size;
  const char *page_token, *filter;
  const char *request_id; /* create --request-id, or NULL */
  const char *etag;       /* update/delete --etag, or NULL */
} pc_command;

/* args.c. Each returns -1 to go on, or the exit status to end with (after
 * printing help, the version, or a "product-client: <problem>" line).
 * pc_parse_global stops at the command word; pc_parse_command parses the
 * command's options (argv[0] is the command word) and any global options
 * that follow it; pc_finish_global then checks the combination and fills in
 * defaults from the environment. */
int pc_parse_global(int argc, char **argv, pc_global *g, int *command_index);
int pc_parse_command(int argc, char **argv, pc_global *g, pc_command *cmd);
int pc_finish_global(pc_global *g);
void pc_command_free(pc_command *cmd);
/* Prints "product-client: <problem>" on stderr; returns PC_EXIT_USAGE. */
int pc_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* commands.c */
typedef struct pc_session {
  rpc_client *rpc;
  const rpc_metadata *md; /* the authorization entry, when there is a token */
  size_t n_md;
  int64_t timeout_ms;
} pc_session;

/* Runs the command and prints its JSON result; returns the exit status. */
int pc_run(pc_session *s, const pc_command *cmd);
/* Prints "error: CODE: message" on stderr (control characters masked). */
void pc_print_error(rpc_code code, const char *message);

/* product_json.c. Each returns a new reference, or NULL when out of memory. */
struct Product__Product;
struct Product__ListProductsResponse;
json_t *pj_product(const struct Product__Product *p);
json_t *pj_list(const struct Product__ListProductsResponse *r);
/* A JSON string even for bytes that are not UTF-8 (replaced by U+FFFD). */
json_t *pj_string(const char *s);
/* One compact line on f; reals in the shortest form that reads back exactly. */
int pj_print(json_t *value, FILE *f);

/* discover.c: picks a server registered under /services/product-service/ in
 * the etcd at etcd_url. Returns 0 with "HOST:PORT" in addr, or a non-zero
 * rpc_code with the reason in err (printed as "error: CODE: reason"). */
int discover_pick(const char *etcd_url, char *addr, size_t addrlen, char *err, size_t errlen);

#endif
