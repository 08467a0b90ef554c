/* The /metrics endpoint on libmicrohttpd; see metrics_http.h.
 *
 * We bind the listening socket ourselves and hand it to MHD: that gives the
 * operator a precise reason when the address is taken, the bound port for
 * port 0, and no SO_REUSEPORT (a second server must not share the port). MHD
 * closes the socket in MHD_stop_daemon. Connections are limited in number and
 * time so a slow or idle client cannot pin the endpoint. */
#include "metrics/metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNECTIONS 32
#define CONNECTION_TIMEOUT_S 10

struct metrics_http {
  struct MHD_Daemon *daemon;
  metrics *m;
};

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text,
                                  const char *allow) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result ok = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  (void)upload_data;
  (void)con_cls;
  metrics_http *h = cls;
  /* A request body is never wanted: drop it (we answer before reading it). */
  *upload_data_size = 0;
  if (strcmp(url, "/metrics") != 0) return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
  bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
  if (!get && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");

  char *body;
  size_t len;
  if (metrics_render(h->m, &body, &len) != 0)
    return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
  enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ok;
}

/* A bound, listening, non-blocking socket for listen; -1 with err set. */
static int open_listener(const config_addr *addr, bool *v6, int *bound_port, char *err,
                         size_t errlen) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  char port[16];
  snprintf(port, sizeof port, "%d", addr->port);
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(addr->host[0] ? addr->host : NULL, port, &hints, &res);
  if (gai != 0 || !res) {
    snprintf(err, errlen, "cannot listen on %s for metrics: %s", addr->text, gai_strerror(gai));
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
    snprintf(err, errlen, "cannot listen on %s for metrics: %s", addr->text, strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return -1;
  }
  *v6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    snprintf(err, errlen, "cannot listen on %s for metrics: %s", addr->text, strerror(errno));
    close(fd);
    return -1;
  }
  *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

int metrics_http_start(metrics *m, const config_addr *addr, metrics_http **out, int *bound_port,
                       char *err, size_t errlen) {
  *out = NULL;
  metrics_http *h = calloc(1, sizeof(*h));
  if (!h) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  h->m = m;
  bool v6 = false;
  int fd = open_listener(addr, &v6, bound_port, err, errlen);
  if (fd < 0) {
    free(h);
    return -1;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
  if (v6) flags |= MHD_USE_IPv6;
  h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                               MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                               MHD_OPTION_END);
  if (!h->daemon) {
    snprintf(err, errlen, "cannot start the metrics HTTP server on %s", addr->text);
    close(fd);
    free(h);
    return -1;
  }
  *out = h;
  return 0;
}

void metrics_http_stop(metrics_http *h) {
  if (!h) return;
  MHD_stop_daemon(h->daemon); /* joins the thread, closes the listening socket */
  free(h);
}
