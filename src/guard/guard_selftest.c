/* See guard_selftest.h. */
#include "guard/guard_selftest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "guard/h2_guard.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PROBE_PINGS 4

static int64_t mono_ms(void) { return clock_mono_ns() / 1000000; }

/* The client preface, an empty SETTINGS, then PINGs over the probe's limit. */
static size_t probe_wire(uint8_t *b) {
  size_t n = sizeof PREFACE - 1;
  memcpy(b, PREFACE, n);
  static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
  memcpy(b + n, settings, 9);
  n += 9;
  for (int i = 0; i < PROBE_PINGS; i++) {
    static const uint8_t ping[9] = {0, 0, 8, 6, 0, 0, 0, 0, 0};
    memcpy(b + n, ping, 9);
    memset(b + n + 9, 'p', 8);
    b[n + 9] = (uint8_t)i;
    n += 17;
  }
  return n;
}

/* The loopback address to reach a listener bound to `host`. */
static int target_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (!host[0] || strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
  if (strcmp(host, "::") == 0) host = "::1";
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  char service[8];
  snprintf(service, sizeof service, "%d", port);
  if (getaddrinfo(host, service, &hints, &res) != 0 || !res) return -1;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* A socket bound to an ephemeral port the guard is told about before the
 * connection exists (the core may accept it at once). */
static int probe_socket(const struct sockaddr_storage *to, socklen_t tolen, int64_t deadline) {
  int fd = socket(to->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  /* Bound to the address it connects to (loopback, or the listener's own
   * local address), port 0: the guard knows the probe by its whole address. */
  struct sockaddr_storage me;
  memcpy(&me, to, sizeof me);
  socklen_t melen = tolen;
  if (me.ss_family == AF_INET)
    ((struct sockaddr_in *)&me)->sin_port = 0;
  else
    ((struct sockaddr_in6 *)&me)->sin6_port = 0;
  if (bind(fd, (struct sockaddr *)&me, melen) != 0 ||
      getsockname(fd, (struct sockaddr *)&me, &melen) != 0)
    goto fail;
  h2_guard_probe_expect((const struct sockaddr *)&me);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) goto fail;
  if (connect(fd, (const struct sockaddr *)to, tolen) != 0) {
    if (errno != EINPROGRESS) goto fail;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int left = (int)(deadline - mono_ms());
    if (left <= 0 || poll(&p, 1, left) != 1) goto fail;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) goto fail;
  }
  return fd;
fail:
  close(fd);
  return -1;
}

static bool wait_io(int fd, short ev, int64_t deadline) {
  struct pollfd p = {.fd = fd, .events = ev};
  int left = (int)(deadline - mono_ms());
  return left > 0 && poll(&p, 1, left > 100 ? 100 : left) >= 0;
}

/* Frames the server sent: a PING ACK means the core answered the flood the
 * guard should have refused. */
typedef struct frame_walk {
  uint8_t hdr[9];
  size_t have;
  uint32_t skip;
  bool ping_ack;
} frame_walk;

static void walk(frame_walk *w, const uint8_t *p, size_t n) {
  while (n > 0) {
    if (w->skip) {
      size_t k = w->skip < n ? w->skip : n;
      w->skip -= (uint32_t)k;
      p += k;
      n -= k;
      continue;
    }
    w->hdr[w->have++] = *p++;
    n--;
    if (w->have < 9) continue;
    w->have = 0;
    w->skip = (uint32_t)w->hdr[0] << 16 | (uint32_t)w->hdr[1] << 8 | w->hdr[2];
    if (w->hdr[3] == 6 && (w->hdr[4] & 1)) w->ping_ack = true;
  }
}

/* Sends the probe's bytes and reads until the connection ends, the guard
 * says it refused it, or the deadline. */
static void run_plain(int fd, int64_t deadline, frame_walk *w) {
  uint8_t b[512];
  size_t n = probe_wire(b), off = 0;
  while (off < n && mono_ms() < deadline) {
    ssize_t k = send(fd, b + off, n - off, MSG_NOSIGNAL);
    if (k > 0) off += (size_t)k;
    else if (k < 0 && errno != EAGAIN && errno != EINTR) return;
    else wait_io(fd, POLLOUT, deadline);
  }
  while (mono_ms() < deadline && !(h2_guard_probe_state() & PROBE_REFUSED) && !w->ping_ack) {
    ssize_t k = recv(fd, b, sizeof b, 0);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) return;
    if (k > 0) walk(w, b, (size_t)k);
    else wait_io(fd, POLLIN, deadline);
  }
}

