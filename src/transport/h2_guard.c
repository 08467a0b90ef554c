/* Symbol interposition feeding h2_frames; see h2_guard.h.
 *
 * The hot path (a read on any descriptor) costs one bounds check and one
 * byte load when the descriptor is not ours, and a walk over the 9-byte
 * frame headers when it is: no lock (the core never reads one endpoint from
 * two threads at once) and no allocation. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "transport/h2_guard.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTENERS 8
#define MAX_FDS (1 << 20)

enum { MODE_NONE = 0, MODE_PLAIN, MODE_TLS, MODE_CLOSED };

typedef struct fd_state {
  h2_frames f;
  uint8_t mode;
} fd_state;

typedef struct guard {
  h2_limits lim;
  h2_guard_report_fn report;
  void *ctx;
  fd_state *fds;
  int n_fds;
  int ports[MAX_LISTENERS];
  bool tls[MAX_LISTENERS];
  _Atomic int n_ports;
  int ssl_index;
} guard;

static guard g_guard = {.ssl_index = -1};
static _Atomic(guard *) g_on; /* NULL: everything passes through */

typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef int (*close_fn)(int);
typedef int (*ssl_read_fn)(SSL *, void *, int);

/* Resolved on first use: libc and the sanitizers may read before main. The
 * store is idempotent, so a race only resolves twice. */
#define REAL(name, type)                                              \
  static _Atomic(type) real_##name;                                   \
  static type get_##name(void) {                                      \
    type fn = atomic_load_explicit(&real_##name, memory_order_relaxed); \
    if (!fn) {                                                        \
      fn = (type)dlsym(RTLD_NEXT, #name);                             \
      atomic_store_explicit(&real_##name, fn, memory_order_relaxed);  \
    }                                                                 \
    return fn;                                                        \
  }
REAL(accept4, accept4_fn)
REAL(recvmsg, recvmsg_fn)
REAL(read, read_fn)
REAL(close, close_fn)
REAL(SSL_read, ssl_read_fn)

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static fd_state *state_of(guard *gd, int fd) {
  return gd && fd >= 0 && fd < gd->n_fds ? &gd->fds[fd] : NULL;
}

static void peer_text(int fd, char *out, size_t n) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[INET6_ADDRSTRLEN] = "";
  out[0] = '\0';
  if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof host))
      snprintf(out, n, "ipv4:%s:%d", host, ntohs(a->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    /* A v4 client on the dual-stack listener: written as the core writes
     * it (ipv4:a.b.c.d:port), so every abuse line names a peer one way. */
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      if (inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof host))
        snprintf(out, n, "ipv4:%s:%d", host, ntohs(a->sin6_port));
    } else if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host)) {
      snprintf(out, n, "ipv6:[%s]:%d", host, ntohs(a->sin6_port));
    }
  }
}

static int local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
  return -1;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  int c = get_accept4()(fd, addr, len, flags);
  guard *gd = atomic_load_explicit(&g_on, memory_order_acquire);
  fd_state *st = c >= 0 ? state_of(gd, c) : NULL;
  if (!st) return c;
  st->mode = MODE_NONE;
  int port = local_port(c);
  int n = atomic_load(&gd->n_ports);
  for (int i = 0; i < n; i++) {
    if (gd->ports[i] != port) continue;
    h2_frames_reset(&st->f);
    st->mode = gd->tls[i] ? MODE_TLS : MODE_PLAIN;
    break;
  }
  return c;
}

int close(int fd) {
  fd_state *st = state_of(atomic_load_explicit(&g_on, memory_order_acquire), fd);
  if (st) st->mode = MODE_NONE; /* the number may next be a file, not a client */
  return get_close()(fd);
}

/* A plaintext connection over a limit: fail this read and every later one. */
static ssize_t refuse_fd(guard *gd, fd_state *st, int fd, h2_verdict v) {
  st->mode = MODE_CLOSED;
  char peer[80];
  peer_text(fd, peer, sizeof peer); /* before the shutdown: a reset peer is gone after it */
  shutdown(fd, SHUT_RDWR);
  if (gd->report) gd->report(gd->ctx, peer, v);
  errno = ECONNRESET;
  return -1;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  guard *gd = atomic_load_explicit(&g_on, memory_order_acquire);
  fd_state *st = state_of(gd, fd);
  if (!st || st->mode == MODE_NONE || st->mode == MODE_TLS || (flags & (MSG_ERRQUEUE | MSG_PEEK)))
    return get_recvmsg()(fd, msg, flags);
  if (st->mode == MODE_CLOSED) {
    errno = ECONNRESET;
    return -1;
  }
  ssize_t r = get_recvmsg()(fd, msg, flags);
  if (r <= 0) return r;
  int64_t now = now_ns();
  size_t left = (size_t)r;
  for (size_t i = 0; i < msg->msg_iovlen && left; i++) {
    size_t n = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
    h2_verdict v = h2_frames_feed(&st->f, &gd->lim, msg->msg_iov[i].iov_base, n, now);
    if (v != H2_OK) return refuse_fd(gd, st, fd, v);
    left -= n;
  }
  return r;
}

