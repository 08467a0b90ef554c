/* See file_read.h. */
#include "core/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void file_read_free(char *buf, size_t len) {
  if (!buf) return;
  OPENSSL_cleanse(buf, len + 1);
  free(buf);
}

/* Opens a regular file for reading; -1 with one line in err otherwise. */
static int open_regular(const char *path, const char *what, char *err, size_t errlen) {
  char eb[128];
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    if (err) snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror_r(errno, eb, sizeof eb));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    if (err) snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror_r(errno, eb, sizeof eb));
    close(fd);
    return -1;
  }
  /* A FIFO or device could block or never end; a directory is a mistake. */
  if (!S_ISREG(st.st_mode)) {
    if (err)
      snprintf(err, errlen, "cannot read %s %s: %s", what, path,
               S_ISDIR(st.st_mode) ? "it is a directory, not a regular file" : "not a regular file");
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads until EOF or cap bytes; the count, or -1 with one line in err. */
static ssize_t read_up_to(int fd, char *buf, size_t cap, const char *path, const char *what,
                          char *err, size_t errlen) {
  char eb[128];
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      if (err) snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror_r(errno, eb, sizeof eb));
      return -1;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  return (ssize_t)n;
}

int file_read_head(const char *path, const char *what, char *buf, size_t cap, size_t *len,
                   char *err, size_t errlen) {
  if (len) *len = 0;
  if (cap == 0) return -1;
  buf[0] = '\0';
  int fd = open_regular(path, what, err, errlen);
  if (fd < 0) return -1;
  ssize_t n = read_up_to(fd, buf, cap - 1, path, what, err, errlen);
  close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  if (len) *len = (size_t)n;
  return 0;
}

int file_read_all(const char *path, const char *what, size_t max, char **out, size_t *len,
                  char *err, size_t errlen) {
  char *buf = NULL;
  size_t cap = 0, n = 0;
  *out = NULL;
  *len = 0;
  int fd = open_regular(path, what, err, errlen);
  if (fd < 0) return -1;
  /* One byte more than the cap, to notice a file that is too large even if
   * it grew after fstat. */
  cap = max + 2;
  if (!(buf = malloc(cap))) {
    snprintf(err, errlen, "out of memory reading %s %s", what, path);
    goto fail;
  }
  ssize_t got = read_up_to(fd, buf, cap - 1, path, what, err, errlen);
  if (got < 0) goto fail;
  n = (size_t)got;
  if (n > max) {
    if (max % (1u << 20) == 0)
      snprintf(err, errlen, "%s %s is larger than %zu MiB", what, path, max >> 20);
    else
      snprintf(err, errlen, "%s %s is larger than %zu bytes", what, path, max);
    goto fail;
  }
  close(fd);
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
fail:
  close(fd);
  if (buf) {
    OPENSSL_cleanse(buf, cap);
    free(buf);
  }
  return -1;
}
