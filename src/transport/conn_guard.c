/* See conn_guard.h. */
#include "transport/conn_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections tracked at once: open addressing, a short probe, and the
 * stalest entry of the probe replaced when all are taken, so that many
 * clients cancelling a little cannot grow the table. */
#define GUARD_SLOTS 1024
#define GUARD_PROBE 8
#define GUARD_PEER_MAX 64
#define WINDOW_NS 1000000000LL

typedef struct guard_entry {
  char peer[GUARD_PEER_MAX]; /* "" = free */
  int port;
  int64_t window_start;
  int64_t count;
  bool closed;
} guard_entry;

struct conn_guard {
  int64_t limit;
  conn_guard_close_fn close_fn;
  void *ctx;
  pthread_mutex_t mu;
  guard_entry slots[GUARD_SLOTS];
};

conn_guard *conn_guard_create(int64_t limit, conn_guard_close_fn close_fn, void *ctx) {
  conn_guard *g = calloc(1, sizeof(*g));
  if (!g) return NULL;
  g->limit = limit;
  g->close_fn = close_fn ? close_fn : conn_guard_close_socket;
  g->ctx = ctx;
  pthread_mutex_init(&g->mu, NULL);
  return g;
}

void conn_guard_destroy(conn_guard *g) {
  if (!g) return;
  pthread_mutex_destroy(&g->mu);
  free(g);
}

static uint32_t hash(const char *s, int port) {
  uint32_t h = 2166136261u ^ (uint32_t)port; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Which entry to forget first: one whose window is over, else the one that
 * counted least (the oldest on a tie). Forgetting by age alone let a client
 * evict its own abusive connection, whose window is the oldest, by cancelling
 * once on other connections that share its probe. */
static bool evicts_before(const guard_entry *a, const guard_entry *b, int64_t now) {
  bool a_over = now - a->window_start >= WINDOW_NS, b_over = now - b->window_start >= WINDOW_NS;
  if (a_over != b_over) return a_over;
  if (!a_over && a->count != b->count) return a->count < b->count;
  return a->window_start < b->window_start;
}

static guard_entry *entry_for(conn_guard *g, const char *peer, int port, int64_t now) {
  uint32_t h = hash(peer, port);
  guard_entry *free_e = NULL, *oldest = NULL;
  for (int i = 0; i < GUARD_PROBE; i++) {
    guard_entry *e = &g->slots[(h + (uint32_t)i) % GUARD_SLOTS];
    if (!e->peer[0]) {
      if (!free_e) free_e = e;
    } else if (e->port == port && strcmp(e->peer, peer) == 0) {
      return e;
    } else if (!oldest || evicts_before(e, oldest, now)) {
      oldest = e;
    }
  }
  /* A free slot, else the cheapest entry to forget. */
  guard_entry *victim = free_e ? free_e : oldest;
  memset(victim, 0, sizeof *victim);
  snprintf(victim->peer, sizeof victim->peer, "%s", peer);
  victim->port = port;
  victim->window_start = now;
  return victim;
}

bool conn_guard_note_cancel(conn_guard *g, const char *peer, int port, int64_t now_ns) {
  if (!g || g->limit <= 0 || !peer || !peer[0]) return false;
  /* Not an address we could match ("unknown", a unix socket, too long). */
  if (strncmp(peer, "ipv", 3) != 0 || strlen(peer) >= GUARD_PEER_MAX) return false;
  pthread_mutex_lock(&g->mu);
  guard_entry *e = entry_for(g, peer, port, now_ns);
  if (now_ns - e->window_start >= WINDOW_NS) {
    e->window_start = now_ns;
    e->count = 0;
    e->closed = false; /* a new connection may reuse the address later */
  }
  e->count++;
  bool close_now = e->count > g->limit && !e->closed;
  if (close_now) e->closed = true;
  pthread_mutex_unlock(&g->mu);
  /* Outside the lock: the descriptor scan is a few hundred syscalls. The
   * calls of a connection just closed end cancelled too; once the socket is
   * gone they find nothing to close and are not reported again. */
  return close_now && g->close_fn(g->ctx, peer, port) > 0;
}

/* "ipv4:1.2.3.4:5", "ipv6:[::1]:5" (or with %5B/%5D). */
int conn_guard_parse_peer(const char *peer, struct sockaddr_storage *out) {
  char host[INET6_ADDRSTRLEN + 8];
  const char *p;
  memset(out, 0, sizeof *out);
  if (strncmp(peer, "ipv4:", 5) == 0) {
    p = peer + 5;
    const char *colon = strrchr(p, ':');
    if (!colon || (size_t)(colon - p) >= sizeof host) return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1) return -1;
    a->sin_port = htons((uint16_t)port);
    return 0;
  }
  if (strncmp(peer, "ipv6:", 5) != 0) return -1;
  p = peer + 5;
  size_t open = 0;
  if (*p == '[') open = 1;
  else if (strncasecmp(p, "%5B", 3) == 0) open = 3;
  else return -1;
  p += open;
  const char *close = strchr(p, ']');
  if (open == 3) {
    close = strstr(p, "%5D");
    if (!close) close = strstr(p, "%5d");
  }
  if (!close || (size_t)(close - p) >= sizeof host) return -1;
  memcpy(host, p, (size_t)(close - p));
  host[close - p] = '\0';
  const char *rest = close + open;
  if (*rest != ':') return -1;
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
  a->sin6_family = AF_INET6;
  char *pct = strchr(host, '%'); /* a zone: matched by address alone */
  if (pct) *pct = '\0';
  if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
  char *end;
  long port = strtol(rest + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || end == rest + 1) return -1;
  a->sin6_port = htons((uint16_t)port);
  return 0;
}

