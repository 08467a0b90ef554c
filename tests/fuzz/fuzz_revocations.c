/* libFuzzer target for auth/revocations.c. The input is a revocation list.
 * Invariants: a refusal leaves no list and names a line ("line N: ...");
 * an accepted list revokes by jti exactly the values of its jti lines, and
 * lookups of anything never crash. Violations abort. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/revocations.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  revocations *r = (revocations *)1;
  char err[256];
  err[0] = '\0';
  const char *text = (const char *)data;
  if (revocations_parse(text, size, &r, err, sizeof err) != 0) {
    if (r != NULL || (strncmp(err, "line ", 5) != 0 && strcmp(err, "out of memory") != 0))
      abort();
    return 0;
  }
  /* Every "jti VALUE" line that parsed must revoke VALUE. */
  size_t pos = 0;
  while (pos < size) {
    const char *nl = memchr(text + pos, '\n', size - pos);
    size_t end = nl ? (size_t)(nl - text) : size;
    char line[64];
    size_t len = end - pos;
    if (len < sizeof line) {
      memcpy(line, text + pos, len);
      line[len] = '\0';
      char v[64];
      char rest;
      if (sscanf(line, "jti %63s %c", v, &rest) == 1 && line[3] == ' ' && v[0] != '#' &&
          strchr(v, '\r') == NULL && !revocations_match(r, v, NULL, false, 0))
        abort();
    }
    pos = end + 1;
  }
  char probe[32];
  size_t n = size < sizeof probe - 1 ? size : sizeof probe - 1;
  memcpy(probe, data, n);
  probe[n] = '\0';
  (void)revocations_match(r, probe, probe, size % 2 == 0, (int64_t)size);
  revocations_destroy(r);
  return 0;
}
