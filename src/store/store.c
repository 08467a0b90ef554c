/* STORE spec parsing and dispatch, spec redaction, and product_copy(); see
 * store.h. A spec names one backend: "memory", "sqlite:PATH" or a PostgreSQL
 * URI. Checking a spec never touches the disk or the network, so the config
 * module can reject a bad flag before anything starts. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_backends.h"

/* Hook for the PostgreSQL backend. src/store/store_postgres.c defines
 * store_postgres_open(); CMake compiles it only when libpq is found, and then
 * defines PRODUCT_HAVE_POSTGRES. The backend is wired in when both hold: the
 * file exists next to this one and libpq is there. (After adding the file to
 * an existing build tree, rebuild this file too: make cannot see that a file
 * which did not exist is now there.) */
#if defined(PRODUCT_HAVE_POSTGRES) && defined(__has_include)
#if __has_include("store_postgres.c")
#define STORE_WITH_POSTGRES 1
#endif
#endif
#ifndef STORE_WITH_POSTGRES
#define STORE_WITH_POSTGRES 0
#endif

#ifdef PRODUCT_HAVE_POSTGRES
#include <libpq-fe.h>
#endif

#define STORE_REDACTED "<redacted>"

typedef enum spec_kind { SPEC_MEMORY, SPEC_SQLITE, SPEC_POSTGRES } spec_kind;

static void set_err(char *err, size_t errlen, const char *msg, const char *spec) {
  if (!err || errlen == 0) return;
  if (!spec) {
    snprintf(err, errlen, "%s", msg);
    return;
  }
  /* Redacted, then control bytes escaped: the message stays one line. */
  char redacted[512], safe[1024];
  store_spec_redact(spec, redacted, sizeof(redacted));
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)redacted; *p && o + 5 < sizeof(safe); p++) {
    if (*p < 0x20 || *p == 0x7f)
      o += (size_t)snprintf(safe + o, sizeof(safe) - o, "\\x%02x", *p);
    else
      safe[o++] = (char)*p;
  }
  safe[o] = '\0';
  snprintf(err, errlen, "%s: '%s'", msg, safe);
}

/* Appends src[0..n) to out at *pos, truncating silently (out stays a string). */
static void put(char *out, size_t outlen, size_t *pos, const char *src, size_t n) {
  if (*pos + 1 >= outlen) return;
  size_t room = outlen - 1 - *pos;
  if (n > room) n = room;
  memcpy(out + *pos, src, n);
  *pos += n;
  out[*pos] = '\0';
}

/* Over-redacts on purpose. URI user info: from the first ':' after "://" to
 * the LAST '@' in the string (libpq takes '/', '?', '#' and '@' before the
 * host as part of a password). And every password=VALUE word, as a URI query
 * parameter or a key/value conninfo word, quoted values included. */
void store_spec_redact(const char *spec, char *out, size_t outlen) {
  if (!out || outlen == 0) return;
  out[0] = '\0';
  if (!spec) return;
  size_t pos = 0, n = strlen(spec), i = 0;
  const char *scheme_end = strstr(spec, "://");
  if (scheme_end) {
    const char *auth = scheme_end + 3;
    const char *at = strrchr(auth, '@');
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
      put(out, outlen, &pos, spec, (size_t)(colon - spec) + 1);
      put(out, outlen, &pos, STORE_REDACTED, strlen(STORE_REDACTED));
      i = (size_t)(at - spec);
    }
  }
  while (i < n) {
    bool boundary = i == 0 || spec[i - 1] == '?' || spec[i - 1] == '&' || spec[i - 1] == ' ' ||
                    spec[i - 1] == '\t';
    if (boundary && strncasecmp(spec + i, "password", 8) == 0) {
      size_t k = i + 8;
      while (k < n && (spec[k] == ' ' || spec[k] == '\t')) k++;
      if (k < n && spec[k] == '=') {
        k++;
        while (k < n && (spec[k] == ' ' || spec[k] == '\t')) k++;
        put(out, outlen, &pos, spec + i, k - i);
        put(out, outlen, &pos, STORE_REDACTED, strlen(STORE_REDACTED));
        if (k < n && spec[k] == '\'') { /* quoted: up to the closing unescaped quote */
          k++;
          while (k < n && spec[k] != '\'') k += (spec[k] == '\\' && k + 1 < n) ? 2 : 1;
          if (k < n) k++;
        } else {
          while (k < n && spec[k] != '&' && spec[k] != '#' && spec[k] != ' ' && spec[k] != '\t')
            k++;
        }
        i = k;
        continue;
      }
    }
    put(out, outlen, &pos, spec + i, 1);
    i++;
  }
}

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Checks the parts of a PostgreSQL URI that libpq would reject at connect
 * time anyway, so that a typo is a bad flag (exit 2) rather than an outage. */
