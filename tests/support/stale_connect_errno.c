/* Test-only LD_PRELOAD shim: makes a process's first TCP connects fail the
 * way libgrpc 1.51.1's stale errno makes them fail (issue: the core calls
 * connect(), then takes absl mutexes, and only then reads errno; abseil's
 * first contended-mutex probe leaves ENOENT there, so a connect that was in
 * progress counts as failed with "No such file or directory").
 *
 * The real connect() runs (the SYN is sent, as in the bug); when it is in
 * progress (-1, EINPROGRESS: a non-blocking TCP socket, which is what the
 * core uses) and the budget is not spent, the caller sees -1 with
 * errno = ENOENT instead: exactly what the core then reads.
 *
 *   STALE_CONNECT_ERRNO_COUNT=N  the first N in-progress connects fail (default 0)
 *   STALE_CONNECT_ERRNO_PORT=P   only connects to port P are seen (counted,
 *                                logged, failed); others pass untouched, such
 *                                as the server's own start-up probe of its
 *                                port when the etcd channel is the target
 *   STALE_CONNECT_ERRNO_LOG=PATH one line per event, appended:
 *                                "loaded pid=P" at start (proof the shim is in
 *                                the path), "connect pid=P" for every TCP
 *                                connect, "enoent pid=P" for every injected one.
 *
 * Built only with the tests (tests/CMakeLists.txt), never linked into a
 * program: a process opts in through LD_PRELOAD. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

static connect_fn real_connect;
static long budget;
static long only_port; /* 0: every port */
static atomic_long injected;
static const char *log_path;

/* One write per line (O_APPEND): lines of processes sharing the file do not mix. */
static void log_event(const char *what) {
  if (!log_path)
    return;
  int saved = errno;
  char line[64];
  int n = snprintf(line, sizeof line, "%s pid=%ld\n", what, (long)getpid());
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    if (n > 0 && write(fd, line, (size_t)n) != n) {
      /* a short log line makes the test's count wrong, which it reports */
    }
    close(fd);
  }
  errno = saved;
}

__attribute__((constructor)) static void shim_init(void) {
  real_connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
  const char *n = getenv("STALE_CONNECT_ERRNO_COUNT");
  budget = n ? strtol(n, NULL, 10) : 0;
  log_path = getenv("STALE_CONNECT_ERRNO_LOG");
  const char *p = getenv("STALE_CONNECT_ERRNO_PORT");
  only_port = p ? strtol(p, NULL, 10) : 0;
  if (!real_connect) {
    /* Say so loudly: a test that relies on the shim must not pass without it. */
    fprintf(stderr, "stale_connect_errno: no real connect() found: %s\n", dlerror());
    return;
  }
  log_event("loaded");
}

static long port_of(const struct sockaddr *addr) {
  if (addr->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)(const void *)addr)->sin_port);
  return ntohs(((const struct sockaddr_in6 *)(const void *)addr)->sin6_port);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  if (!real_connect) {
    errno = ENOSYS;
    return -1;
  }
  bool tcp = addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
  int rc = real_connect(fd, addr, len);
  if (!tcp || (only_port && port_of(addr) != only_port))
    return rc;
  int err = errno;
  log_event("connect");
  if (rc == 0 || err != EINPROGRESS || atomic_fetch_add(&injected, 1) >= budget) {
    errno = err;
    return rc;
  }
  log_event("enoent");
  errno = ENOENT;
  return -1;
}
