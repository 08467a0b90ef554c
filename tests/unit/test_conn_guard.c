/* Tests for src/transport/conn_guard.c: per-connection counting of client
 * cancels, the one-second window, the bounded table, peer parsing, and the
 * socket shutdown on a real loopback connection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/conn_guard.h"

#define SEC 1000000000LL

typedef struct closes {
  int n;
  char last_peer[64];
  int last_port;
} closes;

static int record_close(void *ctx, const char *peer, int port) {
  closes *c = ctx;
  c->n++;
  snprintf(c->last_peer, sizeof c->last_peer, "%s", peer);
  c->last_port = port;
  return 1;
}

static void test_over_the_limit_in_one_second_closes_once(void **state) {
  (void)state;
  closes seen = {0};
  conn_guard *g = conn_guard_create(5, record_close, &seen);
  assert_non_null(g);
  const char *p = "ipv4:127.0.0.1:40000";
  for (int i = 0; i < 5; i++) assert_false(conn_guard_note_cancel(g, p, 50051, 10 * SEC + i));
  assert_true(conn_guard_note_cancel(g, p, 50051, 10 * SEC + 5)); /* the 6th */
  assert_int_equal(seen.n, 1);
  assert_string_equal(seen.last_peer, p);
  assert_int_equal(seen.last_port, 50051);
  /* Further cancels in the same window do not close again. */
  for (int i = 0; i < 20; i++) assert_false(conn_guard_note_cancel(g, p, 50051, 10 * SEC + 6 + i));
  assert_int_equal(seen.n, 1);
  conn_guard_destroy(g);
}

static void test_the_window_restarts_every_second(void **state) {
  (void)state;
  closes seen = {0};
  conn_guard *g = conn_guard_create(3, record_close, &seen);
  const char *p = "ipv6:[::1]:40001";
  /* 3 a second, for ten seconds: never over. */
  for (int s = 0; s < 10; s++)
    for (int i = 0; i < 3; i++) assert_false(conn_guard_note_cancel(g, p, 1, s * SEC + i * 1000));
  assert_int_equal(seen.n, 0);
  conn_guard_destroy(g);
}

static void test_connections_are_counted_apart(void **state) {
  (void)state;
  closes seen = {0};
  conn_guard *g = conn_guard_create(2, record_close, &seen);
  char peer[64];
  /* 500 connections with 2 cancels each (more than the table holds). */
  for (int round = 0; round < 2; round++)
    for (int c = 0; c < 500; c++) {
      snprintf(peer, sizeof peer, "ipv4:10.0.%d.%d:%d", c / 250, c % 250, 1000 + c);
      assert_false(conn_guard_note_cancel(g, peer, 443, SEC + round));
    }
  assert_int_equal(seen.n, 0);
  /* The same address on another local port is another connection. */
  assert_false(conn_guard_note_cancel(g, "ipv4:10.0.0.0:1000", 444, SEC + 3));
  conn_guard_destroy(g);
}

/* A client cannot make the table forget its abusive connection by cancelling
 * once on many others: those are forgotten first. */
static void test_a_busy_table_keeps_the_abusive_connection(void **state) {
  (void)state;
  closes seen = {0};
  conn_guard *g = conn_guard_create(5, record_close, &seen);
  const char *abuser = "ipv4:10.9.9.9:4000";
  for (int i = 0; i < 3; i++) assert_false(conn_guard_note_cancel(g, abuser, 443, SEC + i));
  char peer[64];
  /* Twice as many connections as the table holds, one cancel each, later in
   * the same window. */
  for (int c = 0; c < 2048; c++) {
    snprintf(peer, sizeof peer, "ipv4:10.1.%d.%d:%d", c / 250, c % 250, 2000 + c);
    assert_false(conn_guard_note_cancel(g, peer, 443, SEC + 10 + c));
  }
  for (int i = 0; i < 2; i++) assert_false(conn_guard_note_cancel(g, abuser, 443, SEC + 5000 + i));
  assert_true(conn_guard_note_cancel(g, abuser, 443, SEC + 5002)); /* its 6th */
  assert_int_equal(seen.n, 1);
  assert_string_equal(seen.last_peer, abuser);
  conn_guard_destroy(g);
}

