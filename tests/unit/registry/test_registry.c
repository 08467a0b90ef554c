/* Tests for registry/registry.c and registry/etcd.c without an etcd (the
 * integration test test_etcd.py has a real one): the backoff sequence, bad
 * options, a stop that comes while etcd cannot be reached (prompt, nothing
 * leaked), etcd calls to a port that refuses connections, and cancelling
 * calls from another thread. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/rpc_status.h"
#include "registry/etcd.h"
#include "registry/registry.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A loopback port with nothing listening (bound, then closed). */
static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* A listener that accepts TCP but never speaks HTTP/2; *port gets its port. */
static int silent_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 8), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void test_backoff_doubles_from_min_and_stops_at_max(void **state) {
  (void)state;
  int64_t b = 0;
  const int64_t want[] = {500, 1000, 2000, 4000, 5000, 5000};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    b = registry_next_backoff(b, 500, 5000);
    assert_int_equal(b, want[i]);
  }
  /* A cap that is not a power-of-two multiple is still reached exactly. */
  assert_int_equal(registry_next_backoff(3000, 500, 5000), 5000);
  assert_int_equal(registry_next_backoff(INT64_MAX / 2 + 1, 500, INT64_MAX), INT64_MAX);
}

static void test_start_refuses_missing_endpoint_or_address(void **state) {
  (void)state;
  char err[200];
  registry *r = NULL;
  const char *eps[] = {"http://127.0.0.1:1"};
  registry_options no_eps = {.endpoints = eps, .n_endpoints = 0, .advertise = "h:1"};
  assert_int_not_equal(registry_start(&no_eps, &r, err, sizeof err), 0);
  assert_null(r);
  assert_true(strlen(err) > 0);
  registry_options no_addr = {.endpoints = eps, .n_endpoints = 1, .advertise = ""};
  assert_int_not_equal(registry_start(&no_addr, &r, err, sizeof err), 0);
  assert_null(r);
  registry_stop(NULL); /* a no-op */
}

/* The thread's backoff pauses, as its pause hook reports them. */
typedef struct pauses {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n;
  int64_t last_ms;
} pauses;

static void on_pause(void *arg, int64_t ms) {
  pauses *p = arg;
  pthread_mutex_lock(&p->mu);
  p->n++;
  p->last_ms = ms;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* etcd refuses connections: the first attempt fails and the thread goes into
 * a 60 s backoff. The pause hook says when it has got there (no sleep
 * hoping to land in it), and stop, called then, interrupts the backoff: it
 * returns long before the backoff could end, and no second attempt was made
 * (one pause only). The bound is half the backoff, not a guess at the
 * machine's speed (that the call in flight is cancelled at once is shown
 * with a deterministic status below,
 * test_interrupt_cancels_the_call_in_flight_until_resume). */
static void test_stop_during_the_backoff_interrupts_it(void **state) {
  (void)state;
  char ep[64], err[200];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", closed_port());
  const char *eps[] = {ep};
  pauses p = {.n = 0};
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  registry_options o = {.endpoints = eps, .n_endpoints = 1, .advertise = "127.0.0.1:50051",
                        .backoff_min_ms = 60000, .backoff_max_ms = 60000,
                        .on_pause = on_pause, .on_pause_arg = &p};
  registry *r = NULL;
  assert_int_equal(registry_start(&o, &r, err, sizeof err), 0);
  assert_non_null(r);
  /* Until the thread is about to pause (a hang guard of 120 s: the attempt
   * itself is bounded by its 2 s call timeout). */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 120;
  pthread_mutex_lock(&p.mu);
  while (p.n == 0)
    if (pthread_cond_timedwait(&p.cv, &p.mu, &until) != 0)
      break;
  int before = p.n;
  pthread_mutex_unlock(&p.mu);
  if (before != 1)
    fail_msg("the registration thread never reached its backoff (%d pauses)", before);
  int64_t t0 = now_ms();
  registry_stop(r);
  int64_t took = now_ms() - t0;
  assert_int_equal(p.n, 1); /* stopped inside that backoff: no second attempt */
  assert_int_equal(p.last_ms, 60000);
  if (took >= 30000)
    fail_msg("stop waited %lld ms: the backoff was not interrupted", (long long)took);
  pthread_cond_destroy(&p.cv);
  pthread_mutex_destroy(&p.mu);
}

/* Two endpoints, both dead, and an IPv6 advertise address: a clean stop. */
static void test_stop_with_two_dead_endpoints_is_clean(void **state) {
  (void)state;
  char a[64], b[64], err[200];
  snprintf(a, sizeof a, "http://127.0.0.1:%d", closed_port());
  snprintf(b, sizeof b, "127.0.0.1:%d", closed_port());
  const char *eps[] = {a, b};
  registry_options o = {.endpoints = eps, .n_endpoints = 2, .advertise = "[::1]:50051",
                        .backoff_min_ms = 20, .backoff_max_ms = 40};
  registry *r = NULL;
  assert_int_equal(registry_start(&o, &r, err, sizeof err), 0);
  usleep(300 * 1000);
  registry_stop(r);
}

