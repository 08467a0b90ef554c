/* Tests for src/guard/h2_guard.c on real loopback sockets: a connection
 * accepted on a claimed listener is counted and, over a limit, fails every
 * read with ECONNRESET, reported once from the guard's own thread; other
 * descriptors pass through; descriptors above the limit the guard started
 * with are covered too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "guard/h2_guard.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct reports {
  pthread_mutex_t mu;
  pthread_t thread;
  int n;
  int logged;
  uint64_t told_unlogged; /* sum of the logged reports' suppressed counts */
  int64_t logged_at[64];  /* CLOCK_MONOTONIC ns of each logged report */
  h2_verdict last;
  char peer[80];
  bool off_reader; /* every report came on a thread that is not the reader */
} reports;

static pthread_t g_reader;

static void on_report(void *ctx, const h2_guard_report *r) {
  reports *rs = ctx;
  pthread_mutex_lock(&rs->mu);
  rs->n++;
  rs->last = r->why;
  if (pthread_equal(pthread_self(), g_reader)) rs->off_reader = false;
  if (r->log) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (rs->logged < 64) rs->logged_at[rs->logged] = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    rs->logged++;
    rs->told_unlogged += r->suppressed;
  }
  snprintf(rs->peer, sizeof rs->peer, "%s", r->peer);
  pthread_mutex_unlock(&rs->mu);
}

static int reports_n(reports *rs) {
  pthread_mutex_lock(&rs->mu);
  int n = rs->n;
  pthread_mutex_unlock(&rs->mu);
  return n;
}

/* Reports come from the guard's thread: wait for the n-th (a hang guard,
 * not a speed budget). */
static void wait_reports(reports *rs, int n) {
  for (int i = 0; i < 30000 && reports_n(rs) < n; i++) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  assert_int_equal(reports_n(rs), n);
}

static void reports_init(reports *rs) {
  memset(rs, 0, sizeof *rs);
  pthread_mutex_init(&rs->mu, NULL);
  rs->off_reader = true;
  g_reader = pthread_self();
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
  reports seen;
  reports_init(&seen);
  h2_limits lim = {.pings_per_s = 5};
  assert_int_equal(h2_guard_start(&lim, on_report, &seen), 0);
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(false), 1);

  /* Within the limit: served. */
  int c = dial(port);
  int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s >= 0);
  uint8_t b[1024];
  size_t n = ping_wire(b, 5);
  send_all(c, b, n);
  assert_int_equal(recv_until(s, n), (ssize_t)n);
  assert_int_equal(reports_n(&seen), 0);

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
  wait_reports(&seen, 1);
  assert_int_equal(seen.last, H2_PING_FLOOD);
  assert_true(strncmp(seen.peer, "ipv4:127.0.0.1:", 15) == 0);
  assert_true(seen.off_reader);
  char one;
  errno = 0;
  assert_int_equal(read(s, &one, 1), -1);
  assert_int_equal(errno, ECONNRESET);
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
  h2_guard_stop(); /* joins the report thread: nothing more can come */
  assert_int_equal(reports_n(&seen), 1);
}

static void test_unregistered_listener_passes_through(void **state) {
  (void)state;
  reports seen;
  reports_init(&seen);
  h2_limits lim = {.pings_per_s = 1};
  assert_int_equal(h2_guard_start(&lim, on_report, &seen), 0);
  int port, lfd = listener(&port);
  int c = dial(port);
  int s = accept4(lfd, NULL, NULL, 0);
  uint8_t b[1024];
  size_t n = ping_wire(b, 30);
  send_all(c, b, n);
  assert_int_equal(recv_until(s, n), (ssize_t)n);
  close(c);
  close(s);
  close(lfd);
  h2_guard_stop();
  assert_int_equal(reports_n(&seen), 0);
}

/* Many closes at once: every one is reported (the counter), at most 10 a
 * second are logged, and a logged line says how many before it were not. */