static int port_of(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
  if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
  return -1;
}

/* Same address and port; an IPv4 peer also matches its v4-mapped form on a
 * dual-stack socket. */
static bool same_peer(const struct sockaddr_storage *want, const struct sockaddr_storage *got) {
  if (port_of(want) != port_of(got)) return false;
  if (want->ss_family == AF_INET && got->ss_family == AF_INET)
    return ((const struct sockaddr_in *)want)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)got)->sin_addr.s_addr;
  if (got->ss_family != AF_INET6) return false;
  const struct in6_addr *g6 = &((const struct sockaddr_in6 *)got)->sin6_addr;
  if (want->ss_family == AF_INET6)
    return memcmp(g6, &((const struct sockaddr_in6 *)want)->sin6_addr, sizeof *g6) == 0;
  return IN6_IS_ADDR_V4MAPPED(g6) &&
         memcmp(&g6->s6_addr[12], &((const struct sockaddr_in *)want)->sin_addr, 4) == 0;
}

/* A copy of descriptor `fd`, or -1 once it is closed. The core may close
 * `fd` at any moment and the kernel gives the number to the next connection
 * accepted, so a socket is checked and shut down through a copy, which keeps
 * referring to the socket that was checked. */
static int hold(long fd) { return fcntl((int)fd, F_DUPFD_CLOEXEC, 0); }

/* Not yet shut down: a socket we shut down stays open (FIN_WAIT, CLOSING,
 * LAST_ACK, or CLOSE once reset) until the core closes it, and the cancels
 * its calls still send must not count as a second close. Only the states
 * a shutdown leads to are excluded: whatever a client can put its side in
 * (a half-close is CLOSE_WAIT) is still closed. */
static bool still_open(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return true;
  switch (ti.tcpi_state) {
  case TCP_FIN_WAIT1:
  case TCP_FIN_WAIT2:
  case TCP_CLOSING:
  case TCP_LAST_ACK:
  case TCP_TIME_WAIT:
  case TCP_CLOSE:
    return false;
  default:
    return true;
  }
}

int conn_guard_close_socket(void *ctx, const char *peer, int port) {
  (void)ctx;
  struct sockaddr_storage want;
  if (conn_guard_parse_peer(peer, &want) != 0) return 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  int closed = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    if (*end || end == de->d_name || fd == dirfd(d)) continue;
    struct sockaddr_storage local, remote;
    socklen_t ll = sizeof local, rl = sizeof remote;
    /* Cheap filters on the number first (most descriptors are not ours to
     * close), then everything again on a held copy. */
    if (getsockname((int)fd, (struct sockaddr *)&local, &ll) != 0) continue;
    if (port_of(&local) != port) continue;
    int h = hold(fd);
    if (h < 0) continue;
    ll = sizeof local;
    /* Not close(2) of the core's descriptor: the core still owns it and
     * closes it once it has seen the end of the connection. */
    if (getsockname(h, (struct sockaddr *)&local, &ll) == 0 && port_of(&local) == port &&
        getpeername(h, (struct sockaddr *)&remote, &rl) == 0 && same_peer(&want, &remote) &&
        still_open(h) && shutdown(h, SHUT_RDWR) == 0)
      closed++;
    close(h);
  }
  closedir(d);
  return closed;
}

int conn_guard_close_stalled(int port, int min_unsent) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  /* The worst so far is held (a copy of its descriptor): by the end of the
   * scan the core may have closed its number and given it to a new
   * connection, which must not be the one shut down. */
  int worst = -1, worst_unsent = min_unsent - 1;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    if (*end || end == de->d_name || fd == dirfd(d) || fd == worst) continue;
    struct sockaddr_storage local, remote;
    socklen_t ll = sizeof local, rl = sizeof remote;
    if (getsockname((int)fd, (struct sockaddr *)&local, &ll) != 0) continue;
    if (port_of(&local) != port) continue;
    if (getpeername((int)fd, (struct sockaddr *)&remote, &rl) != 0) continue;
    int unsent = 0;
    if (ioctl((int)fd, SIOCOUTQ, &unsent) != 0) continue;
    if (unsent <= worst_unsent) continue;
    int h = hold(fd);
    ll = sizeof local;
    if (h < 0) continue;
    /* One already shut down keeps its unsent bytes until the core closes
     * it: not a candidate, or the same socket would be picked every time. */
    if (getsockname(h, (struct sockaddr *)&local, &ll) != 0 || port_of(&local) != port ||
        ioctl(h, SIOCOUTQ, &unsent) != 0 || unsent <= worst_unsent || !still_open(h)) {
      close(h);
      continue;
    }
    if (worst >= 0) close(worst);
    worst_unsent = unsent;
    worst = h;
  }
  closedir(d);
  if (worst < 0) return 0;
  int closed = shutdown(worst, SHUT_RDWR) == 0;
  close(worst);
  return closed;
}
