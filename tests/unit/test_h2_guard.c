/* Tests for src/transport/h2_guard.c on real loopback sockets: a connection
 * accepted on a registered listener is counted and, over a limit, fails
 * every read with ECONNRESET; other descriptors pass through. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "transport/h2_guard.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct reports {
  int n;
  h2_verdict last;
  char peer[80];
} reports;

static void on_report(void *ctx, const char *peer, h2_verdict why) {
  reports *r = ctx;
  r->n++;
  r->last = why;
  strncpy(r->peer, peer, sizeof r->peer - 1);
}

static int listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_all(int fd, const void *p, size_t n) {
  assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/* The client preface, then `pings` PING frames. */
static size_t ping_wire(uint8_t *b, int pings) {
  memcpy(b, PREFACE, 24);
  size_t n = 24;
  for (int i = 0; i < pings; i++) {
    static const uint8_t ping[17] = {0, 0, 8, 6, 0, 0, 0, 0, 0};
    memcpy(b + n, ping, sizeof ping);
    n += sizeof ping;
  }
  return n;
}

/* Reads with recvmsg until `want` bytes came or a read failed. */
static ssize_t recv_until(int fd, size_t want) {
  uint8_t buf[4096];
  size_t got = 0;
  while (got < want) {
    struct iovec iov[2] = {{buf, 7}, {buf + 7, sizeof buf - 7}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t r = recvmsg(fd, &m, 0);
    if (r <= 0) return r;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static void test_guarded_connection_is_closed_over_the_limit(void **state) {
  (void)state;
  reports seen = {0};
  h2_limits lim = {.pings_per_s = 5};
  assert_int_equal(h2_guard_start(&lim, on_report, &seen), 0);
  int port, lfd = listener(&port);
  h2_guard_listen(port, false);

  /* Within the limit: served. */
  int c = dial(port);
  int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s >= 0);
  uint8_t b[1024];
  size_t n = ping_wire(b, 5);
  send_all(c, b, n);
  assert_int_equal(recv_until(s, n), (ssize_t)n);
  assert_int_equal(seen.n, 0);

  close(c);
  close(s);

  /* One more than the limit, in one write (so in one read, at one instant
   * of the guard's clock, however slow the machine): refused, reported
   * once, and every later read fails too. */
  c = dial(port);
  s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s >= 0);
  n = ping_wire(b, 6);
  send_all(c, b, n);
  errno = 0;
  assert_int_equal(recv_until(s, n), -1);
  assert_int_equal(errno, ECONNRESET);
  assert_int_equal(seen.n, 1);
  assert_int_equal(seen.last, H2_PING_FLOOD);
  assert_true(strncmp(seen.peer, "ipv4:127.0.0.1:", 15) == 0);
  char one;
  errno = 0;
  assert_int_equal(read(s, &one, 1), -1);
  assert_int_equal(errno, ECONNRESET);
  assert_int_equal(seen.n, 1);
  /* The client sees the shutdown. */
  assert_int_equal(read(c, &one, 1), 0);
  close(c);
  close(s);

  /* The number, reused by something else, passes through. */
  int p[2];
  assert_int_equal(pipe(p), 0);
  n = ping_wire(b, 20);
  send_all(p[1], b, n);
  assert_int_equal(read(p[0], b, n), (ssize_t)n);
  close(p[0]);
  close(p[1]);

  /* A fresh connection on the same listener starts from zero. */
  c = dial(port);
  s = accept4(lfd, NULL, NULL, 0);
  n = ping_wire(b, 5);
  send_all(c, b, n);
  assert_int_equal(recv_until(s, n), (ssize_t)n);
  close(c);
  close(s);
  close(lfd);
  h2_guard_stop();
}

static void test_unregistered_listener_passes_through(void **state) {
  (void)state;
  reports seen = {0};
  h2_limits lim = {.pings_per_s = 1};
  assert_int_equal(h2_guard_start(&lim, on_report, &seen), 0);
  int port, lfd = listener(&port);
  int c = dial(port);
  int s = accept4(lfd, NULL, NULL, 0);
  uint8_t b[1024];
  size_t n = ping_wire(b, 30);
  send_all(c, b, n);
  assert_int_equal(recv_until(s, n), (ssize_t)n);
  assert_int_equal(seen.n, 0);
  close(c);
  close(s);
  close(lfd);
  h2_guard_stop();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_guarded_connection_is_closed_over_the_limit),
      cmocka_unit_test(test_unregistered_listener_passes_through),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
