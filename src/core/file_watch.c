/* See file_watch.h. */
#include "core/file_watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/call.h"

/* What stat() said about a file; equal signatures mean "unchanged". */
typedef struct file_sig {
  int err; /* errno of a failed stat, else 0 */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
} file_sig;

struct file_watch {
  size_t n;
  char **path;
  file_sig *sig; /* the files as last looked at */
  int64_t interval_ns;
  int64_t next_check_ns;
};

static void take_sig(const char *path, file_sig *s) {
  memset(s, 0, sizeof *s);
  if (!path) return;
  struct stat st;
  if (stat(path, &st) != 0) {
    s->err = errno ? errno : EIO;
    return;
  }
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  s->size = st.st_size;
  s->mtime = st.st_mtim;
  s->ctime = st.st_ctim;
}

static bool sig_equal(const file_sig *a, const file_sig *b) {
  return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

void file_watch_destroy(file_watch *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n; i++) free(w->path[i]);
  free(w->path);
  free(w->sig);
  free(w);
}

file_watch *file_watch_create(const char *const *paths, size_t n, int64_t interval_ms) {
  file_watch *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->n = n;
  w->path = calloc(n ? n : 1, sizeof *w->path);
  w->sig = calloc(n ? n : 1, sizeof *w->sig);
  if (!w->path || !w->sig) goto fail;
  for (size_t i = 0; i < n; i++) {
    if (paths[i] && !(w->path[i] = strdup(paths[i]))) goto fail;
    take_sig(w->path[i], &w->sig[i]);
  }
  file_watch_set_interval_ms(w, interval_ms);
  return w;
fail:
  file_watch_destroy(w);
  return NULL;
}

bool file_watch_changed(file_watch *w, int64_t now_ns) {
  if (now_ns < w->next_check_ns) return false;
  w->next_check_ns = now_ns + w->interval_ns;
  return file_watch_look_now(w);
}

bool file_watch_look_now(file_watch *w) {
  bool changed = false;
  for (size_t i = 0; i < w->n; i++) {
    file_sig s;
    take_sig(w->path[i], &s);
    if (!sig_equal(&s, &w->sig[i])) {
      w->sig[i] = s;
      changed = true;
    }
  }
  return changed;
}

void file_watch_rearm(file_watch *w) {
  /* No real stat result has every field zero and err 0 with ino 0. */
  memset(w->sig, 0, w->n * sizeof *w->sig);
  for (size_t i = 0; i < w->n; i++) w->sig[i].err = -1;
}

void file_watch_set_interval_ms(file_watch *w, int64_t interval_ms) {
  w->interval_ns = interval_ms * 1000000;
  w->next_check_ns = clock_mono_ns() + w->interval_ns;
}
