#ifndef PRODUCT_CORE_FILE_WATCH_H
#define PRODUCT_CORE_FILE_WATCH_H
/* Noticing that files changed on disk, for reloads without a restart (TLS
 * certificates, signing keys, revocation lists). At most once per interval
 * it stat()s each path (stat, not lstat: a Kubernetes Secret volume swaps a
 * "..data" symlink, which changes the inode the path resolves to) and
 * compares device, inode, size, mtime and ctime, and whether stat failed,
 * with what it saw last time. Not thread-safe: the owner serialises calls. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct file_watch file_watch;

/* paths[0..n): NULL entries are allowed and never change. The files are
 * looked at now, and the first look of file_watch_changed is one interval
 * later. NULL on out of memory. */
file_watch *file_watch_create(const char *const *paths, size_t n, int64_t interval_ms);
void file_watch_destroy(file_watch *w);

/* True when the interval has passed since the last look (now_ns from
 * clock_mono_ns) and some file differs from the previous look. The new
 * signatures are remembered before the caller reads the files, so a write
 * during the read is seen at the next look. */
bool file_watch_changed(file_watch *w, int64_t now_ns);

/* Looks now, whatever the interval (tests, a forced reload). */
bool file_watch_look_now(file_watch *w);

/* Forgets what was seen: the next look reports a change (a reload that could
 * not finish, e.g. out of memory, is retried). */
void file_watch_rearm(file_watch *w);

/* Sets the interval; the next look is one interval from now. */
void file_watch_set_interval_ms(file_watch *w, int64_t interval_ms);

#endif