static void test_reports_are_all_delivered_and_log_lines_rate_limited(void **state) {
  (void)state;
  reports seen;
  reports_init(&seen);
  h2_limits lim = {.pings_per_s = 1};
  assert_int_equal(h2_guard_start(&lim, on_report, &seen), 0);
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(false), 1);
  enum { N = 25 };
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint8_t b[256];
  size_t n = ping_wire(b, 3);
  for (int i = 0; i < N; i++) {
    int c = dial(port);
    int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    send_all(c, b, n);
    assert_int_equal(recv_until(s, n), -1);
    close(c);
    close(s);
  }
  h2_guard_stop(); /* delivers what is queued, then joins */
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int64_t took = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
  assert_int_equal(seen.n, N);
  assert_true(seen.logged >= 1 && seen.logged <= 64);
  if (took < 900000000LL) {
    /* All within one second: exactly the first 10 logged. */
    assert_int_equal(seen.logged, 10);
  } else {
    /* A slow machine: a window holds at most 10 lines, so any 21 in a row
     * span two windows' starts, a second apart (less the coarse clock's
     * granularity). */
    for (int i = 20; i < seen.logged; i++)
      assert_true(seen.logged_at[i] - seen.logged_at[i - 20] >= 1000000000LL - 20000000LL);
  }
  /* What a logged line says was not logged, was not: the rest came after
   * the last logged line. */
  assert_true((int)seen.told_unlogged <= N - seen.logged);
  close(lfd);
}

/* What the report thread says of connections without a record. */
typedef struct uncov {
  pthread_mutex_t mu;
  uint64_t sum, total;
  uint64_t untied_sum, untied_total; /* the reports with untied set */
  int reports, logged;
  bool only_uncovered; /* every report was one of these (why H2_OK, no peer) */
  bool off_reader;
} uncov;

static void on_uncovered(void *ctx, const h2_guard_report *r) {
  uncov *u = ctx;
  pthread_mutex_lock(&u->mu);
  u->reports++;
  if (r->untied) {
    u->untied_sum += r->uncovered;
    u->untied_total = r->uncovered_total;
  } else {
    u->sum += r->uncovered;
    u->total = r->uncovered_total;
  }
  if (r->log) u->logged++;
  if (r->why != H2_OK || r->uncovered == 0 || r->peer[0]) u->only_uncovered = false;
  if (pthread_equal(pthread_self(), g_reader)) u->off_reader = false;
  pthread_mutex_unlock(&u->mu);
}

#ifdef PRODUCT_TEST_FAULTS
/* Starts the guard reporting to u, with the fault point that gives no
 * accepted connection a record (the start-up probe keeps its own). */
static void start_without_records(uncov *u, uint32_t pings_per_s) {
  *u = (uncov){.only_uncovered = true, .off_reader = true};
  pthread_mutex_init(&u->mu, NULL);
  g_reader = pthread_self();
  assert_int_equal(setenv("PRODUCT_FAULT_GUARD_NO_RECORD", "1", 1), 0);
  h2_limits lim = {.pings_per_s = pings_per_s};
  int rc = h2_guard_start(&lim, on_uncovered, u);
  assert_int_equal(unsetenv("PRODUCT_FAULT_GUARD_NO_RECORD"), 0);
  assert_int_equal(rc, 0);
}

/* Waits until *count (under u->mu) reaches want, then stops the guard.
 * Hang guard (about 30 s), not a speed budget: the report thread looks at
 * least once a second. */
static void stop_once_reported(uncov *u, const uint64_t *count, uint64_t want) {
  for (int i = 0; i < 30000; i++) {
    pthread_mutex_lock(&u->mu);
    uint64_t got = *count;
    pthread_mutex_unlock(&u->mu);
    if (got >= want) break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  h2_guard_stop();
}
#endif

/* Connections the guard could not give a record (here the fault point
 * that stands for a failed chunk allocation) are served without its
 * limits, and said: the report thread hands over how many, at least once a
 * second, logged at most once every 10 s. Before, h2_guard_uncovered()
 * counted them and nothing read it. */
static void test_uncovered_connections_are_reported(void **state) {
  (void)state;
#ifndef PRODUCT_TEST_FAULTS
  skip(); /* needs the fault point (-DPRODUCT_TEST_FAULTS=ON) */
#else
  uncov u;
  start_without_records(&u, 1);
  uint64_t base = h2_guard_uncovered();
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(false), 1);
  uint8_t b[256];
  size_t n = ping_wire(b, 3);
  for (int i = 0; i < 3; i++) {
    int c = dial(port);
    int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    send_all(c, b, n);
    /* Over the PING limit, and served: no record, no limit. */
    assert_int_equal(recv_until(s, n), (ssize_t)n);
    close(c);
    close(s);
  }
  assert_int_equal(h2_guard_uncovered(), base + 3);
  stop_once_reported(&u, &u.sum, 3);
  assert_int_equal(u.sum, 3);
  assert_int_equal(u.total, base + 3);
  assert_true(u.reports >= 1 && u.reports <= 3);
  assert_int_equal(u.logged, 1); /* the first; the others (if any) within 10 s */
  assert_true(u.only_uncovered);
  assert_true(u.off_reader);
  close(lfd);
  pthread_mutex_destroy(&u.mu);
#endif
}

