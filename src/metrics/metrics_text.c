/* The Prometheus text format writer; see metrics_text.h. */
#include "metrics/metrics_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mtext_init(mtext *t) { memset(t, 0, sizeof *t); }

void mtext_free(mtext *t) {
  free(t->buf);
  memset(t, 0, sizeof *t);
}

static bool reserve(mtext *t, size_t extra) {
  if (t->oom) return false;
  if (t->len + extra + 1 <= t->cap) return true;
  size_t cap = t->cap ? t->cap : 16384;
  while (cap < t->len + extra + 1) cap *= 2;
  char *grown = realloc(t->buf, cap);
  if (!grown) {
    t->oom = true;
    return false;
  }
  t->buf = grown;
  t->cap = cap;
  return true;
}

void mtext_append(mtext *t, const char *s, size_t n) {
  if (!reserve(t, n)) return;
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

static void put(mtext *t, const char *s) { mtext_append(t, s, strlen(s)); }

/* HELP text escapes backslash and newline. */
static void put_help(mtext *t, const char *s) {
  for (; *s; s++) {
    if (*s == '\\') put(t, "\\\\");
    else if (*s == '\n') put(t, "\\n");
    else mtext_append(t, s, 1);
  }
}

/* Label values escape backslash, double quote and newline. */
static void put_label_value(mtext *t, const char *s) {
  for (; *s; s++) {
    if (*s == '\\') put(t, "\\\\");
    else if (*s == '"') put(t, "\\\"");
    else if (*s == '\n') put(t, "\\n");
    else mtext_append(t, s, 1);
  }
}

void mtext_family(mtext *t, const char *name, const char *type, const char *help) {
  put(t, "# HELP ");
  put(t, name);
  put(t, " ");
  put_help(t, help);
  put(t, "\n# TYPE ");
  put(t, name);
  put(t, " ");
  put(t, type);
  put(t, "\n");
}

static void put_series(mtext *t, const char *name, const mlabel *labels, size_t n) {
  put(t, name);
  if (n == 0) return;
  put(t, "{");
  for (size_t i = 0; i < n; i++) {
    if (i) put(t, ",");
    put(t, labels[i].key);
    put(t, "=\"");
    put_label_value(t, labels[i].value);
    put(t, "\"");
  }
  put(t, "}");
}

void mtext_sample_u64(mtext *t, const char *name, const mlabel *labels, size_t n, uint64_t v) {
  char num[32];
  snprintf(num, sizeof num, " %" PRIu64 "\n", v);
  put_series(t, name, labels, n);
  put(t, num);
}

void mtext_single_u64(mtext *t, const char *name, const char *type, const char *help,
                      uint64_t v) {
  mtext_family(t, name, type, help);
  mtext_sample_u64(t, name, NULL, 0, v);
}

void mtext_sample_f64(mtext *t, const char *name, const mlabel *labels, size_t n, double v) {
  char num[40];
  mtext_format_f64(num, sizeof num, v);
  put_series(t, name, labels, n);
  put(t, " ");
  put(t, num);
  put(t, "\n");
}

void mtext_format_f64(char *out, size_t outlen, double v) {
  if (isnan(v)) {
    snprintf(out, outlen, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  /* Like strconv.FormatFloat(v, 'g', -1, 64), which the Go client uses: the
   * fewest digits that read back exactly, in exponent form only when the
   * exponent is below -4 or at least 6. */
  char e[40];
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(e, sizeof e, "%.*e", prec - 1, v);
    if (strtod(e, NULL) == v) break;
  }
  if (prec > 17) prec = 17;
  const char *ep = strchr(e, 'e');
  int exp = ep ? (int)strtol(ep + 1, NULL, 10) : 0;
  if (exp < -4 || exp >= 6) {
    snprintf(out, outlen, "%s", e);
    return;
  }
  int decimals = prec - 1 - exp;
  snprintf(out, outlen, "%.*f", decimals > 0 ? decimals : 0, v);
}
