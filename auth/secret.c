/* Loading the HS256 secret. Messages name the file and the problem, never
 * a byte of the content; every buffer that held secret bytes is cleansed
 * before it is released. */
#include "auth/secret.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file_read.h"

/* Room for the largest secret, its "\r\n" and one byte to notice more. */
#define SECRET_READ_CAP (SECRET_MAX_LEN + 3)

/* "<path>: <what>" or "<path>: <what>: <strerror>". */
static void set_err(char *err, size_t errlen, const char *path, const char *what, int errnum) {
  if (err == NULL || errlen == 0)
    return;
  if (errnum == 0) {
    snprintf(err, errlen, "%s: %s", path, what);
    return;
  }
  char ebuf[128];
  snprintf(err, errlen, "%s: %s: %s", path, what, strerror_r(errnum, ebuf, sizeof(ebuf)));
}

/* Takes ownership of nothing: copies buf[0..len) into s. */
static int secret_store(secret *s, const unsigned char *buf, size_t len) {
  /* One extra byte so a zero-length secret still gets a valid buffer, and
   * the bytes are NUL-terminated for callers that need a C string. */
  unsigned char *copy = malloc(len + 1);
  if (copy == NULL)
    return -1;
  memcpy(copy, buf, len);
  copy[len] = '\0';
  s->bytes = copy;
  s->len = len;
  return 0;
}

int secret_load_file(const char *path, secret *out, char *err, size_t errlen) {
  int rc = -1;
  unsigned char buf[SECRET_READ_CAP + 1]; /* and the NUL file_read_head adds */
  size_t len = 0;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (out == NULL || path == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "no secret file given");
    return -1;
  }
  out->bytes = NULL;
  out->len = 0;

  /* core/file_read.h: regular files only (a FIFO or device could block or
   * never end), read until EOF or the cap, whatever the size said. */
  if (file_read_head(path, "JWT secret file", (char *)buf, sizeof(buf), &len, err, errlen) != 0)
    goto cleanup;
  /* Only the one trailing line end an editor or `echo` adds. */
  if (len > 0 && buf[len - 1] == '\n') {
    len--;
    if (len > 0 && buf[len - 1] == '\r')
      len--;
  }
  if (len > SECRET_MAX_LEN) {
    set_err(err, errlen, path, "larger than the maximum secret size (4096 bytes)", 0);
    goto cleanup;
  }
  if (secret_store(out, buf, len) != 0) {
    set_err(err, errlen, path, "out of memory", 0);
    goto cleanup;
  }
  rc = 0;
cleanup:
  OPENSSL_cleanse(buf, sizeof(buf));
  return rc;
}

int secret_from_value(const char *value, secret *out, char *err, size_t errlen) {
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (out == NULL || value == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "no secret given");
    return -1;
  }
  out->bytes = NULL;
  out->len = 0;
  size_t len = strnlen(value, SECRET_MAX_LEN + 1);
  if (len > SECRET_MAX_LEN) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "the secret is longer than %d bytes", SECRET_MAX_LEN);
    return -1;
  }
  if (secret_store(out, (const unsigned char *)value, len) != 0) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

int secret_check(const secret *s, char *err, size_t errlen) {
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (s == NULL || s->bytes == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "no secret");
    return -1;
  }
  if (s->len < SECRET_MIN_LEN) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "the secret is %zu bytes; at least %d are required", s->len,
               SECRET_MIN_LEN);
    return -1;
  }
  return 0;
}

void secret_wipe(secret *s) {
  if (s == NULL)
    return;
  if (s->bytes != NULL) {
    OPENSSL_cleanse(s->bytes, s->len + 1);
    free(s->bytes);
  }
  s->bytes = NULL;
  s->len = 0;
}