static int check_postgres_uri(const char *spec, const char *rest, char *err, size_t errlen) {
  for (const char *p = spec; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c == 0x7f) {
      set_err(err, errlen, "store: the PostgreSQL URI contains a space or control character",
              spec);
      return -1;
    }
    if (c == '%' && !(is_hex(p[1]) && is_hex(p[2]))) {
      set_err(err, errlen, "store: the PostgreSQL URI has a bad %-escape", spec);
      return -1;
    }
  }
  /* Host list: [userinfo@]host[:port][,host[:port]]... up to '/' or '?'. */
  const char *auth_end = rest + strcspn(rest, "/?");
  const char *at = NULL;
  for (const char *p = rest; p < auth_end; p++)
    if (*p == '@') at = p;
  const char *h = at ? at + 1 : rest;
  while (h <= auth_end) {
    const char *host_end = memchr(h, ',', (size_t)(auth_end - h));
    if (!host_end) host_end = auth_end;
    const char *port = NULL;
    if (*h == '[') {
      const char *close = memchr(h, ']', (size_t)(host_end - h));
      if (!close) {
        set_err(err, errlen, "store: the PostgreSQL URI has an unclosed '[' in a host", spec);
        return -1;
      }
      if (close + 1 < host_end) {
        if (close[1] != ':') {
          set_err(err, errlen, "store: the PostgreSQL URI has junk after a ']'", spec);
          return -1;
        }
        port = close + 2;
      }
    } else {
      const char *colon = memchr(h, ':', (size_t)(host_end - h));
      if (colon) port = colon + 1;
    }
    if (port) {
      long v = 0;
      const char *q = port;
      for (; q < host_end && *q >= '0' && *q <= '9' && v <= 65535; q++) v = v * 10 + (*q - '0');
      if (q == port || q != host_end || v < 1 || v > 65535) {
        set_err(err, errlen, "store: the PostgreSQL URI has a bad port", spec);
        return -1;
      }
    }
    h = host_end + 1;
  }
  const char *query = strchr(rest, '?');
  if (query) {
    const char *p = query + 1;
    while (*p) {
      size_t n = strcspn(p, "&");
      const char *eq = memchr(p, '=', n);
      if (n == 0 || !eq || eq == p) {
        set_err(err, errlen, "store: the PostgreSQL URI has a parameter that is not key=value",
                spec);
        return -1;
      }
      p += n;
      if (*p == '&') p++;
    }
  }
#ifdef PRODUCT_HAVE_POSTGRES
  /* libpq's own parser as the last word; its message may quote parts of the
   * URI, so only ours (redacted) is reported. */
  char *pq_err = NULL;
  PQconninfoOption *opts = PQconninfoParse(spec, &pq_err);
  if (!opts) {
    if (pq_err) PQfreemem(pq_err);
    set_err(err, errlen, "store: libpq rejects the PostgreSQL URI", spec);
    return -1;
  }
  PQconninfoFree(opts);
#endif
  return 0;
}

static int spec_parse(const char *spec, spec_kind *kind, const char **rest, char *err,
                      size_t errlen) {
  if (!spec || !*spec) {
    set_err(err, errlen, "store: empty store spec (want memory, sqlite:PATH or postgres://...)",
            NULL);
    return -1;
  }
  if (strcmp(spec, "memory") == 0) {
    *kind = SPEC_MEMORY;
    *rest = "";
    return 0;
  }
  if (strncmp(spec, "sqlite:", 7) == 0) {
    const char *path = spec + 7;
    if (!*path) {
      set_err(err, errlen, "store: sqlite: needs a file path (sqlite:PATH)", NULL);
      return -1;
    }
    if (strcmp(path, ":memory:") == 0) {
      set_err(err, errlen, "store: sqlite::memory: is not durable; use --store memory", NULL);
      return -1;
    }
    if (path[strlen(path) - 1] == '/') {
      set_err(err, errlen, "store: sqlite: path names a directory, not a file", spec);
      return -1;
    }
    *kind = SPEC_SQLITE;
    *rest = path;
    return 0;
  }
  const char *after = NULL;
  if (strncmp(spec, "postgres://", 11) == 0) after = spec + 11;
  if (strncmp(spec, "postgresql://", 13) == 0) after = spec + 13;
  if (after) {
    if (check_postgres_uri(spec, after, err, errlen) != 0) return -1;
    *kind = SPEC_POSTGRES;
    *rest = spec;
    return 0;
  }
  set_err(err, errlen,
          "store: unknown store spec (want memory, sqlite:PATH or postgres://...)", spec);
  return -1;
}

