#ifndef PRODUCT_CORE_LOG_H
#define PRODUCT_CORE_LOG_H
/* Structured log lines on stderr. A line is built in a caller-owned buffer and
 * handed to the sink whole, so it is never split across writes nor interleaved
 * with another thread's line. Values are escaped (control characters, quotes,
 * invalid UTF-8) so a client cannot forge lines. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rpc_status.h"

typedef enum log_format { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT = 1 } log_format;
typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

#define LOG_LINE_MAX 4096

typedef struct log_line {
  char buf[LOG_LINE_MAX];
  size_t len;
  bool truncated;
  log_format format;
  log_level level;
} log_line;

/* Sets the process-wide format; call once before any thread logs. */
void log_set_format(log_format f);
log_format log_get_format(void);

/* Starts a line: time, level and (when msg is not NULL) msg. */
void log_line_begin(log_line *l, log_level level, const char *msg);
void log_line_str(log_line *l, const char *key, const char *val);
void log_line_strn(log_line *l, const char *key, const char *val, size_t len);
void log_line_int(log_line *l, const char *key, int64_t val);
/* val / 10^decimals printed exactly, e.g. (1234, 3) -> 1.234: the cheap way to
 * print a duration kept as an integer. */
void log_line_fixed(log_line *l, const char *key, int64_t val, int decimals);
void log_line_bool(log_line *l, const char *key, bool val);
/* Finishes the line and writes it to stderr in one piece. */
void log_line_emit(log_line *l);

/* The level of a call's line: OK and client errors info, PERMISSION_DENIED
 * and UNAVAILABLE warn, INTERNAL/UNKNOWN/DATA_LOSS error. Every call line,
 * whichever module writes it, uses this one rule. */
log_level log_level_for_code(rpc_code code);

/* Shorthand for a line with a message and no fields. */
void log_msg(log_level level, const char *msg);

/* Flushes any buffered lines (at exit, after a fault). */
void log_flush(void);

/* Per-thread buffering with a flusher thread (the server). Stop flushes,
 * joins the flusher and frees every buffer: call it after all other threads
 * that log have stopped. Tools never start it and write each line at once. */
int log_start_buffering(void);
void log_stop_buffering(void);

#endif
