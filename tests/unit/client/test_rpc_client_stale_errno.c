/* Tests for src/client/rpc_client_stale_errno.c: which statuses count as the
 * gRPC core's stale connect errno (exactly one message, TCP addresses only),
 * and that the client is usable on its new channel afterwards. The retry
 * itself, against a real server with the failure injected, is in
 * tests/integration/test_stale_connect_errno.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "client/rpc_client.h"

#define STALE_V4                                                                         \
  "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:44545: No " \
  "such file or directory"

/* A loopback port nobody listens on (bound, then closed). */
static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static rpc_client *client_to_closed_port(void) {
  char target[32];
  snprintf(target, sizeof target, "127.0.0.1:%d", closed_port());
  rpc_client_options opt = {.target = target, .insecure = true};
  rpc_client *c = NULL;
  char err[256];
  assert_int_equal(rpc_client_create(&opt, &c, err, sizeof err), 0);
  return c;
}

static bool retries(rpc_client *c, rpc_code code, const char *message) {
  rpc_result r = {.code = code, .message = (char *)message};
  return rpc_client_retry_stale_connect(c, &r);
}

static void exactly_the_stale_connect_message_is_retried(void **state) {
  (void)state;
  rpc_client *c = client_to_closed_port();
  assert_true(retries(c, RPC_UNAVAILABLE, STALE_V4));
  assert_true(retries(c, RPC_UNAVAILABLE,
                      "failed to connect to all addresses; last error: UNKNOWN: "
                      "ipv6:[::1]:50051: No such file or directory"));
  rpc_client_destroy(c);
}

static void any_other_status_is_not_retried(void **state) {
  (void)state;
  rpc_client *c = client_to_closed_port();
  static const char *const others[] = {
      /* a real outage */
      "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to "
      "connect to remote host: Connection refused",
      /* a unix socket that does not exist: ENOENT for real */
      "failed to connect to all addresses; last error: UNKNOWN: unix:/run/x.sock: No such "
      "file or directory",
      /* the text elsewhere in a message */
      "connect: No such file or directory",
      "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
      "Connection refused; ipv4:127.0.0.2:1: No such file or directory",
      STALE_V4 " (2)",
      "",
  };
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
    assert_false(retries(c, RPC_UNAVAILABLE, others[i]));
  /* The message with another code, or no message, or no client. */
  assert_false(retries(c, RPC_UNKNOWN, STALE_V4));
  assert_false(retries(c, RPC_DEADLINE_EXCEEDED, STALE_V4));
  assert_false(retries(c, RPC_UNAVAILABLE, NULL));
  assert_false(retries(NULL, RPC_UNAVAILABLE, STALE_V4));
  assert_false(rpc_client_retry_stale_connect(c, NULL));
  rpc_client_destroy(c);
}

/* After the renewal the client calls on its new channel: a closed port is
 * still an ordinary UNAVAILABLE (not retried). */
static void client_calls_on_its_new_channel(void **state) {
  (void)state;
  rpc_client *c = client_to_closed_port();
  assert_true(retries(c, RPC_UNAVAILABLE, STALE_V4));
  rpc_result r;
  const uint8_t body[] = {0x0a, 0x01, 'x'};
  assert_int_equal(rpc_client_unary(c, "/product.ProductService/GetProduct", body, sizeof body,
                                    NULL, 0, 5000, &r),
                   0);
  assert_int_equal(r.code, RPC_UNAVAILABLE);
  assert_non_null(strstr(r.message, "Connection refused"));
  assert_false(rpc_client_retry_stale_connect(c, &r));
  rpc_result_free(&r);
  rpc_client_destroy(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exactly_the_stale_connect_message_is_retried),
      cmocka_unit_test(any_other_status_is_not_retried),
      cmocka_unit_test(client_calls_on_its_new_channel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
