/* See grpc_log.h. The function runs on any thread, core threads included. */
#include "transport/grpc_log.h"

#include <grpc/support/log.h>
#include <stdatomic.h>
#include <string.h>

#include "core/log.h"

static atomic_bool quiet;

void grpc_log_set_quiet(bool q) { atomic_store(&quiet, q); }

static void forward(gpr_log_func_args *args) {
  if (atomic_load(&quiet)) return;
  log_level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LOG_ERROR
                    : args->severity == GPR_LOG_SEVERITY_INFO ? LOG_INFO
                                                              : LOG_DEBUG;
  /* A failed handshake is the client's problem, not an outage. */
  if (level == LOG_ERROR && args->message &&
      (strstr(args->message, "Handshake failed") || strstr(args->message, "handshake") ||
       strstr(args->message, "SSL_ERROR") || strstr(args->message, "certificate")))
    level = LOG_WARN;
  log_line l;
  log_line_begin(&l, level, NULL);
  log_line_str(&l, "source", "grpc");
  log_line_str(&l, "msg", args->message ? args->message : "");
  const char *file = args->file ? strrchr(args->file, '/') : NULL;
  log_line_str(&l, "file", file ? file + 1 : (args->file ? args->file : ""));
  log_line_int(&l, "line", args->line);
  log_line_emit(&l);
}

void grpc_log_install(void) { gpr_set_log_function(forward); }
