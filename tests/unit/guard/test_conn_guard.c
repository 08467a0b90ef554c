/* Tests for src/guard/conn_guard.c over the guard's connection records, on
 * real loopback connections accepted through the interposed accept4:
 * counting per connection (a new connection from the same address and port
 * starts from zero), only resets the client sent count, the one-second
 * window, unknown methods, a close that acts on the connection it was
 * decided for (never on the number's next owner) and works at EMFILE, the
 * stalled-reader close, and peer parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "guard/conn_guard.h"
#include "guard/h2_guard.h"

#define SEC 1000000000LL
#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct site {
  int lfd;
  struct sockaddr_in addr;
  int group; /* the guard's name for this listener (h2_guard_claim) */
} site;

typedef struct pair {
  int c, s; /* client and server ends */
  int client_port;
  char peer[64];
} pair;

static void no_report(void *ctx, const h2_guard_report *r) {
  (void)ctx;
  (void)r;
}

static void site_open(site *st) {
  h2_limits lim = {0}; /* frame limits off: only conn_guard closes */
  assert_int_equal(h2_guard_start(&lim, no_report, NULL), 0);
  st->lfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(st->lfd >= 0);
  int one = 1;
  assert_int_equal(setsockopt(st->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  memset(&st->addr, 0, sizeof st->addr);
  st->addr.sin_family = AF_INET;
  st->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(st->lfd, (struct sockaddr *)&st->addr, sizeof st->addr), 0);
  assert_int_equal(listen(st->lfd, 16), 0);
  socklen_t al = sizeof st->addr;
  assert_int_equal(getsockname(st->lfd, (struct sockaddr *)&st->addr, &al), 0);
  assert_int_equal(h2_guard_claim(false, &st->group), 1);
  assert_true(st->group != 0);
}

/* One more guarded listener, claimed on its own (another server's port). */
static void site_add(site *st) {
  st->lfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(st->lfd >= 0);
  memset(&st->addr, 0, sizeof st->addr);
  st->addr.sin_family = AF_INET;
  st->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(st->lfd, (struct sockaddr *)&st->addr, sizeof st->addr), 0);
  assert_int_equal(listen(st->lfd, 4), 0);
  socklen_t al = sizeof st->addr;
  assert_int_equal(getsockname(st->lfd, (struct sockaddr *)&st->addr, &al), 0);
  assert_int_equal(h2_guard_claim(false, &st->group), 1);
}

static void site_close(site *st) {
  close(st->lfd);
  h2_guard_stop();
}

/* A connection from `port` (0: any), accepted by the guarded listener; the
 * client preface is read through the guard. */
