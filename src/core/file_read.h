#ifndef PRODUCT_CORE_FILE_READ_H
#define PRODUCT_CORE_FILE_READ_H
/* The process's one file reader. A whole small file that may hold secrets
 * (a TLS key, a key set, a revocation list): regular files only, a size
 * cap, and every buffer dropped on the way is wiped. Or the head of a
 * kernel file (/proc, /sys) into a caller's buffer, on the same path. */
#include <stddef.h>

/* On success *out is a NUL-terminated copy of the file (*len bytes, the NUL
 * not counted) for file_read_free. Otherwise non-zero with one line in err,
 * "cannot read <what> <path>: <why>" or "<what> <path> is larger than ...",
 * never the content. */
int file_read_all(const char *path, const char *what, size_t max, char **out, size_t *len,
                  char *err, size_t errlen);
/* Wipes and frees what file_read_all returned. */
void file_read_free(char *buf, size_t len);

/* Reads the first cap - 1 bytes at most of a regular file into buf,
 * NUL-terminated (*len, may be NULL, excludes the NUL): what a /proc or
 * /sys file says in its first lines, or a secret whose size the caller
 * checks. Non-zero with one line in err (may be NULL), as file_read_all
 * writes it, when the file cannot be read. */
int file_read_head(const char *path, const char *what, char *buf, size_t cap, size_t *len,
                   char *err, size_t errlen);

#endif
