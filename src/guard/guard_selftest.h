#ifndef PRODUCT_GUARD_GUARD_SELFTEST_H
#define PRODUCT_GUARD_GUARD_SELFTEST_H
/* Fail loud: before the server says it is ready, it proves the guard is in
 * the path. A loopback connection to its own listener breaks a limit (a PING
 * flood, held to 1 a second for this one connection only) and must be
 * refused by the guard: seen by the accept hook, counted by the read hook
 * (recvmsg/read for plaintext, SSL_read for TLS) and closed. Another core
 * build, io_uring, SSL_read_ex or a statically linked TLS library would each
 * leave the probe served, and the server refuses to start instead of
 * running every defence off. */
#include <stdbool.h>
#include <stddef.h>

typedef struct guard_probe_target {
  const char *host; /* as configured: "0.0.0.0", "::", "127.0.0.1", "localhost" */
  int port;         /* the bound port */
  bool tls;
  /* Mutual TLS: the probe has no client certificate, so the handshake fails
   * before any application byte; the proof is then the accept hook and the
   * TLS hook seeing the probe's handshake. */
  bool mtls;
} guard_probe_target;

/* 0 when the guard refused the probe; else -1 and `why` says what the
 * guard did not see. Bounded: at most timeout_ms. */
int guard_selftest(const guard_probe_target *t, int timeout_ms, char *why, size_t whylen);

#endif