/* The table is not sized from RLIMIT_NOFILE at start: a descriptor far
 * above the limit the guard started under is a connection like any other. */
static void test_descriptors_above_the_start_limit_are_covered(void **state) {
  (void)state;
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  const int high = 5000;
  assert_true(old.rlim_max == RLIM_INFINITY || old.rlim_max >= (rlim_t)high + 64);
  struct rlimit low = {64, old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  reports seen;
  reports_init(&seen);
  h2_limits lim = {.pings_per_s = 5};
  assert_int_equal(h2_guard_start(&lim, on_report, &seen), 0);
  struct rlimit more = {(rlim_t)high + 64, old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &more), 0);
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(false), 1);
  int c = dial(port);
  /* Push the accepted socket's number up: every lower one is taken. */
  static int fill[8192];
  int nfill = 0, x;
  while ((x = dup(lfd)) >= 0) {
    fill[nfill++] = x;
    if (x >= high - 1 || nfill == 8192) break;
  }
  assert_int_equal(x, high - 1);
  int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s >= high);
  uint8_t b[1024];
  size_t n = ping_wire(b, 6);
  send_all(c, b, n);
  errno = 0;
  assert_int_equal(recv_until(s, n), -1);
  assert_int_equal(errno, ECONNRESET);
  wait_reports(&seen, 1);
  assert_int_equal(seen.last, H2_PING_FLOOD);
  close(s);
  close(c);
  for (int i = 0; i < nfill; i++) close(fill[i]);
  close(lfd);
  h2_guard_stop();
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

/* ------------------------------------------------ TLS: tying an SSL --- */

/* A client's ClientHello, as OpenSSL writes it (one TLS record). */
static size_t client_hello(uint8_t *out, size_t cap) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(ctx);
  SSL *ssl = SSL_new(ctx);
  assert_non_null(ssl);
  BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
  assert_true(rb && wb);
  BIO_set_mem_eof_return(rb, -1);
  SSL_set_bio(ssl, rb, wb);
  assert_int_equal(SSL_connect(ssl), -1);
  assert_int_equal(SSL_get_error(ssl, -1), SSL_ERROR_WANT_READ);
  char *p = NULL;
  long n = BIO_get_mem_data(wb, &p);
  assert_true(n > 48 && (size_t)n <= cap && p[0] == 22);
  memcpy(out, p, (size_t)n);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return (size_t)n;
}

/* The same hello, re-framed as TLS records of `chunk` payload bytes each:
 * OpenSSL reassembles a ClientHello split across records. */
static size_t refragment(const uint8_t *hello, size_t n, size_t chunk, uint8_t *out) {
  size_t o = 0;
  for (size_t i = 5; i < n; i += chunk) {
    size_t k = n - i < chunk ? n - i : chunk;
    out[o++] = 22;
    out[o++] = hello[1];
    out[o++] = hello[2];
    out[o++] = (uint8_t)(k >> 8);
    out[o++] = (uint8_t)k;
    memcpy(out + o, hello + i, k);
    o += k;
  }
  return o;
}

/* A server-side SSL as grpc's tsi drives it: a BIO pair, bytes written in
 * as the transport read them, a handshake step after each. */
typedef struct tls_server {
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *in; /* the network side of the pair */
} tls_server;

