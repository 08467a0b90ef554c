/* libFuzzer target for auth/bearer.c. The input is one authorization value;
 * it is also tried as "no entry" and "two entries". Invariants on success:
 * the scheme was Bearer (any case), and the token is a non-empty slice of
 * the value without whitespace or control bytes. Violations abort. */
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include "auth/bearer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *value = (const char *)data;
  const char *tok = NULL;
  size_t len = 0;

  if (bearer_parse(0, value, size, &tok, &len) != BEARER_MISSING || tok != NULL)
    abort();
  if (bearer_parse(2, value, size, &tok, &len) != BEARER_DUPLICATE || tok != NULL)
    abort();

  bearer_result r = bearer_parse(1, value, size, &tok, &len);
  if (r > BEARER_MALFORMED)
    abort();
  if (bearer_result_reason(r) == NULL)
    abort();
  if (r != BEARER_OK) {
    if (tok != NULL || len != 0)
      abort();
    return 0;
  }
  if (size < 8 || strncasecmp(value, "bearer", 6) != 0)
    abort();
  if (len == 0 || tok < value + 7 || tok + len != value + size)
    abort();
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)tok[i];
    if (c <= 0x20 || c >= 0x7f)
      abort();
  }
  return 0;
}
