/* UUID v4 (RFC 9562 section 5.4) from RAND_bytes. */
#include "core/uuid.h"

#include <openssl/rand.h>

int uuid_v4(char out[UUID_TEXT_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return -1;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC variant */
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
  return 0;
}
