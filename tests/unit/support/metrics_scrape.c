#include "support/metrics_scrape.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

char *scrape_render(const metrics *m) {
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(metrics_render(m, &text, &len), 0);
  assert_int_equal(strlen(text), len);
  return text;
}

double scrape_value(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p && *p;) {
    if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    p = strchr(p, '\n');
    if (p) p++;
  }
  fail_msg("series not found: %s", series);
  return -1;
}

bool scrape_has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; p && *p;) {
    if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) return true;
    p = strchr(p, '\n');
    if (p) p++;
  }
  return false;
}
