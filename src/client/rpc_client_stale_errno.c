/* Workaround for a bug of the gRPC C core before 1.60: a TCP connect that
 * was fine can fail as "No such file or directory".
 *
 * libgrpc 1.51.1 (grpc_tcp_client_create_from_prepared_fd) calls connect(),
 * then formats the address and creates the fd object, which takes absl
 * mutexes, and only then reads errno to see whether the connect is in
 * progress. The first time a thread of a process queues behind another on
 * an absl mutex, abseil probes a sysfs file for the TSC frequency that is
 * often absent and leaves errno = ENOENT; the connect in progress then
 * counts as failed, and a call that does not wait for ready ends with
 *
 *   UNAVAILABLE: failed to connect to all addresses; last error: UNKNOWN:
 *   ipv4:127.0.0.1:PORT: No such file or directory
 *
 * before any byte of it was sent. It strikes at most once per process (the
 * probe runs once), so product-client, a new process per call, can meet it
 * on any run. Fixed upstream by grpc/grpc PR 35064 ("Defend against connect
 * errno being overwritten", December 2023, in 1.60).
 *
 * To remove once the core is 1.60 or newer (PRODUCT_GRPC_CORE_VERSION in
 * CMakeLists.txt): delete this file, rpc_client_retry_stale_connect from
 * rpc_client.h and its two callers (rpc_client_unary, etcd.c's unary), and
 * rpc_client_renew_channel; tests/integration/test_stale_connect_errno.py
 * and harness.py's channel() say what goes with them on the test side. */
#include "client/rpc_client.h"
#include "client/rpc_client_internal.h"

#include <stdbool.h>
#include <string.h>

/* The whole status message of this failure, as the core's pick_first policy
 * and tcp_client_posix.cc word it in 1.51 (strerror(ENOENT) in the C locale:
 * the core never sets a locale). */
#define STALE_PREFIX "failed to connect to all addresses; last error: UNKNOWN: "
#define STALE_SUFFIX ": No such file or directory"

/* True only for that message with a TCP address (ipv4: or ipv6:): a unix:
 * socket path that does not exist fails with ENOENT for real. */
static bool is_stale_connect_errno(const rpc_result *r) {
  if (r->code != RPC_UNAVAILABLE || !r->message)
    return false;
  const char *m = r->message;
  size_t len = strlen(m);
  size_t pre = strlen(STALE_PREFIX), suf = strlen(STALE_SUFFIX);
  if (len <= pre + suf || strncmp(m, STALE_PREFIX, pre) != 0 ||
      strcmp(m + len - suf, STALE_SUFFIX) != 0)
    return false;
  const char *addr = m + pre;
  if (strncmp(addr, "ipv4:", 5) != 0 && strncmp(addr, "ipv6:", 5) != 0)
    return false;
  /* Nothing between the address and the errno text: one address, one error. */
  size_t addr_len = len - pre - suf;
  return memchr(addr, ' ', addr_len) == NULL && memchr(addr, ';', addr_len) == NULL;
}

bool rpc_client_retry_stale_connect(rpc_client *c, const rpc_result *r) {
  /* The old channel's subchannel waits out a reconnect backoff after the
   * failed connect; a new channel with subchannels of its own connects now. */
  return c && r && is_stale_connect_errno(r) && rpc_client_renew_channel(c) == 0;
}