static void test_limit_zero_is_off(void **state) {
  (void)state;
  closes seen = {0};
  conn_guard *g = conn_guard_create(0, record_close, &seen);
  for (int i = 0; i < 1000; i++) assert_false(conn_guard_note_cancel(g, "ipv4:1.2.3.4:5", 1, i));
  assert_false(conn_guard_note_cancel(NULL, "ipv4:1.2.3.4:5", 1, 0));
  assert_int_equal(seen.n, 0);
  conn_guard_destroy(g);
}

static void test_peer_strings_parse(void **state) {
  (void)state;
  struct sockaddr_storage a;
  assert_int_equal(conn_guard_parse_peer("ipv4:127.0.0.1:40918", &a), 0);
  assert_int_equal(a.ss_family, AF_INET);
  assert_int_equal(ntohs(((struct sockaddr_in *)&a)->sin_port), 40918);
  assert_int_equal(conn_guard_parse_peer("ipv6:[::1]:5", &a), 0);
  assert_int_equal(a.ss_family, AF_INET6);
  assert_int_equal(ntohs(((struct sockaddr_in6 *)&a)->sin6_port), 5);
  assert_int_equal(conn_guard_parse_peer("ipv6:%5B::1%5D:6", &a), 0);
  assert_int_equal(ntohs(((struct sockaddr_in6 *)&a)->sin6_port), 6);
  assert_int_equal(conn_guard_parse_peer("ipv6:[fe80::1%25eth0]:7", &a), 0);
  assert_int_not_equal(conn_guard_parse_peer("unix:/tmp/x", &a), 0);
  assert_int_not_equal(conn_guard_parse_peer("ipv4:127.0.0.1", &a), 0);
  assert_int_not_equal(conn_guard_parse_peer("ipv4:127.0.0.1:", &a), 0);
  assert_int_not_equal(conn_guard_parse_peer("ipv4:127.0.0.1:70000", &a), 0);
  assert_int_not_equal(conn_guard_parse_peer("ipv4:999.0.0.1:1", &a), 0);
  assert_int_not_equal(conn_guard_parse_peer("ipv6:::1:5", &a), 0);
  assert_int_not_equal(conn_guard_parse_peer("", &a), 0);
}

/* A real loopback connection: only the accepted socket whose peer is the
 * client is shut down; the listener and other connections are untouched. */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static void test_close_socket_shuts_down_that_connection_only(void **state) {
  (void)state;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(lfd >= 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(listen(lfd, 4), 0);
  socklen_t al = sizeof addr;
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&addr, &al), 0);
  int port = ntohs(addr.sin_port);

  int c1 = socket(AF_INET, SOCK_STREAM, 0), c2 = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(c1, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(connect(c2, (struct sockaddr *)&addr, sizeof addr), 0);
  int s1 = accept(lfd, NULL, NULL), s2 = accept(lfd, NULL, NULL);
  assert_true(s1 >= 0 && s2 >= 0);
  struct sockaddr_in me;
  socklen_t ml = sizeof me;
  assert_int_equal(getsockname(c1, (struct sockaddr *)&me, &ml), 0);
  char peer[64];
  snprintf(peer, sizeof peer, "ipv4:127.0.0.1:%d", ntohs(me.sin_port));

  assert_int_equal(conn_guard_close_socket(NULL, peer, port + 1 > 65535 ? 1 : port + 1), 0);
  /* s1's peer is c1; but c1's own socket (peer: the server port, local:
   * another port) must not match either. */
  int before = count_fds();
  assert_int_equal(conn_guard_close_socket(NULL, peer, port), 1);
  assert_int_equal(count_fds(), before);
  /* Shut down but still open (the core has not closed it yet): a later
   * cancel from the same connection does not close, nor count, it again. */
  assert_int_equal(conn_guard_close_socket(NULL, peer, port), 0);
  char b;
  assert_int_equal(read(c1, &b, 1), 0);          /* EOF: the server side shut down */
  assert_int_equal(write(s2, "x", 1), 1);        /* the other connection still works */
  assert_int_equal(read(c2, &b, 1), 1);
  close(c1);
  close(c2);
  close(s1);
  close(s2);
  close(lfd);
}

