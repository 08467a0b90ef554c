/* Structured log lines; see log.h.
 *
 * Lines are formatted into a caller-owned log_line and then appended whole to
 * a per-thread buffer. The buffer is written with one write(2) when it fills,
 * by the flusher thread at least every 50 ms, at exit (log_flush) and at once
 * for ERROR lines (faults), so a line is never split or interleaved and a crash
 * loses at most the last 50 ms of routine lines. Without the flusher running
 * (tools, tests) every line is written at once. */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUF_SIZE (32 * 1024)
#define LOG_FLUSH_INTERVAL_MS 50

typedef struct log_buf {
  pthread_mutex_t mu;
  size_t len;
  struct log_buf *next;
  char data[LOG_BUF_SIZE];
} log_buf;

static log_format g_format = LOG_FORMAT_JSON;
static atomic_bool g_buffered;
static pthread_mutex_t g_bufs_mu = PTHREAD_MUTEX_INITIALIZER;
static log_buf *g_bufs;
static _Thread_local log_buf *t_buf;

static pthread_t g_flusher;
static bool g_flusher_running;
static pthread_mutex_t g_flusher_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_flusher_cv = PTHREAD_COND_INITIALIZER;
static bool g_flusher_stop;

void log_set_format(log_format f) { g_format = f; }
log_format log_get_format(void) { return g_format; }

static void write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* nowhere left to report it */
    }
    p += w;
    n -= (size_t)w;
  }
}

/* ------------------------------------------------------------ building --- */

/* Room kept at the end of every line so that a cut line still closes: the
 * value's quote, ',"truncated":true', '}' and the newline. */
#define LOG_RESERVE 40

static size_t room(const log_line *l) {
  return l->len < LOG_LINE_MAX - LOG_RESERVE ? LOG_LINE_MAX - LOG_RESERVE - l->len : 0;
}

/* Appends all of s or nothing (an escape or a UTF-8 sequence is never cut). */
static bool put(log_line *l, const char *s, size_t n) {
  if (n > room(l)) {
    l->truncated = true;
    return false;
  }
  memcpy(l->buf + l->len, s, n);
  l->len += n;
  return true;
}

/* For closing characters only: may use the reserve. */
static void put_closing(log_line *l, char c) { l->buf[l->len++] = c; }

static void putc_(log_line *l, char c) { put(l, &c, 1); }

/* Length of a valid UTF-8 sequence at s (0 when invalid). */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

/* Escapes for JSON strings; text format uses the same escapes inside quotes,
 * so control characters from a client never reach the terminal raw. */
static void put_escaped(log_line *l, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\') run++;
    if (run > i) {
      size_t n = run - i;
      if (n > room(l)) n = room(l);
      put(l, s + i, n);
      if (n < run - i) {
        l->truncated = true;
        return;
      }
      i = run;
      continue;
    }
    if (l->truncated) return;
    unsigned char c = u[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      put(l, esc, 2);
      i++;
    } else if (c == '\n') {
      put(l, "\\n", 2);
      i++;
    } else if (c == '\t') {
      put(l, "\\t", 2);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(l, esc, 6);
      i++;
    } else {
      size_t len = utf8_len(u + i, n - i);
      if (len == 0) {
        put(l, "\\ufffd", 6); /* invalid UTF-8: never copied through */
        i++;
      } else if (len == 2 && c == 0xc2 && u[i + 1] < 0xa0) {
        /* C1 controls (U+0080..U+009F): U+009B is a terminal CSI. */
        char esc[6] = {'\\', 'u', '0', '0', hex[u[i + 1] >> 4], hex[u[i + 1] & 15]};
        put(l, esc, 6);
        i += 2;
      } else if (len == 3 && c == 0xe2 && u[i + 1] == 0x80 && (u[i + 2] == 0xa8 || u[i + 2] == 0xa9)) {
        put(l, u[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6); /* line separators */
        i += 3;
      } else {
        put(l, s + i, len);
        i += len;
      }
    }
  }
}