static void tls_server_init(tls_server *t) {
  t->ctx = SSL_CTX_new(TLS_server_method());
  assert_non_null(t->ctx);
  t->ssl = SSL_new(t->ctx);
  assert_non_null(t->ssl);
  BIO *ssl_io = NULL;
  assert_int_equal(BIO_new_bio_pair(&ssl_io, 16384, &t->in, 16384), 1);
  SSL_set_bio(t->ssl, ssl_io, ssl_io);
  SSL_set_accept_state(t->ssl);
}

/* Feeds what was read into the SSL and takes a handshake step (without a
 * certificate it fails once the hello is read: the tie is what matters). */
static void tls_server_step(tls_server *t, const uint8_t *p, size_t n) {
  assert_int_equal(BIO_write(t->in, p, (int)n), (int)n);
  (void)SSL_do_handshake(t->ssl);
  ERR_clear_error();
}

static void tls_server_free(tls_server *t) {
  SSL_free(t->ssl);
  BIO_free(t->in);
  SSL_CTX_free(t->ctx);
}

/* Tells the guard the connection from `fd`'s local address is the probe. */
static void expect_probe_from(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  h2_guard_probe_expect((struct sockaddr *)&a);
}

/* Sends `n` bytes in pieces of `piece`, each read by the server (read())
 * and stepped through its SSL before the next is sent. */
static void feed_in_pieces(int c, int s, tls_server *t, const uint8_t *p, size_t n, size_t piece) {
  uint8_t buf[4096];
  for (size_t off = 0; off < n; off += piece) {
    size_t k = n - off < piece ? n - off : piece;
    send_all(c, p + off, k);
    size_t got = 0;
    while (got < k) {
      ssize_t r = read(s, buf + got, k - got);
      assert_true(r > 0);
      got += (size_t)r;
    }
    tls_server_step(t, buf, k);
  }
}

/* A TLS connection is tied to its SSL (the probe flag says so) however its
 * client splits the ClientHello: in one piece, across TCP segments read one
 * by one, or across tiny TLS records. A client that splits it must not get
 * a connection whose resets go uncounted. */
static void test_tls_split_client_hello_is_still_tied(void **state) {
  (void)state;
  h2_limits lim = {.pings_per_s = 100};
  assert_int_equal(h2_guard_start(&lim, NULL, NULL), 0);
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(true), 1);
  uint8_t hello[4096], frag[8192];
  size_t hn = client_hello(hello, sizeof hello);
  size_t fn = refragment(hello, hn, 3, frag);
  /* Empty handshake records before the hello: OpenSSL reads past them (an
   * alert or a ChangeCipherSpec first it refuses). */
  static const uint8_t lead[] = {22, 3, 1, 0, 0, 22, 3, 1, 0, 0};
  uint8_t led[4096 + sizeof lead];
  memcpy(led, lead, sizeof lead);
  memcpy(led + sizeof lead, hello, hn);
  size_t ln = sizeof lead + hn;
  struct {
    const uint8_t *wire;
    size_t n, piece;
  } ways[] = {{hello, hn, hn}, {hello, hn, 7}, {frag, fn, 8}, {frag, fn, fn}, {led, ln, ln}, {led, ln, 3}};
  for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++) {
    int c = dial(port);
    expect_probe_from(c);
    int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    assert_true(h2_guard_probe_state() & PROBE_ACCEPTED);
    tls_server t;
    tls_server_init(&t);
    feed_in_pieces(c, s, &t, ways[w].wire, ways[w].n, ways[w].piece);
    /* OpenSSL did read this hello (the client random is known)... */
    uint8_t rnd[32], zero[32] = {0};
    assert_int_equal(SSL_get_client_random(t.ssl, rnd, sizeof rnd), sizeof rnd);
    assert_memory_not_equal(rnd, zero, sizeof rnd);
    /* ... and the guard tied this SSL to this connection. */
    assert_true(h2_guard_probe_state() & PROBE_TLS_TIED);
    tls_server_free(&t);
    close(c);
    close(s);
  }
  h2_guard_probe_expect(NULL);
  close(lfd);
  h2_guard_stop();
}

/* Two connections that send the same ClientHello: the SSL of one could be
 * tied to the other's descriptor (its abuse shuts the other, its own goes
 * uncounted). The second is refused before its hello reaches the core, and
 * the first stays tied to its own SSL. A hello whose random is all zero is
 * refused as well. */
