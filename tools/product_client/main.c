/* product-client: parse everything first (bad usage starts nothing), then
 * pick the server, open one channel and run the command. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "product_client.h"

/* Room for "HOST:PORT" picked by --discover. */
#define PC_ADDR_MAX 512

static int run(const pc_global *g, const pc_command *cmd) {
  char addr[PC_ADDR_MAX];
  char err[512];
  const char *target = g->addr;

  if (g->discover) {
    int code = discover_pick(g->discover, addr, sizeof addr, err, sizeof err);
    if (code != 0) {
      pc_print_error((rpc_code)code, err);
      return PC_EXIT_FAILED;
    }
    target = addr;
  }

  /* The core's own log lines (handshake failures, for instance) would
   * duplicate the one error line we print from the status; keep them for
   * debugging only. */
  rpc_client_set_core_log(getenv("PRODUCT_CLIENT_DEBUG") ? "product-client: " : NULL);

  rpc_client_options opt = {
      .target = target,
      .insecure = g->insecure,
      .ca_file = g->ca,
      .cert_file = g->cert,
      .key_file = g->key,
      .server_name_override = g->server_name,
      .wait_for_ready = false, /* a server that is down: UNAVAILABLE at once */
  };
  rpc_client *rpc = NULL;
  if (rpc_client_create(&opt, &rpc, err, sizeof err) != 0)
    return pc_usage_error("%s", err); /* unreadable --ca/--cert/--key: a bad flag value */

  char *bearer = NULL;
  size_t bearer_len = 0;
  rpc_metadata md = {.key = "authorization"};
  pc_session s = {.rpc = rpc, .timeout_ms = g->timeout_ms};
  int rc = PC_EXIT_FAILED;
  if (g->token && g->token[0]) {
    bearer_len = strlen("Bearer ") + strlen(g->token) + 1;
    bearer = malloc(bearer_len);
    if (!bearer) {
      pc_print_error(RPC_INTERNAL, "out of memory");
      goto cleanup;
    }
    snprintf(bearer, bearer_len, "Bearer %s", g->token);
    md.value = bearer;
    s.md = &md;
    s.n_md = 1;
  }
  rc = pc_run(&s, cmd);

cleanup:
  if (bearer) {
    OPENSSL_cleanse(bearer, bearer_len);
    free(bearer);
  }
  rpc_client_destroy(rpc);
  return rc;
}

int main(int argc, char **argv) {
  pc_global g;
  pc_command cmd = {.id = NULL};
  int command_index = 0;

  int rc = pc_parse_global(argc, argv, &g, &command_index);
  if (rc >= 0)
    return rc;
  rc = pc_parse_command(argc - command_index, argv + command_index, &g, &cmd);
  if (rc < 0)
    rc = pc_finish_global(&g);
  if (rc < 0)
    rc = run(&g, &cmd);
  pc_command_free(&cmd);
  return rc;
}