/* Writes the key and its separator; false (nothing written) when the line is
 * already cut or the key and an empty value would not fit. */
static bool put_key(log_line *l, const char *key) {
  size_t kn = strlen(key);
  if (l->truncated || kn + 6 > room(l)) {
    l->truncated = true;
    return false;
  }
  if (l->format == LOG_FORMAT_JSON) {
    put(l, ",\"", 2);
    put(l, key, kn);
    put(l, "\":", 2);
  } else {
    putc_(l, ' ');
    put(l, key, kn);
    putc_(l, '=');
  }
  return true;
}

/* RFC 3339 UTC with microseconds; the date part is cached per thread per second. */
static size_t format_time(char *out, size_t n) {
  static _Thread_local time_t cached_sec = -1;
  static _Thread_local char cached[32];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cached_sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_sec = ts.tv_sec;
  }
  int w = snprintf(out, n, "%s.%06ldZ", cached, (long)(ts.tv_nsec / 1000));
  return w > 0 && (size_t)w < n ? (size_t)w : 0;
}

static const char *level_name(log_level level) {
  switch (level) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "warn";
    default: return "error";
  }
}

void log_line_begin(log_line *l, log_level level, const char *msg) {
  char t[48];
  size_t tn = format_time(t, sizeof t);
  l->len = 0;
  l->truncated = false;
  l->format = g_format;
  l->level = level;
  if (l->format == LOG_FORMAT_JSON) {
    put(l, "{\"time\":\"", 9);
    put(l, t, tn);
    put(l, "\",\"level\":\"", 11);
    const char *ln = level_name(level);
    put(l, ln, strlen(ln));
    putc_(l, '"');
  } else {
    put(l, t, tn);
    putc_(l, ' ');
    const char *ln = level_name(level);
    put(l, ln, strlen(ln));
  }
  if (msg) log_line_str(l, "msg", msg);
}

void log_line_strn(log_line *l, const char *key, const char *val, size_t len) {
  if (!put_key(l, key)) return;
  putc_(l, '"');
  put_escaped(l, val ? val : "", val ? len : 0);
  put_closing(l, '"');
}

void log_line_str(log_line *l, const char *key, const char *val) {
  log_line_strn(l, key, val, val ? strlen(val) : 0);
}

/* Decimal digits of v, right-aligned ending at end; returns the start.
 * Hand-rolled: snprintf's float and integer paths cost more than the rest
 * of a log line (measured with perf on GetProduct). */
static char *format_u64(uint64_t v, char *end) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

void log_line_int(log_line *l, const char *key, int64_t val) {
  char num[24];
  char *end = num + sizeof num;
  uint64_t mag = val < 0 ? (uint64_t)0 - (uint64_t)val : (uint64_t)val;
  char *p = format_u64(mag, end);
  if (val < 0) *--p = '-';
  if (put_key(l, key)) put(l, p, (size_t)(end - p));
}

void log_line_fixed(log_line *l, const char *key, int64_t val, int decimals) {
  char num[32];
  char *end = num + sizeof num;
  uint64_t mag = val < 0 ? (uint64_t)0 - (uint64_t)val : (uint64_t)val;
  char *p = end;
  for (int i = 0; i < decimals; i++) {
    *--p = (char)('0' + mag % 10);
    mag /= 10;
  }
  if (decimals > 0) *--p = '.';
  p = format_u64(mag, p);
  if (val < 0) *--p = '-';
  if (put_key(l, key)) put(l, p, (size_t)(end - p));
}

void log_line_bool(log_line *l, const char *key, bool val) {
  if (put_key(l, key)) put(l, val ? "true" : "false", val ? 4 : 5);
}

/* ------------------------------------------------------------ emitting --- */