static int close_nothing(void *ctx, const char *peer, int port) {
  (void)peer;
  (void)port;
  ((closes *)ctx)->n++;
  return 0;
}

/* Over the limit but no socket found (the connection is already gone): not
 * reported as a close. */
static void test_nothing_closed_is_not_reported(void **state) {
  (void)state;
  closes seen = {0};
  conn_guard *g = conn_guard_create(1, close_nothing, &seen);
  assert_false(conn_guard_note_cancel(g, "ipv4:127.0.0.1:9", 1, 0));
  assert_false(conn_guard_note_cancel(g, "ipv4:127.0.0.1:9", 1, 1));
  assert_int_equal(seen.n, 1);
  assert_false(conn_guard_note_cancel(g, "unknown", 1, 2)); /* not an address */
  assert_false(conn_guard_note_cancel(g, "unknown", 1, 3));
  assert_int_equal(seen.n, 1);
  conn_guard_destroy(g);
}

/* Two connections; the client of one never reads: that one is picked. */
static void test_close_stalled_picks_the_client_that_does_not_read(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN); /* the write after the shutdown */
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(listen(lfd, 4), 0);
  socklen_t al = sizeof addr;
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&addr, &al), 0);
  int port = ntohs(addr.sin_port);
  int c1 = socket(AF_INET, SOCK_STREAM, 0), c2 = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(c1, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(connect(c2, (struct sockaddr *)&addr, sizeof addr), 0);
  int s1 = accept(lfd, NULL, NULL), s2 = accept(lfd, NULL, NULL);
  assert_true(s1 >= 0 && s2 >= 0);
  /* Nobody is stalled yet. */
  assert_int_equal(conn_guard_close_stalled(port, 64 * 1024), 0);
  /* Fill s1 until the kernel takes no more: its client never reads. */
  assert_int_equal(fcntl(s1, F_SETFL, O_NONBLOCK), 0);
  static char block[65536];
  size_t total = 0;
  for (int i = 0; i < 4096; i++) {
    ssize_t n = write(s1, block, sizeof block);
    if (n < 0) break;
    total += (size_t)n;
  }
  assert_true(total > 64 * 1024);
  assert_int_equal(write(s2, "x", 1), 1); /* s2's client reads */
  char b;
  assert_int_equal(read(c2, &b, 1), 1);
  int before = count_fds();
  assert_int_equal(conn_guard_close_stalled(port, 64 * 1024), 1);
  assert_int_equal(count_fds(), before); /* the copies it worked on are closed */
  assert_true(write(s1, "x", 1) < 0); /* shut down */
  /* s1 still holds its unsent bytes until it is closed: not picked again. */
  assert_int_equal(conn_guard_close_stalled(port, 64 * 1024), 0);
  assert_int_equal(write(s2, "y", 1), 1);
  assert_int_equal(read(c2, &b, 1), 1);
  close(c1);
  close(c2);
  close(s1);
  close(s2);
  close(lfd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_over_the_limit_in_one_second_closes_once),
      cmocka_unit_test(test_the_window_restarts_every_second),
      cmocka_unit_test(test_connections_are_counted_apart),
      cmocka_unit_test(test_a_busy_table_keeps_the_abusive_connection),
      cmocka_unit_test(test_limit_zero_is_off),
      cmocka_unit_test(test_nothing_closed_is_not_reported),
      cmocka_unit_test(test_peer_strings_parse),
      cmocka_unit_test(test_close_socket_shuts_down_that_connection_only),
      cmocka_unit_test(test_close_stalled_picks_the_client_that_does_not_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