static void test_tls_replayed_client_hello_is_refused(void **state) {
  (void)state;
  h2_limits lim = {.pings_per_s = 100};
  assert_int_equal(h2_guard_start(&lim, NULL, NULL), 0);
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(true), 1);
  uint8_t hello[4096];
  size_t hn = client_hello(hello, sizeof hello);

  int ca = dial(port);
  expect_probe_from(ca);
  int sa = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sa >= 0);
  int cb = dial(port);
  int sb = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sb >= 0);

  send_all(ca, hello, hn);
  assert_int_equal(recv_until(sa, hn), (ssize_t)hn);
  send_all(cb, hello, hn);
  errno = 0;
  assert_int_equal(recv_until(sb, hn), -1);
  assert_int_equal(errno, ECONNRESET);
  char one;
  assert_int_equal(read(cb, &one, 1), 0); /* the replayer sees the shutdown */

  /* An all-zero client random (what an SSL reports before any hello, so it
   * could never be tied and its resets never counted): refused too. */
  uint8_t zeroed[4096];
  memcpy(zeroed, hello, hn);
  memset(zeroed + 11, 0, 32); /* record (5) + handshake (4) headers + version (2) */
  int cz = dial(port);
  int sz = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sz >= 0);
  send_all(cz, zeroed, hn);
  errno = 0;
  assert_int_equal(recv_until(sz, hn), -1);
  assert_int_equal(errno, ECONNRESET);
  close(cz);
  close(sz);

  /* A's SSL is tied to A (the probe), not to B. */
  tls_server t;
  tls_server_init(&t);
  tls_server_step(&t, hello, hn);
  assert_true(h2_guard_probe_state() & PROBE_TLS_TIED);
  tls_server_free(&t);
  h2_guard_probe_expect(NULL);
  close(ca);
  close(sa);
  close(cb);
  close(sb);
  close(lfd);
  h2_guard_stop();
}

/* A TLS connection whose SSL cannot be tied to it (here it got no record,
 * the fault point: its ClientHello's random waits nowhere) keeps its
 * per-SSL frame limits but escapes the per-connection rapid-reset count.
 * It is counted once per SSL (h2_guard_untied), however many handshake
 * steps it takes, and the report thread hands the count over (untied set).
 * A tied one (the probe, which keeps its record) is not counted. Before,
 * nothing counted such connections. */
static void test_untied_tls_connections_are_counted(void **state) {
  (void)state;
#ifndef PRODUCT_TEST_FAULTS
  skip(); /* needs the fault point (-DPRODUCT_TEST_FAULTS=ON) */
#else
  uncov u;
  start_without_records(&u, 100);
  uint64_t base = h2_guard_untied();
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(true), 1);
  uint8_t hello[4096];
  size_t hn = client_hello(hello, sizeof hello);

  /* The probe has its record: tied, not counted. */
  int cp = dial(port);
  expect_probe_from(cp);
  int sp = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sp >= 0);
  tls_server tp;
  tls_server_init(&tp);
  feed_in_pieces(cp, sp, &tp, hello, hn, hn);
  assert_true(h2_guard_probe_state() & PROBE_TLS_TIED);
  assert_int_equal(h2_guard_untied(), base);
  tls_server_free(&tp);
  h2_guard_probe_expect(NULL);
  close(cp);
  close(sp);

  /* Another: no record, so its SSL ties to nothing. Counted once. */
  int c = dial(port);
  int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s >= 0);
  uint8_t other[4096];
  size_t on = client_hello(other, sizeof other); /* its own random */
  tls_server t;
  tls_server_init(&t);
  feed_in_pieces(c, s, &t, other, on, on);
  assert_int_equal(h2_guard_untied(), base + 1);
  for (int i = 0; i < 5; i++) {
    (void)SSL_do_handshake(t.ssl);
    ERR_clear_error();
  }
  assert_int_equal(h2_guard_untied(), base + 1);
  tls_server_free(&t);
  close(c);
  close(s);

  stop_once_reported(&u, &u.untied_sum, 1);
  assert_int_equal(u.untied_sum, 1);
  assert_int_equal(u.untied_total, base + 1);
  assert_true(u.only_uncovered);
  assert_true(u.off_reader);
  close(lfd);
  pthread_mutex_destroy(&u.mu);
