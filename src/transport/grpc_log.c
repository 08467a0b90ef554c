/* See grpc_log.h. The function runs on any thread, core threads included. */
#include "transport/grpc_log.h"

#include <grpc/support/log.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

/* The core's ERROR lines a second at most, in each of two budgets (below):
 * clients can make it write one
 * per call (a compressed request, a malformed header), each written at
 * once. The rest are counted and the next line says how many were not
 * logged. Other severities only appear with GRPC_VERBOSITY raised by the
 * operator, who then wants them all. */
#define ERROR_LINES_PER_S 10
#define NS_PER_S 1000000000LL

static atomic_bool quiet;
static pthread_mutex_t g_rate_mu = PTHREAD_MUTEX_INITIALIZER;

/* One budget of lines a second: the client's doing (a failed handshake, a
 * compressed request) and everything else apart, so that a client cannot
 * crowd out the lines about the server itself. */
typedef struct line_budget {
  int64_t window_start;
  unsigned in_window;
  uint64_t unlogged;
} line_budget;
static line_budget g_budget[2];

/* True when a line of budget b may be written now; *unlogged: how many
 * were dropped before it. The clock is read under the lock, so windows
 * only move forward. */
static bool line_allowed(line_budget *b, uint64_t *unlogged) {
  pthread_mutex_lock(&g_rate_mu);
  int64_t now = clock_mono_ns();
  if (b->in_window == 0 || now - b->window_start >= NS_PER_S) {
    b->window_start = now;
    b->in_window = 0;
  }
  bool ok = b->in_window < ERROR_LINES_PER_S;
  if (ok) {
    b->in_window++;
    *unlogged = b->unlogged;
    b->unlogged = 0;
  } else {
    b->unlogged++;
  }
  pthread_mutex_unlock(&g_rate_mu);
  return ok;
}

void grpc_log_set_quiet(bool q) { atomic_store(&quiet, q); }

static void forward(gpr_log_func_args *args) {
  if (atomic_load(&quiet)) return;
  log_level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LOG_ERROR
                    : args->severity == GPR_LOG_SEVERITY_INFO ? LOG_INFO
                                                              : LOG_DEBUG;
  /* A failed handshake or a compressed request is the client's problem,
   * not an outage. */
  bool clients = level == LOG_ERROR && args->message &&
                 (strstr(args->message, "Handshake failed") || strstr(args->message, "handshake") ||
                  strstr(args->message, "SSL_ERROR") || strstr(args->message, "certificate") ||
                  strstr(args->message, "Compression algorithm"));
  uint64_t unlogged = 0;
  if (level == LOG_ERROR && !line_allowed(&g_budget[clients], &unlogged)) return;
  if (clients) level = LOG_WARN;
  log_line l;
  log_line_begin(&l, level, NULL);
  log_line_str(&l, "source", "grpc");
  log_line_str(&l, "msg", args->message ? args->message : "");
  const char *file = args->file ? strrchr(args->file, '/') : NULL;
  log_line_str(&l, "file", file ? file + 1 : (args->file ? args->file : ""));
  log_line_int(&l, "line", args->line);
  if (unlogged) log_line_int(&l, "unlogged_before", (int64_t)unlogged);
  log_line_emit(&l);
}

void grpc_log_install(void) { gpr_set_log_function(forward); }