static void test_etcd_calls_to_a_closed_port_are_unavailable(void **state) {
  (void)state;
  char ep[64], err[300];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", closed_port());
  etcd_client_options o = {.endpoint = ep, .wait_for_ready = false};
  etcd_client *e = NULL;
  assert_int_equal(etcd_client_create(&o, &e, err, sizeof err), 0);
  assert_string_equal(etcd_client_endpoint(e), ep);

  int64_t id = 0, ttl = 0;
  assert_int_equal(etcd_lease_grant(e, 10, 2000, &id, &ttl, err, sizeof err), RPC_UNAVAILABLE);
  assert_non_null(strstr(err, "LeaseGrant"));
  assert_int_equal(etcd_put(e, "/k", "v", 0, 2000, err, sizeof err), RPC_UNAVAILABLE);
  assert_int_equal(etcd_lease_revoke(e, 1, 2000, err, sizeof err), RPC_UNAVAILABLE);
  etcd_kv *kvs = NULL;
  size_t n = 7;
  assert_int_equal(etcd_range_prefix(e, "/services/", 0, 2000, &kvs, &n, err, sizeof err),
                   RPC_UNAVAILABLE);
  assert_null(kvs);
  assert_int_equal(n, 0);

  /* The keep-alive stream ends (it does not hang) and reports why. */
  etcd_keepalive *k = NULL;
  assert_int_equal(etcd_keepalive_open(e, &k, err, sizeof err), 0);
  etcd_keepalive_send(k, 1, 2000); /* may fail already: the stream is dead */
  int64_t got = 0;
  assert_int_equal(etcd_keepalive_recv(k, 5000, &got), ETCD_KEEPALIVE_ENDED);
  etcd_keepalive_close(k, err, sizeof err);
  assert_non_null(strstr(err, "UNAVAILABLE"));
  etcd_client_destroy(e);
}

/* A stream cancelled while its receive waits ends at once. */
static void test_keepalive_cancel_ends_a_waiting_receive(void **state) {
  (void)state;
  int port;
  int fd = silent_listener(&port); /* the call hangs */
  char ep[64], err[300];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);

  etcd_client_options o = {.endpoint = ep, .wait_for_ready = true};
  etcd_client *e = NULL;
  assert_int_equal(etcd_client_create(&o, &e, err, sizeof err), 0);
  etcd_keepalive *k = NULL;
  assert_int_equal(etcd_keepalive_open(e, &k, err, sizeof err), 0);
  int64_t ttl = 0;
  assert_int_equal(etcd_keepalive_recv(k, 200, &ttl), ETCD_KEEPALIVE_TIMEOUT);
  etcd_keepalive_cancel(k);
  /* ENDED, not TIMEOUT: the cancel ended the wait, not the clock. */
  assert_int_equal(etcd_keepalive_recv(k, 60000, &ttl), ETCD_KEEPALIVE_ENDED);
  etcd_keepalive_close(k, err, sizeof err);
  assert_non_null(strstr(err, "CANCELLED"));
  etcd_client_destroy(e);
  close(fd);
}

typedef struct interrupter {
  etcd_client *e;
  int delay_ms;
} interrupter;

static void *interrupt_later(void *arg) {
  interrupter *in = arg;
  usleep((useconds_t)in->delay_ms * 1000);
  etcd_client_interrupt(in->e);
  return NULL;
}

/* Another thread's interrupt ends a call that would wait 60 s, fails later
 * calls at once, and resume lets calls wait again. The statuses tell which
 * ended them: CANCELLED is the interrupt, DEADLINE_EXCEEDED would be the
 * clock (60 s, far beyond any machine's delay). */
static void test_interrupt_cancels_the_call_in_flight_until_resume(void **state) {
  (void)state;
  int port;
  int fd = silent_listener(&port);
  char ep[64], err[300];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
  etcd_client_options o = {.endpoint = ep, .wait_for_ready = true};
  etcd_client *e = NULL;
  assert_int_equal(etcd_client_create(&o, &e, err, sizeof err), 0);

  interrupter in = {.e = e, .delay_ms = 200};
  pthread_t t;
  int64_t id = 0, ttl = 0, t0 = now_ms(); /* before the thread: its delay counts from here */
  assert_int_equal(pthread_create(&t, NULL, interrupt_later, &in), 0);
  assert_int_equal(etcd_lease_grant(e, 10, 60000, &id, &ttl, err, sizeof err), RPC_CANCELLED);
  int64_t took = now_ms() - t0;
  pthread_join(t, NULL);
  assert_true(took >= 200); /* it waited until the interrupt */

  assert_int_equal(etcd_put(e, "/k", "v", 0, 60000, err, sizeof err), RPC_CANCELLED);
  etcd_keepalive *k = NULL;
  assert_int_equal(etcd_keepalive_open(e, &k, err, sizeof err), RPC_CANCELLED);
  assert_null(k);

  etcd_client_resume(e);
  assert_int_equal(etcd_lease_revoke(e, 1, 300, err, sizeof err), RPC_DEADLINE_EXCEEDED);
  etcd_client_destroy(e);
  close(fd);
}

static void test_client_refuses_an_empty_endpoint(void **state) {
  (void)state;
  char err[200];
  etcd_client *e = NULL;
  etcd_client_options o = {.endpoint = ""};
  assert_int_not_equal(etcd_client_create(&o, &e, err, sizeof err), 0);
  assert_null(e);
  etcd_client_options slash = {.endpoint = "http:///x"};
  assert_int_not_equal(etcd_client_create(&slash, &e, err, sizeof err), 0);
  assert_null(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backoff_doubles_from_min_and_stops_at_max),
      cmocka_unit_test(test_start_refuses_missing_endpoint_or_address),
      cmocka_unit_test(test_stop_during_the_backoff_interrupts_it),
      cmocka_unit_test(test_stop_with_two_dead_endpoints_is_clean),
      cmocka_unit_test(test_etcd_calls_to_a_closed_port_are_unavailable),
      cmocka_unit_test(test_keepalive_cancel_ends_a_waiting_receive),
      cmocka_unit_test(test_interrupt_cancels_the_call_in_flight_until_resume),
      cmocka_unit_test(test_client_refuses_an_empty_endpoint),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
