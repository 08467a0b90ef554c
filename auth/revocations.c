/* See revocations.h. */
#include "auth/revocations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/file_read.h"

typedef struct sub_entry {
  char *sub;
  int64_t before;
} sub_entry;

struct revocations {
  char **jti; /* sorted */
  size_t n_jti, cap_jti;
  sub_entry *subs; /* sorted by sub, one entry per sub (the latest BEFORE) */
  size_t n_sub, cap_sub;
};

void revocations_destroy(revocations *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_jti; i++) free(r->jti[i]);
  for (size_t i = 0; i < r->n_sub; i++) free(r->subs[i].sub);
  free(r->jti);
  free(r->subs);
  free(r);
}

size_t revocations_count(const revocations *r) { return r ? r->n_jti + r->n_sub : 0; }

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_sub(const void *a, const void *b) {
  return strcmp(((const sub_entry *)a)->sub, ((const sub_entry *)b)->sub);
}

/* Splits line[0..len) into at most 4 fields; a field starting with '#' ends
 * the line. Returns the number of fields, 4 meaning "too many". */
static size_t split(const char *line, size_t len, const char *f[4], size_t fl[4]) {
  size_t n = 0, i = 0;
  while (i < len) {
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == len || line[i] == '#') break;
    size_t start = i;
    while (i < len && line[i] != ' ' && line[i] != '\t') i++;
    if (n == 4) return 4;
    f[n] = line + start;
    fl[n++] = i - start;
  }
  return n;
}

/* Control characters (tab aside) and NUL are not text. */
static bool is_text(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

static bool parse_seconds(const char *s, size_t len, int64_t *out) {
  if (len == 0 || len > 19) return false;
  int64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
      return false;
  }
  *out = v;
  return true;
}

static bool grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return true;
  size_t nc = *cap ? *cap * 2 : 16;
  void *np = realloc(*p, nc * size);
  if (!np) return false;
  *p = np;
  *cap = nc;
  return true;
}

/* One line: 0 ok, -1 malformed (why set), -2 out of memory. */
static int parse_line(revocations *r, const char *line, size_t len, const char **why) {
  if (len > 0 && line[len - 1] == '\r') len--;
  if (!is_text(line, len)) {
    *why = "control character";
    return -1;
  }
  /* Token claims are always valid UTF-8 (jansson checks them): an entry in
   * another encoding (a Latin-1 "sub josé") could never match, so it would
   * revoke nothing without a word. jansson's own check decides. */
  json_t *utf8 = json_stringn(line, len);
  if (!utf8) {
    *why = "not UTF-8";
    return -1;
  }
  json_decref(utf8);
  const char *f[4];
  size_t fl[4];
  size_t n = split(line, len, f, fl);
  if (n == 0) return 0;
  bool is_jti = fl[0] == 3 && memcmp(f[0], "jti", 3) == 0;
  bool is_sub = fl[0] == 3 && memcmp(f[0], "sub", 3) == 0;
  if (!is_jti && !is_sub) {
    *why = "expected \"jti VALUE\" or \"sub VALUE BEFORE\"";
    return -1;
  }
  if (n != (is_jti ? 2u : 3u)) {
    *why = is_jti ? "expected \"jti VALUE\"" : "expected \"sub VALUE BEFORE\"";
    return -1;
  }
  if (fl[1] > REVOCATIONS_VALUE_MAX) {
    *why = "value longer than 1024 bytes";
    return -1;
  }
  int64_t before = 0;
  if (is_sub && !parse_seconds(f[2], fl[2], &before)) {
    *why = "BEFORE must be Unix seconds (digits only)";
    return -1;
  }
  char *v = strndup(f[1], fl[1]);
  if (!v) return -2;
  if (is_jti) {
    if (!grow((void **)&r->jti, &r->cap_jti, r->n_jti, sizeof *r->jti)) goto oom;
    r->jti[r->n_jti++] = v;
  } else {
    if (!grow((void **)&r->subs, &r->cap_sub, r->n_sub, sizeof *r->subs)) goto oom;
    r->subs[r->n_sub++] = (sub_entry){.sub = v, .before = before};
  }
  return 0;
oom:
  free(v);
  return -2;
}

/* Sorts, then merges duplicates (a sub keeps its latest BEFORE). */
static void finish(revocations *r) {
  if (r->n_jti) qsort(r->jti, r->n_jti, sizeof *r->jti, cmp_str);
  size_t o = 0;
  for (size_t i = 0; i < r->n_jti; i++) {
    if (o > 0 && strcmp(r->jti[o - 1], r->jti[i]) == 0) free(r->jti[i]);
    else r->jti[o++] = r->jti[i];
  }
  r->n_jti = o;
  if (r->n_sub) qsort(r->subs, r->n_sub, sizeof *r->subs, cmp_sub);
  o = 0;
  for (size_t i = 0; i < r->n_sub; i++) {
    if (o > 0 && strcmp(r->subs[o - 1].sub, r->subs[i].sub) == 0) {
      if (r->subs[i].before > r->subs[o - 1].before) r->subs[o - 1].before = r->subs[i].before;
      free(r->subs[i].sub);
    } else {
      r->subs[o++] = r->subs[i];
    }
  }
  r->n_sub = o;
}

int revocations_parse(const char *text, size_t len, revocations **out, char *err, size_t errlen) {
  *out = NULL;
  revocations *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t line_no = 1, pos = 0;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    const char *why = NULL;
    int rc = parse_line(r, text + pos, end - pos, &why);
    if (rc != 0) {
      if (rc == -2) snprintf(err, errlen, "out of memory");
      else snprintf(err, errlen, "line %zu: %s", line_no, why);
      revocations_destroy(r);
      return -1;
    }
    pos = end + 1;
    line_no++;
  }
  finish(r);
  *out = r;
  return 0;
}

int revocations_load_file(const char *path, revocations **out, char *err, size_t errlen) {
  char *buf;
  size_t len;
  char why[200];
  *out = NULL;
  if (file_read_all(path, "revocation list", REVOCATIONS_FILE_MAX, &buf, &len, err, errlen) != 0)
    return -1;
  int rc = revocations_parse(buf, len, out, why, sizeof why);
  if (rc != 0) snprintf(err, errlen, "revocation list %s: %s", path, why);
  file_read_free(buf, len);
  return rc;
}

bool revocations_match(const revocations *r, const char *jti, const char *sub, bool has_iat,
                       int64_t iat) {
  if (!r) return false;
  if (jti && r->n_jti && bsearch(&jti, r->jti, r->n_jti, sizeof *r->jti, cmp_str)) return true;
  if (!sub || !r->n_sub) return false;
  sub_entry key = {.sub = (char *)sub};
  const sub_entry *e = bsearch(&key, r->subs, r->n_sub, sizeof *r->subs, cmp_sub);
  return e && (!has_iat || iat < e->before);
}