static void run_tls(int fd, bool mtls, int64_t deadline, frame_walk *w) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl = NULL;
  if (!ctx) return;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* our own listener: the bytes matter, not trust */
  static const unsigned char alpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn) != 0) goto out;
  if (!(ssl = SSL_new(ctx)) || SSL_set_fd(ssl, fd) != 1) goto out;
  int r;
  while ((r = SSL_connect(ssl)) != 1 && mono_ms() < deadline) {
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ) wait_io(fd, POLLIN, deadline);
    else if (e == SSL_ERROR_WANT_WRITE) wait_io(fd, POLLOUT, deadline);
    else goto out;
    if (mtls && (h2_guard_probe_state() & PROBE_TLS_TIED)) goto out;
  }
  if (r != 1) goto out;
  uint8_t b[512];
  size_t n = probe_wire(b);
  size_t off = 0;
  while (off < n && mono_ms() < deadline) {
    int k = SSL_write(ssl, b + off, (int)(n - off));
    if (k > 0) { off += (size_t)k; continue; }
    int e = SSL_get_error(ssl, k);
    if (e == SSL_ERROR_WANT_READ) wait_io(fd, POLLIN, deadline);
    else if (e == SSL_ERROR_WANT_WRITE) wait_io(fd, POLLOUT, deadline);
    else goto out;
  }
  while (mono_ms() < deadline && !(h2_guard_probe_state() & PROBE_REFUSED) && !w->ping_ack) {
    if (mtls && (h2_guard_probe_state() & PROBE_TLS_TIED)) break;
    int k = SSL_read(ssl, b, sizeof b);
    if (k > 0) { walk(w, b, (size_t)k); continue; }
    int e = SSL_get_error(ssl, k);
    if (e == SSL_ERROR_WANT_READ) wait_io(fd, POLLIN, deadline);
    else if (e == SSL_ERROR_WANT_WRITE) wait_io(fd, POLLOUT, deadline);
    else break;
  }
out:
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error(); /* the probe's own errors are not the server's */
}

int guard_selftest(const guard_probe_target *t, int timeout_ms, char *why, size_t whylen) {
  int64_t deadline = mono_ms() + timeout_ms;
  struct sockaddr_storage to;
  socklen_t tolen;
  if (target_addr(t->host, t->port, &to, &tolen) != 0) {
    snprintf(why, whylen, "the HTTP/2 guard's start-up probe cannot resolve %s", t->host);
    return -1;
  }
  int fd = probe_socket(&to, tolen, deadline);
  if (fd < 0) {
    snprintf(why, whylen, "the HTTP/2 guard's start-up probe cannot connect to its own port %d: %s",
             t->port, strerror(errno));
    h2_guard_probe_expect(NULL);
    return -1;
  }
  frame_walk w = {0};
  if (t->tls) run_tls(fd, t->mtls, deadline, &w);
  else run_plain(fd, deadline, &w);
  /* The refusal is recorded before the socket is shut down: once the
   * connection has ended, the state is final. */
  int st = h2_guard_probe_state();
  close(fd);
  h2_guard_probe_expect(NULL);
  const char *kind = t->tls ? "TLS" : "plaintext";
  if (!(st & PROBE_ACCEPTED)) {
    snprintf(why, whylen, "the HTTP/2 guard is not in the path: its accept hook did not see a %s "
             "loopback connection to port %d", kind, t->port);
    return -1;
  }
  if (t->tls && !(st & PROBE_TLS_TIED)) {
    snprintf(why, whylen, "the HTTP/2 guard is not in the TLS path: no TLS handshake of the probe "
             "to port %d reached its hook (a TLS library linked statically into the core?)", t->port);
    return -1;
  }
  if (t->mtls) return 0; /* no application byte without a client certificate */
  if (!(st & PROBE_REFUSED)) {
    snprintf(why, whylen, "the HTTP/2 guard is not in the read path: a %s PING flood on a loopback "
             "connection to port %d was %s, not refused", kind, t->port,
             w.ping_ack ? "answered by the core" : "not closed");
    return -1;
  }
  return 0;
}
