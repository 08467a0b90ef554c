#ifndef PRODUCT_TESTS_METRICS_SCRAPE_H
#define PRODUCT_TESTS_METRICS_SCRAPE_H
/* Reading a registry's text exposition in unit tests: the whole text, one
 * sample's value, whether a line is there. Failures are cmocka failures. */
#include <stdbool.h>

#include "metrics/metrics.h"

/* metrics_render's text (free() it); its length must match. */
char *scrape_render(const metrics *m);
/* The value of the sample line that starts with exactly `series` + ' ';
 * fails the test when there is none. */
double scrape_value(const char *text, const char *series);
/* Whether `line` is one whole line of text. */
bool scrape_has_line(const char *text, const char *line);

#endif