#endif
}

/* More TLS handshakes in flight at once than the 128-slot ring of client
 * randoms held (200 here, bounded): every one is still tied. The ring
 * overwrote the oldest untied entries, so the first connections (the probe
 * here) were never tied and their resets never counted. Each connection
 * that closes leaves the table too: the same random on a later connection
 * is not taken for a replay. */
enum { MANY_TLS = 200 };
static void test_tls_many_handshakes_in_flight_are_all_tied(void **state) {
  (void)state;
  h2_limits lim = {.pings_per_s = 100};
  assert_int_equal(h2_guard_start(&lim, NULL, NULL), 0);
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(true), 1);
  static int c[MANY_TLS], s[MANY_TLS];
  static uint8_t hello[MANY_TLS][2048];
  static size_t hn[MANY_TLS];
  for (int i = 0; i < MANY_TLS; i++) {
    c[i] = dial(port);
    if (i == 0 || i == MANY_TLS - 1) expect_probe_from(c[i]);
    s[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s[i] >= 0);
    hn[i] = client_hello(hello[i], sizeof hello[i]); /* a random of its own */
    send_all(c[i], hello[i], hn[i]);
    /* Read through the guard: its random waits to be tied. */
    assert_int_equal(recv_until(s[i], hn[i]), (ssize_t)hn[i]);
    if (i == 0) assert_true(h2_guard_probe_state() & PROBE_ACCEPTED);
  }
  /* The first (the probe), now that 199 others came after it. */
  tls_server t;
  tls_server_init(&t);
  tls_server_step(&t, hello[0], hn[0]);
  assert_true(h2_guard_probe_state() & PROBE_TLS_TIED);
  tls_server_free(&t);
  /* A connection still waiting that closes leaves the table: the same
   * hello on a later connection is no replay of a waiting one (served). */
  close(c[50]);
  close(s[50]);
  int cr = dial(port);
  int sr = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sr >= 0);
  send_all(cr, hello[50], hn[50]);
  assert_int_equal(recv_until(sr, hn[50]), (ssize_t)hn[50]);
  /* One still waiting, though, is: the 100th's hello again is refused. */
  int cd = dial(port);
  int sd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sd >= 0);
  send_all(cd, hello[99], hn[99]);
  errno = 0;
  assert_int_equal(recv_until(sd, hn[99]), -1);
  assert_int_equal(errno, ECONNRESET);
  /* Every other one ties to its SSL, the last (the probe again) too. */
  h2_guard_probe_expect(NULL); /* clears the flags; the records keep theirs */
  for (int i = 1; i < MANY_TLS; i++) {
    if (i == 50) continue;
    tls_server u;
    tls_server_init(&u);
    tls_server_step(&u, hello[i], hn[i]);
    tls_server_free(&u);
  }
  assert_true(h2_guard_probe_state() & PROBE_TLS_TIED);
  close(cr);
  close(sr);
  close(cd);
  close(sd);
  close(c[0]);
  close(s[0]);
  for (int i = 1; i < MANY_TLS; i++) {
    if (i == 50) continue;
    close(c[i]);
    close(s[i]);
  }
  close(lfd);
  h2_guard_stop();
}

/* The start-up probe is known by its whole address: a client elsewhere on
 * the probe's port number (127.0.0.2 here, any host in life) neither takes
 * the probe's place (its connection is not the probe, so the probe is) nor
 * gets the probe's strict limits. */