static log_buf *thread_buf(void) {
  if (t_buf) return t_buf;
  log_buf *b = malloc(sizeof(*b));
  if (!b) return NULL;
  pthread_mutex_init(&b->mu, NULL);
  b->len = 0;
  b->next = NULL;
  pthread_mutex_lock(&g_bufs_mu);
  log_buf **tail = &g_bufs; /* registration order: flushes stay roughly chronological */
  while (*tail) tail = &(*tail)->next;
  *tail = b;
  pthread_mutex_unlock(&g_bufs_mu);
  t_buf = b;
  return b;
}

static void buf_flush_locked(log_buf *b) {
  if (b->len) write_all(b->data, b->len);
  b->len = 0;
}

void log_line_emit(log_line *l) {
  if (l->truncated) {
    /* Still one valid object: say that fields were cut (fits the reserve). */
    static const char json_mark[] = ",\"truncated\":true", text_mark[] = " truncated=true";
    const char *m = l->format == LOG_FORMAT_JSON ? json_mark : text_mark;
    size_t mn = strlen(m);
    memcpy(l->buf + l->len, m, mn);
    l->len += mn;
  }
  if (l->format == LOG_FORMAT_JSON) put_closing(l, '}');
  put_closing(l, '\n');

  log_buf *b = atomic_load_explicit(&g_buffered, memory_order_relaxed) ? thread_buf() : NULL;
  if (!b) {
    write_all(l->buf, l->len);
    return;
  }
  bool urgent = l->level >= LOG_ERROR; /* faults reach the disk at once */
  pthread_mutex_lock(&b->mu);
  if (b->len + l->len > LOG_BUF_SIZE) buf_flush_locked(b);
  memcpy(b->data + b->len, l->buf, l->len);
  b->len += l->len;
  if (urgent) buf_flush_locked(b);
  pthread_mutex_unlock(&b->mu);
}

log_level log_level_for_code(rpc_code code) {
  switch (code) {
    case RPC_INTERNAL:
    case RPC_UNKNOWN:
    case RPC_DATA_LOSS:
      return LOG_ERROR;
    case RPC_PERMISSION_DENIED:
    case RPC_UNAVAILABLE:
      return LOG_WARN;
    default:
      return LOG_INFO;
  }
}

void log_msg(log_level level, const char *msg) {
  log_line l;
  log_line_begin(&l, level, msg);
  log_line_emit(&l);
}

void log_flush(void) {
  pthread_mutex_lock(&g_bufs_mu);
  for (log_buf *b = g_bufs; b; b = b->next) {
    pthread_mutex_lock(&b->mu);
    buf_flush_locked(b);
    pthread_mutex_unlock(&b->mu);
  }
  pthread_mutex_unlock(&g_bufs_mu);
}

static void *flusher_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_flusher_mu);
  while (!g_flusher_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += LOG_FLUSH_INTERVAL_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_flusher_cv, &g_flusher_mu, &until);
    pthread_mutex_unlock(&g_flusher_mu);
    log_flush();
    pthread_mutex_lock(&g_flusher_mu);
  }
  pthread_mutex_unlock(&g_flusher_mu);
  return NULL;
}

int log_start_buffering(void) {
  if (g_flusher_running) return 0;
  g_flusher_stop = false;
  if (pthread_create(&g_flusher, NULL, flusher_main, NULL) != 0) return -1;
  g_flusher_running = true;
  atomic_store(&g_buffered, true);
  return 0;
}

void log_stop_buffering(void) {
  if (!g_flusher_running) return;
  atomic_store(&g_buffered, false);
  pthread_mutex_lock(&g_flusher_mu);
  g_flusher_stop = true;
  pthread_cond_signal(&g_flusher_cv);
  pthread_mutex_unlock(&g_flusher_mu);
  pthread_join(g_flusher, NULL);
  g_flusher_running = false;
  log_flush();
  pthread_mutex_lock(&g_bufs_mu);
  log_buf *b = g_bufs;
  g_bufs = NULL;
  pthread_mutex_unlock(&g_bufs_mu);
  while (b) {
    log_buf *next = b->next;
    pthread_mutex_destroy(&b->mu);
    free(b);
    b = next;
  }
  t_buf = NULL;
}
