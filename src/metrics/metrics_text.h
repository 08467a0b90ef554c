#ifndef PRODUCT_METRICS_METRICS_TEXT_H
#define PRODUCT_METRICS_METRICS_TEXT_H
/* Writing the Prometheus text exposition format (0.0.4) into a growing
 * buffer: family headers, samples with escaped label values, numbers the
 * way the Go client prints them. Internal to src/metrics/. An allocation
 * failure sticks (t->oom) and every later write is a no-op, so writers
 * check once at the end. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mtext {
  char *buf; /* NUL-terminated while not oom */
  size_t len, cap;
  bool oom;
} mtext;

typedef struct mlabel {
  const char *key;
  const char *value;
} mlabel;

void mtext_init(mtext *t);
void mtext_free(mtext *t);
void mtext_append(mtext *t, const char *s, size_t n);

/* "# HELP name help\n# TYPE name type\n" */
void mtext_family(mtext *t, const char *name, const char *type, const char *help);
/* "name{k="v",...} value\n"; labels may be empty (n == 0). */
void mtext_sample_u64(mtext *t, const char *name, const mlabel *labels, size_t n, uint64_t v);
void mtext_sample_f64(mtext *t, const char *name, const mlabel *labels, size_t n, double v);
/* A family of one series without labels: the two above in one. */
void mtext_single_u64(mtext *t, const char *name, const char *type, const char *help, uint64_t v);

/* A double as the Go client prints it: the shortest text that reads back
 * the same ("0.005", "2.5", "10", "20000", "1.5e+09"), "+Inf", "-Inf",
 * "NaN". */
void mtext_format_f64(char *out, size_t outlen, double v);

/* Appends the process_* metrics read from /proc/self (metrics_process.c);
 * a file that cannot be read leaves its metrics out. */
void mtext_process_metrics(mtext *t);

#endif