ssize_t read(int fd, void *buf, size_t count) {
  guard *gd = atomic_load_explicit(&g_on, memory_order_acquire);
  fd_state *st = state_of(gd, fd);
  if (!st || st->mode == MODE_NONE || st->mode == MODE_TLS) return get_read()(fd, buf, count);
  if (st->mode == MODE_CLOSED) {
    errno = ECONNRESET;
    return -1;
  }
  ssize_t r = get_read()(fd, buf, count);
  if (r <= 0) return r;
  h2_verdict v = h2_frames_feed(&st->f, &gd->lim, buf, (size_t)r, now_ns());
  return v == H2_OK ? r : refuse_fd(gd, st, fd, v);
}

static void ssl_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp) {
  (void)parent;
  (void)ad;
  (void)idx;
  (void)argl;
  (void)argp;
  free(ptr);
}

/* The OpenSSL error that makes tsi report a protocol failure and the core
 * close the connection. */
static int refuse_ssl(void) {
  ERR_raise(ERR_LIB_SSL, SSL_R_EXCESSIVE_MESSAGE_SIZE);
  return -1;
}

int SSL_read(SSL *ssl, void *buf, int num) {
  guard *gd = atomic_load_explicit(&g_on, memory_order_acquire);
  if (!gd || gd->ssl_index < 0 || !SSL_is_server(ssl)) return get_SSL_read()(ssl, buf, num);
  fd_state *st = SSL_get_ex_data(ssl, gd->ssl_index);
  if (!st) {
    /* Once per TLS connection, at its first read. Without memory: not
     * counted, as before. */
    st = malloc(sizeof *st);
    if (!st) return get_SSL_read()(ssl, buf, num);
    h2_frames_reset(&st->f);
    st->mode = MODE_TLS;
    if (SSL_set_ex_data(ssl, gd->ssl_index, st) != 1) {
      free(st);
      return get_SSL_read()(ssl, buf, num);
    }
  }
  if (st->mode == MODE_CLOSED) return refuse_ssl();
  int r = get_SSL_read()(ssl, buf, num);
  if (r <= 0) return r;
  h2_verdict v = h2_frames_feed(&st->f, &gd->lim, buf, (size_t)r, now_ns());
  if (v == H2_OK) return r;
  st->mode = MODE_CLOSED;
  if (gd->report) gd->report(gd->ctx, "", v);
  return refuse_ssl();
}

int h2_guard_start(const h2_limits *lim, h2_guard_report_fn report, void *ctx) {
  guard *gd = &g_guard;
  struct rlimit rl;
  rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  if (n == RLIM_INFINITY || n > MAX_FDS) n = MAX_FDS;
  atomic_store(&g_on, NULL);
  free(gd->fds); /* a table left by an earlier start/stop (tests) */
  /* calloc of this size maps zero pages: only the entries of descriptors
   * in use ever become resident. */
  gd->fds = calloc((size_t)n, sizeof *gd->fds);
  if (!gd->fds) return -1;
  gd->n_fds = (int)n;
  gd->lim = *lim;
  gd->report = report;
  gd->ctx = ctx;
  atomic_store(&gd->n_ports, 0);
  if (gd->ssl_index < 0)
    gd->ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_state_free);
  atomic_store_explicit(&g_on, gd, memory_order_release);
  return 0;
}

void h2_guard_listen(int port, bool tls) {
  guard *gd = atomic_load(&g_on);
  if (!gd) return;
  int n = atomic_load(&gd->n_ports);
  if (n >= MAX_LISTENERS) return;
  gd->ports[n] = port;
  gd->tls[n] = tls;
  atomic_store(&gd->n_ports, n + 1);
}

void h2_guard_stop(void) {
  /* The table stays (reachable from g_guard): a core thread may still be
   * inside a read while the last references drop. */
  atomic_store(&g_on, NULL);
}