static void test_probe_is_matched_by_address_not_port_alone(void **state) {
  (void)state;
  h2_limits lim = {.pings_per_s = 100};
  assert_int_equal(h2_guard_start(&lim, NULL, NULL), 0);
  int port, lfd = listener(&port);
  assert_int_equal(h2_guard_claim_listeners(false), 1);
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in to = me;
  to.sin_port = htons((uint16_t)port);
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(probe >= 0);
  assert_int_equal(bind(probe, (struct sockaddr *)&me, sizeof me), 0);
  socklen_t len = sizeof me;
  assert_int_equal(getsockname(probe, (struct sockaddr *)&me, &len), 0);
  h2_guard_probe_expect((struct sockaddr *)&me);

  /* Another address, the same port number, connected (and accepted) first. */
  struct sockaddr_in other = me;
  other.sin_addr.s_addr = htonl(0x7f000002);
  int o = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(o >= 0);
  assert_int_equal(bind(o, (struct sockaddr *)&other, sizeof other), 0);
  assert_int_equal(connect(o, (struct sockaddr *)&to, sizeof to), 0);
  int so = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(so >= 0);
  assert_int_equal(h2_guard_probe_state() & PROBE_ACCEPTED, 0);
  /* Not held to the probe's PING limit of 1 a second. */
  uint8_t b[1024];
  size_t n = ping_wire(b, 5);
  send_all(o, b, n);
  assert_int_equal(recv_until(so, n), (ssize_t)n);

  assert_int_equal(connect(probe, (struct sockaddr *)&to, sizeof to), 0);
  int sp = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sp >= 0);
  assert_true(h2_guard_probe_state() & PROBE_ACCEPTED);
  h2_guard_probe_expect(NULL);
  close(o);
  close(so);
  close(probe);
  close(sp);
  close(lfd);
  h2_guard_stop();
}

/* The old unkeyed bucket (FNV-1a over family, address, port): what a client
 * could compute offline to put all its connections in one chain. */
static uint32_t fnv_bucket_v6(const uint8_t addr[16], uint16_t port) {
  uint8_t key[19] = {6};
  memcpy(key + 1, addr, 16);
  key[17] = (uint8_t)(port >> 8);
  key[18] = (uint8_t)port;
  uint32_t h = 2166136261u;
  for (int i = 0; i < 19; i++) h = (h ^ key[i]) * 16777619u;
  return h % 4096;
}

/* 64 peers in one IPv6 /64 chosen to share one FNV bucket: the guard's
 * buckets are keyed at random, so they spread (64 in 4096 buckets: more than
 * 8 in one has a chance below 2^-50), and every accept, close and cancel no
 * longer walks all of them under the guard's lock. */
static void test_chosen_peers_do_not_share_one_bucket(void **state) {
  (void)state;
  h2_limits lim = {0};
  assert_int_equal(h2_guard_start(&lim, NULL, NULL), 0);
  uint8_t addr[16] = {0x20, 0x01, 0x0d, 0xb8};
  char peers[64][80];
  int n = 0;
  for (uint32_t host = 1; n < 64 && host < 50000000; host++) {
    addr[12] = (uint8_t)(host >> 24);
    addr[13] = (uint8_t)(host >> 16);
    addr[14] = (uint8_t)(host >> 8);
    addr[15] = (uint8_t)host;
    if (fnv_bucket_v6(addr, 443) != 7) continue;
    char text[INET6_ADDRSTRLEN];
    assert_non_null(inet_ntop(AF_INET6, addr, text, sizeof text));
    snprintf(peers[n++], sizeof peers[0], "ipv6:[%s]:443", text);
  }
  assert_int_equal(n, 64);
  int count[4096] = {0}, most = 0;
  for (int i = 0; i < n; i++) {
    int b = h2_guard_bucket_of(peers[i]);
    assert_true(b >= 0 && b < 4096);
    if (++count[b] > most) most = count[b];
  }
  assert_true(most <= 8);
  h2_guard_stop();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_guarded_connection_is_closed_over_the_limit),
      cmocka_unit_test(test_unregistered_listener_passes_through),
      cmocka_unit_test(test_descriptors_above_the_start_limit_are_covered),
      cmocka_unit_test(test_reports_are_all_delivered_and_log_lines_rate_limited),
      cmocka_unit_test(test_uncovered_connections_are_reported),
      cmocka_unit_test(test_untied_tls_connections_are_counted),
      cmocka_unit_test(test_tls_split_client_hello_is_still_tied),
      cmocka_unit_test(test_tls_replayed_client_hello_is_refused),
      cmocka_unit_test(test_tls_many_handshakes_in_flight_are_all_tied),
      cmocka_unit_test(test_probe_is_matched_by_address_not_port_alone),
      cmocka_unit_test(test_chosen_peers_do_not_share_one_bucket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