int store_spec_check(const char *spec, char *err, size_t errlen) {
  spec_kind kind;
  const char *rest;
  return spec_parse(spec, &kind, &rest, err, errlen);
}

/* A new directory entry is durable only once its parent is synced. */
static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

/* mkdir -p of the directory that holds file `path` (0700: the data is ours). */
static int make_parent_dirs(const char *path, char *err, size_t errlen) {
  char buf[4096];
  size_t len = strlen(path);
  if (len >= sizeof(buf)) {
    set_err(err, errlen, "store: sqlite: path too long", NULL);
    return -1;
  }
  memcpy(buf, path, len + 1);
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf) return 0; /* the current directory or "/" */
  *slash = '\0';
  for (char *p = buf + 1; ; p++) {
    bool last = *p == '\0';
    if (*p == '/' || last) {
      char saved = *p;
      *p = '\0';
      if (mkdir(buf, 0700) == 0) {
        char *parent_end = strrchr(buf, '/');
        if (parent_end && parent_end != buf) {
          *parent_end = '\0';
          sync_dir(buf);
          *parent_end = '/';
        } else {
          sync_dir(parent_end ? "/" : ".");
        }
      } else if (errno != EEXIST) {
        if (err && errlen)
          snprintf(err, errlen, "store: cannot create directory '%s': %s", buf, strerror(errno));
        return -1;
      }
      *p = saved;
      if (last) break;
    }
  }
  struct stat st;
  if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
    if (err && errlen) snprintf(err, errlen, "store: '%s' is not a directory", buf);
    return -1;
  }
  return 0;
}

int store_open(const char *spec, const store_options *opt, store **out, char *err,
               size_t errlen) {
  static const store_options defaults = {.pool_size = 4, .group_commit = true};
  spec_kind kind;
  const char *rest;
  *out = NULL;
  if (!opt) opt = &defaults;
  if (spec_parse(spec, &kind, &rest, err, errlen) != 0) return -1;
  switch (kind) {
  case SPEC_MEMORY:
    return store_memory_open(opt, out, err, errlen);
  case SPEC_SQLITE:
    if (make_parent_dirs(rest, err, errlen) != 0) return -1;
    return store_sqlite_open(rest, opt, out, err, errlen);
  case SPEC_POSTGRES:
#if STORE_WITH_POSTGRES
    return store_postgres_open(rest, opt, out, err, errlen);
#else
    set_err(err, errlen, "store: postgres store not built yet", NULL);
    return -1;
#endif
  }
  set_err(err, errlen, "store: unknown store spec", NULL);
  return -1;
}

int product_copy(arena *a, const product *src, product *dst) {
  product p = *src;
  p.name = arena_strdup(a, store_str_or_empty(src->name));
  p.description = arena_strdup(a, store_str_or_empty(src->description));
  if (!p.name || !p.description) return -1;
  p.categories = NULL;
  if (src->n_categories) {
    if (!src->categories) return -1;
    p.categories = arena_calloc(a, src->n_categories, sizeof(char *));
    if (!p.categories) return -1;
    for (size_t i = 0; i < src->n_categories; i++) {
      p.categories[i] = arena_strdup(a, store_str_or_empty(src->categories[i]));
      if (!p.categories[i]) return -1;
    }
  }
  *dst = p;
  return 0;
}

void product_apply_patch(product *p, const product_patch *patch) {
  if (patch->fields & PATCH_NAME) p->name = (char *)(patch->name ? patch->name : "");
  if (patch->fields & PATCH_DESCRIPTION)
    p->description = (char *)(patch->description ? patch->description : "");
  if (patch->fields & PATCH_PRICE) p->price = patch->price;
  if (patch->fields & PATCH_CATEGORIES) {
    p->categories = (char **)patch->categories;
    p->n_categories = patch->categories ? patch->n_categories : 0;
  }
  p->updated_us = patch->updated_us > p->updated_us ? patch->updated_us
                  : p->updated_us < INT64_MAX       ? p->updated_us + 1
                                                    : p->updated_us;
}

void store_etag(const product *p, char out[STORE_ETAG_LEN + 1]) {
  snprintf(out, STORE_ETAG_LEN + 1, "%016llx", (unsigned long long)(uint64_t)p->updated_us);
}

int store_etag_parse(const char *etag, int64_t *updated_us) {
  if (!etag || strlen(etag) != STORE_ETAG_LEN) return -1;
  uint64_t v = 0;
  for (const char *q = etag; *q; q++) {
    int d = *q >= '0' && *q <= '9' ? *q - '0' : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10 : -1;
    if (d < 0) return -1; /* upper case too: only the form we issue matches */
    v = v << 4 | (uint64_t)d;
  }
  *updated_us = (int64_t)v;
  return 0;
}
