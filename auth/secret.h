#ifndef PRODUCT_AUTH_SECRET_H
#define PRODUCT_AUTH_SECRET_H
/* Loading the HS256 secret: from a file (trailing newline stripped) or from
 * a value. The buffer is wiped with OPENSSL_cleanse when freed. */
#include <stddef.h>

#define SECRET_MIN_LEN 32
#define SECRET_MAX_LEN 4096

typedef struct secret {
  unsigned char *bytes;
  size_t len;
} secret;

/* Reads path; non-zero with a one-line reason in err (never the content). */
int secret_load_file(const char *path, secret *out, char *err, size_t errlen);
int secret_from_value(const char *value, secret *out, char *err, size_t errlen);
/* Checks the minimum length. */
int secret_check(const secret *s, char *err, size_t errlen);
void secret_wipe(secret *s);

#endif