static void link_open(site *st, pair *l, int port) {
  l->c = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l->c >= 0);
  int one = 1;
  assert_int_equal(setsockopt(l->c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(l->c, (struct sockaddr *)&me, sizeof me), 0);
  assert_int_equal(connect(l->c, (struct sockaddr *)&st->addr, sizeof st->addr), 0);
  socklen_t ml = sizeof me;
  assert_int_equal(getsockname(l->c, (struct sockaddr *)&me, &ml), 0);
  l->client_port = ntohs(me.sin_port);
  snprintf(l->peer, sizeof l->peer, "ipv4:127.0.0.1:%d", l->client_port);
  l->s = accept4(st->lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(l->s >= 0);
  assert_int_equal(write(l->c, PREFACE, 24), 24);
  char b[24];
  size_t got = 0;
  while (got < 24) {
    ssize_t n = read(l->s, b + got, 24 - got);
    assert_true(n > 0);
    got += (size_t)n;
  }
}

/* The client sends `n` RST_STREAM frames; the server reads them through the
 * guard (as the core would before it cancels the calls). */
static void client_resets(pair *l, int n) {
  uint8_t f[13] = {0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 8};
  for (int i = 0; i < n; i++) assert_int_equal(write(l->c, f, sizeof f), (ssize_t)sizeof f);
  uint8_t b[4096];
  size_t want = (size_t)n * sizeof f, got = 0;
  while (got < want) {
    struct iovec iov = {b, sizeof b < want - got ? sizeof b : want - got};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t r = recvmsg(l->s, &m, 0);
    assert_true(r > 0);
    got += (size_t)r;
  }
}

static void link_close(pair *l) {
  close(l->c); /* the client leaves first (its port goes to TIME_WAIT) */
  close(l->s);
}

/* Still open: the server end writes, the client reads. */
static bool serves(pair *l) {
  char b;
  return write(l->s, "x", 1) == 1 && read(l->c, &b, 1) == 1;
}

/* Shut down: the client sees the end, the server's reads fail. */
static bool was_shut(pair *l) {
  char b;
  return read(l->c, &b, 1) == 0;
}

static void test_over_the_limit_closes_that_connection_once(void **state) {
  (void)state;
  site st;
  site_open(&st);
  conn_guard *g = conn_guard_create(5, CONN_GUARD_RESETS);
  pair a, b;
  link_open(&st, &a, 0);
  link_open(&st, &b, 0);
  client_resets(&a, 30);
  client_resets(&b, 3);
  for (int i = 0; i < 5; i++) assert_false(conn_guard_note(g, a.peer, 10 * SEC + i));
  assert_true(conn_guard_note(g, a.peer, 10 * SEC + 5)); /* the 6th */
  for (int i = 0; i < 10; i++) assert_false(conn_guard_note(g, a.peer, 10 * SEC + 6 + i));
  for (int i = 0; i < 3; i++) assert_false(conn_guard_note(g, b.peer, 10 * SEC + i));
  assert_true(was_shut(&a));
  /* Every later read of the closed one fails. */
  char c;
  errno = 0;
  assert_int_equal(read(a.s, &c, 1), -1);
  assert_int_equal(errno, ECONNRESET);
  assert_true(serves(&b));
  link_close(&a);
  link_close(&b);
  conn_guard_destroy(g);
  site_close(&st);
}

/* The reproduction: a connection made L cancels and left; a new
 * connection from the same address and port cancels once within the same
 * second: it is not shut (on main it was, counted by address text). Its own
 * abuse is still caught. */
static void test_same_address_and_port_reconnect_starts_from_zero(void **state) {
  (void)state;
  site st;
  site_open(&st);
  const int limit = 5;
  conn_guard *g = conn_guard_create(limit, CONN_GUARD_RESETS);
  pair a;
  link_open(&st, &a, 0);
  int port = a.client_port;
  client_resets(&a, limit);
  for (int i = 0; i < limit; i++) assert_false(conn_guard_note(g, a.peer, SEC + i));
  link_close(&a);
  pair b;
  link_open(&st, &b, port);
  assert_string_equal(a.peer, b.peer);
  client_resets(&b, 1);
  assert_false(conn_guard_note(g, b.peer, SEC + 100));
  assert_true(serves(&b));
  /* ... and the new connection's own flood is closed. */
  client_resets(&b, limit);
  for (int i = 1; i < limit; i++) assert_false(conn_guard_note(g, b.peer, SEC + 100 + i));
  assert_true(conn_guard_note(g, b.peer, SEC + 200));
  assert_true(was_shut(&b));
  link_close(&b);
  conn_guard_destroy(g);
  site_close(&st);
}

/* Calls that ended cancelled without a RST_STREAM from the client (a GOAWAY,
 * max-connection-age, our own grpc_call_cancel, a dead transport) never
 * count; the resets the client did send each count once. */
static void test_only_resets_the_client_sent_count(void **state) {
  (void)state;
  site st;
  site_open(&st);
  conn_guard *g = conn_guard_create(2, CONN_GUARD_RESETS);
  pair a;
  link_open(&st, &a, 0);
  for (int i = 0; i < 50; i++) assert_false(conn_guard_note(g, a.peer, SEC + i));
  assert_true(serves(&a));
  client_resets(&a, 2);
  for (int i = 0; i < 50; i++) assert_false(conn_guard_note(g, a.peer, SEC + 100 + i));
  client_resets(&a, 1);
  assert_true(conn_guard_note(g, a.peer, SEC + 200)); /* its third reset */
  link_close(&a);
  conn_guard_destroy(g);
  site_close(&st);
}

static void test_the_window_restarts_every_second(void **state) {
  (void)state;
  site st;
  site_open(&st);
  conn_guard *g = conn_guard_create(3, CONN_GUARD_RESETS);
  pair a;
  link_open(&st, &a, 0);
  client_resets(&a, 30);
  for (int s = 1; s <= 8; s++)
    for (int i = 0; i < 3; i++) assert_false(conn_guard_note(g, a.peer, s * SEC + i * 1000));
  assert_true(serves(&a));
  link_close(&a);
  conn_guard_destroy(g);
  site_close(&st);
}

/* Unknown methods: every call counts, reset or not, in a count of its own. */
static void test_unknown_methods_count_every_call(void **state) {
  (void)state;
  site st;
  site_open(&st);
  conn_guard *resets = conn_guard_create(2, CONN_GUARD_RESETS);
  conn_guard *unknown = conn_guard_create(2, CONN_GUARD_UNKNOWN);
  pair a;
  link_open(&st, &a, 0);
  client_resets(&a, 2);
  assert_false(conn_guard_note(resets, a.peer, SEC));
  assert_false(conn_guard_note(resets, a.peer, SEC + 1));
  assert_false(conn_guard_note(unknown, a.peer, SEC + 2));
  assert_false(conn_guard_note(unknown, a.peer, SEC + 3));
  assert_true(serves(&a));
  assert_true(conn_guard_note(unknown, a.peer, SEC + 4));
  assert_true(was_shut(&a));
  link_close(&a);
  conn_guard_destroy(resets);
  conn_guard_destroy(unknown);
  site_close(&st);
}

/* h2_guard_note, the decision conn_guard makes in one critical section:
 * by handle (a gone one counts nothing, whatever the number became) or by
 * peer (a cancel needs a reset the client sent). */
static void test_note_by_handle_and_by_peer(void **state) {
  (void)state;
  site st;
  site_open(&st);
  pair a;
  link_open(&st, &a, 0);
  h2_conn ca;
  assert_true(h2_guard_find(a.peer, &ca));
  const h2_conn none = {.fd = -1, .gen = 0};
  /* By peer, slot 0: no reset sent, nothing counted however often. */
  for (int i = 0; i < 10; i++) assert_false(h2_guard_note(a.peer, none, 0, 1, SEC + i));
  client_resets(&a, 2);
  assert_false(h2_guard_note(a.peer, none, 0, 1, 2 * SEC));
  assert_true(h2_guard_note(a.peer, none, 0, 1, 2 * SEC + 1)); /* its 2nd reset: over 1 */
  assert_true(was_shut(&a));
  assert_false(h2_guard_note(a.peer, none, 1, 1, 2 * SEC + 2)); /* shut once */
  link_close(&a);
  /* A handle whose connection has gone, its number reused: nothing. */
  pair b;
  link_open(&st, &b, 0);
  assert_int_equal(b.s, ca.fd);
  for (int i = 0; i < 10; i++) assert_false(h2_guard_note(b.peer, ca, 1, 1, 3 * SEC + i));
  assert_true(serves(&b));
  h2_conn cb;
  assert_true(h2_guard_find(b.peer, &cb));
  assert_false(h2_guard_note("", cb, 1, 1, 4 * SEC));
  assert_true(h2_guard_note("", cb, 1, 1, 4 * SEC + 1)); /* by handle: the peer is not read */
  assert_true(was_shut(&b));
  assert_false(h2_guard_note(b.peer, none, 1, 0, 4 * SEC)); /* limit 0: off */
  link_close(&b);
  site_close(&st);
}

static void test_limit_zero_and_unknown_peers_are_off(void **state) {
  (void)state;
  site st;
  site_open(&st);
  conn_guard *g = conn_guard_create(0, CONN_GUARD_UNKNOWN);
  pair a;
  link_open(&st, &a, 0);
  for (int i = 0; i < 1000; i++) assert_false(conn_guard_note(g, a.peer, i));
  assert_false(conn_guard_note(NULL, a.peer, 0));
  conn_guard_destroy(g);
  g = conn_guard_create(1, CONN_GUARD_UNKNOWN);
  for (int i = 0; i < 10; i++) {
    assert_false(conn_guard_note(g, "unknown", i));
    assert_false(conn_guard_note(g, "ipv4:127.0.0.1:9", i)); /* no such connection */
    assert_false(conn_guard_note(g, "", i));
  }
  assert_true(serves(&a));
  link_close(&a);
  conn_guard_destroy(g);
  site_close(&st);
}

static void test_peer_strings_parse(void **state) {
  (void)state;
  struct sockaddr_storage a;
  assert_int_equal(h2_guard_parse_peer("ipv4:127.0.0.1:40918", &a), 0);
  assert_int_equal(a.ss_family, AF_INET);
  assert_int_equal(ntohs(((struct sockaddr_in *)&a)->sin_port), 40918);
  assert_int_equal(h2_guard_parse_peer("ipv6:[::1]:5", &a), 0);
  assert_int_equal(a.ss_family, AF_INET6);
  assert_int_equal(h2_guard_parse_peer("ipv6:%5B::1%5D:6", &a), 0);
  assert_int_equal(ntohs(((struct sockaddr_in6 *)&a)->sin6_port), 6);
  assert_int_equal(h2_guard_parse_peer("ipv6:[fe80::1%25eth0]:7", &a), 0);
  assert_int_not_equal(h2_guard_parse_peer("unix:/tmp/x", &a), 0);
  assert_int_not_equal(h2_guard_parse_peer("ipv4:127.0.0.1", &a), 0);
  assert_int_not_equal(h2_guard_parse_peer("ipv4:127.0.0.1:", &a), 0);
  assert_int_not_equal(h2_guard_parse_peer("ipv4:127.0.0.1:70000", &a), 0);
  assert_int_not_equal(h2_guard_parse_peer("ipv4:999.0.0.1:1", &a), 0);
  assert_int_not_equal(h2_guard_parse_peer("ipv6:::1:5", &a), 0);
  assert_int_not_equal(h2_guard_parse_peer("", &a), 0);
}

/* A handle names one connection: once it is closed and its number given to
 * a new connection, closing through the old handle touches nothing. */
static void test_a_stale_handle_never_reaches_the_numbers_next_owner(void **state) {
  (void)state;
  site st;
  site_open(&st);
  pair a;
  link_open(&st, &a, 0);
  h2_conn old;
  assert_true(h2_guard_find(a.peer, &old));
  assert_int_equal(old.fd, a.s);
  link_close(&a);
  h2_conn gone;
  assert_false(h2_guard_find(a.peer, &gone)); /* closed: no live connection has that peer */
  pair b;
  link_open(&st, &b, 0);
  assert_int_equal(b.s, old.fd); /* the lowest free number again */
  h2_conn now;
  assert_true(h2_guard_find(b.peer, &now));
  assert_int_equal(now.fd, old.fd);
  assert_true(now.gen != old.gen);
  assert_false(h2_guard_close(old, H2_RAPID_RESET));
  assert_false(h2_guard_take_reset(old));
  assert_true(serves(&b));
  assert_true(h2_guard_close(now, H2_RAPID_RESET));
  assert_false(h2_guard_close(now, H2_RAPID_RESET)); /* once */
  assert_true(was_shut(&b));
  link_close(&b);
  site_close(&st);
}

/* Every descriptor in use (EMFILE): the close needs none of its own. */
static void test_the_close_works_at_emfile(void **state) {
  (void)state;
  site st;
  site_open(&st);
  conn_guard *g = conn_guard_create(2, CONN_GUARD_RESETS);
  pair a;
  link_open(&st, &a, 0);
  client_resets(&a, 3);
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  int top = a.s > a.c ? a.s : a.c;
  struct rlimit tight = {(rlim_t)top + 8, old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
  int fill[16], n = 0;
  while (n < 16 && (fill[n] = dup(st.lfd)) >= 0) n++;
  assert_true(n < 16);
  assert_int_equal(dup(st.lfd), -1);
  assert_int_equal(errno, EMFILE);
  assert_false(conn_guard_note(g, a.peer, SEC));
  assert_false(conn_guard_note(g, a.peer, SEC + 1));
  assert_true(conn_guard_note(g, a.peer, SEC + 2));
  assert_true(was_shut(&a));
  for (int i = 0; i < n; i++) close(fill[i]);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  link_close(&a);
  conn_guard_destroy(g);
  site_close(&st);
}

/* Writes to the server side of a link until the kernel takes no more (the
 * client never reads): well over 64 KiB unsent. */
static void stall(int fd) {
  assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
  static char block[65536];
  size_t total = 0;
  for (int i = 0; i < 4096; i++) {
    ssize_t n = write(fd, block, sizeof block);
    if (n < 0) break;
    total += (size_t)n;
  }
  assert_true(total > 64 * 1024);
}

/* Two connections; the client of one never reads: that one is picked. */
static void test_close_stalled_picks_the_client_that_does_not_read(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN); /* the write after the shutdown */
  site st;
  site_open(&st);
  pair a, b;
  link_open(&st, &a, 0);
  link_open(&st, &b, 0);
  assert_int_equal(h2_guard_close_stalled(64 * 1024), 0); /* nobody stalled yet */
  stall(a.s);
  assert_true(serves(&b));
  assert_int_equal(h2_guard_close_stalled(64 * 1024), 1);
  assert_true(write(a.s, "x", 1) < 0); /* shut down */
  /* a still holds its unsent bytes until it is closed: not picked again. */
  assert_int_equal(h2_guard_close_stalled(64 * 1024), 0);
  assert_true(serves(&b));
  link_close(&a);
  link_close(&b);
  site_close(&st);
}

#ifdef PRODUCT_TEST_FAULTS
static site *g_race_site;
static pair g_race_old, g_race_new;
static int g_race_calls;

/* Between the measurement of the stalled connection and the close: it
 * goes, and a new connection takes its number. Runs close() and accept4(),
 * whose hooks take the guard's lock: had close_stalled held it, a hang. */
static void race_after_measure(int fd) {
  if (g_race_calls++ || fd != g_race_old.s) return;
  link_close(&g_race_old);
  link_open(g_race_site, &g_race_new, 0);
}
#endif

/* The ioctls run outside the guard's lock, and a connection measured
 * stalled that closed meanwhile is not closed through its stale handle:
 * the connection that took its number is served. */
static void test_close_stalled_measures_outside_the_lock(void **state) {
  (void)state;
#ifndef PRODUCT_TEST_FAULTS
  skip(); /* needs the test hook (-DPRODUCT_TEST_FAULTS=ON) */
#else
  signal(SIGPIPE, SIG_IGN);
  site st;
  site_open(&st);
  link_open(&st, &g_race_old, 0);
  stall(g_race_old.s);
  int old_fd = g_race_old.s;
  g_race_site = &st;
  g_race_calls = 0;
  h2_guard_test_after_measure = race_after_measure;
  assert_int_equal(h2_guard_close_stalled(64 * 1024), 0); /* measured, gone: nothing closed */
  h2_guard_test_after_measure = NULL;
  assert_int_equal(g_race_calls, 1);
  assert_int_equal(g_race_new.s, old_fd); /* the number was reused */
  assert_true(serves(&g_race_new));
  assert_int_equal(h2_guard_close_stalled(64 * 1024), 0); /* nobody stalled now */
  assert_true(serves(&g_race_new));
  link_close(&g_race_new);
  site_close(&st);
#endif
}

/* One client address and port with a live connection to each of two of our
 * listeners (the kernel gives a client the same source port towards two
 * destinations): the resets one of them sends are counted on it, wherever
 * the other sits in the guard's table. */
static void test_resets_count_on_the_connection_that_sent_them(void **state) {
  (void)state;
  site st;
  site_open(&st);
  site st2;
  site_add(&st2);
  const int limit = 5;
  conn_guard *g = conn_guard_create(limit, CONN_GUARD_RESETS);
  pair x;
  link_open(&st, &x, 0);
  /* y: same client address and port, the second listener, accepted last. */
  pair y;
  link_open(&st2, &y, x.client_port);
  assert_string_equal(y.peer, x.peer);
  client_resets(&x, limit + 1);
  for (int i = 0; i < limit; i++) assert_false(conn_guard_note(g, x.peer, SEC + i));
  assert_true(conn_guard_note(g, x.peer, SEC + limit)); /* x's 6th reset */
  assert_true(was_shut(&x));
  assert_true(serves(&y));
  link_close(&x);
  link_close(&y);
  close(st2.lfd);
  conn_guard_destroy(g);
  site_close(&st);
}

/* The same two connections (one client address and port, one to each of
 * two servers' listeners), x flooding unknown methods: each call is tied
 * to its connection when it arrives (found on its own server's listeners)
 * and counted there, so x is closed and y is not. Counted by peer text
 * (h2_guard_find of any listener: y, accepted last), y was shut instead. */
static void test_unknown_methods_count_on_the_connection_they_came_on(void **state) {
  (void)state;
  site st, st2;
  site_open(&st);
  site_add(&st2);
  assert_true(st.group != st2.group);
  const int limit = 3;
  conn_guard *g = conn_guard_create(limit, CONN_GUARD_UNKNOWN);
  pair x, y;
  link_open(&st, &x, 0);
  link_open(&st2, &y, x.client_port);
  assert_string_equal(y.peer, x.peer);
  h2_conn any, cx, cy;
  assert_true(h2_guard_find(x.peer, &any));
  assert_int_equal(any.fd, y.s); /* by text alone: the one accepted last */
  assert_true(h2_guard_find_on(x.peer, st.group, &cx));
  assert_int_equal(cx.fd, x.s);
  assert_true(h2_guard_find_on(x.peer, st2.group, &cy));
  assert_int_equal(cy.fd, y.s);
  assert_false(h2_guard_find_on(x.peer, 65000, &any)); /* no such listeners */
  for (int i = 0; i < limit; i++) assert_false(conn_guard_note_conn(g, cx, SEC + i));
  assert_true(serves(&x));
  assert_true(conn_guard_note_conn(g, cx, SEC + limit)); /* x's 4th */
  assert_true(was_shut(&x));
  assert_true(serves(&y));
  /* y's own count is its own, from zero. */
  for (int i = 0; i < limit; i++) assert_false(conn_guard_note_conn(g, cy, SEC + 10 + i));
  assert_true(serves(&y));
  /* x leaves; a new connection takes its address, port and number: a call
   * that arrived on x and ends now counts on nothing. */
  link_close(&x);
  pair z;
  link_open(&st, &z, x.client_port);
  assert_string_equal(z.peer, x.peer);
  for (int i = 0; i < 2 * limit; i++) assert_false(conn_guard_note_conn(g, cx, SEC + 20 + i));
  assert_true(serves(&z));
  assert_false(conn_guard_note_conn(NULL, cy, SEC));
  assert_false(conn_guard_note_conn(g, (h2_conn){.fd = y.s, .gen = 0}, SEC));
  link_close(&z);
  link_close(&y);
  close(st2.lfd);
  conn_guard_destroy(g);
  site_close(&st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_over_the_limit_closes_that_connection_once),
      cmocka_unit_test(test_same_address_and_port_reconnect_starts_from_zero),
      cmocka_unit_test(test_only_resets_the_client_sent_count),
      cmocka_unit_test(test_the_window_restarts_every_second),
      cmocka_unit_test(test_unknown_methods_count_every_call),
      cmocka_unit_test(test_note_by_handle_and_by_peer),
      cmocka_unit_test(test_limit_zero_and_unknown_peers_are_off),
      cmocka_unit_test(test_peer_strings_parse),
      cmocka_unit_test(test_a_stale_handle_never_reaches_the_numbers_next_owner),
      cmocka_unit_test(test_the_close_works_at_emfile),
      cmocka_unit_test(test_close_stalled_picks_the_client_that_does_not_read),
      cmocka_unit_test(test_close_stalled_measures_outside_the_lock),
      cmocka_unit_test(test_resets_count_on_the_connection_that_sent_them),
      cmocka_unit_test(test_unknown_methods_count_on_the_connection_they_came_on),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
