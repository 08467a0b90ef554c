/* Wire-level request check before unpacking; see wire_check.h. */
#include "core/wire_check.h"

#include <stdio.h>
#include <string.h>

enum {
  WIRE_VARINT = 0,
  WIRE_FIXED64 = 1,
  WIRE_LEN = 2,
  WIRE_START_GROUP = 3,
  WIRE_END_GROUP = 4,
  WIRE_FIXED32 = 5,
};

#define WIRE_MAX_FIELD_NUMBER ((1u << 29) - 1)
/* protobuf-c keeps every field it decodes, unknown ones included, each with
 * its own allocation: a 4 MiB body of 2-byte fields would cost ~150 MB. No
 * valid request comes near these counts (the largest has 36 fields). */
#define WIRE_MAX_FIELDS 4096
#define WIRE_MAX_UNKNOWN_FIELDS 64
#define WIRE_PATH_MAX 200

/* One walk's state: the dotted path of the field being looked at (for the
 * message) and where to write the reason. Lives on the caller's stack. */
typedef struct walker {
  char path[WIRE_PATH_MAX];
  size_t path_len;
  char *err;
  size_t errlen;
  size_t fields;  /* in the whole request */
  size_t unknown; /* fields no descriptor names */
} walker;

bool wire_check_utf8(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c == 0xe0) lo = 0xa0;      /* overlong below U+0800 */
      else if (c == 0xed) hi = 0x9f; /* UTF-16 surrogates U+D800..U+DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c == 0xf0) lo = 0x90;      /* overlong below U+10000 */
      else if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
      return false; /* continuation byte, 0xc0/0xc1 overlongs, 0xf5.. */
    }
    if (len - i - 1 < need) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xc0) != 0x80) return false;
    i += need + 1;
  }
  return true;
}

/* Reads a varint of at most 10 bytes; 0 on success. */
static int read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0, k = 0; k < 10; k++, shift += 7) {
    if (*pos >= len) return -1;
    uint8_t b = buf[(*pos)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static size_t path_push(walker *w, const char *name) {
  size_t saved = w->path_len;
  size_t n = strlen(name);
  size_t extra = (saved ? 1 : 0) + n;
  if (saved + extra + 1 > sizeof w->path) return saved; /* keep the prefix */
  if (saved) w->path[w->path_len++] = '.';
  memcpy(w->path + w->path_len, name, n);
  w->path_len += n;
  w->path[w->path_len] = '\0';
  return saved;
}

static void path_pop(walker *w, size_t saved) {
  w->path_len = saved;
  w->path[saved] = '\0';
}

static int fail_field(walker *w, const char *what) {
  snprintf(w->err, w->errlen, "field '%s' %s", w->path, what);
  return -1;
}

static int fail_malformed(walker *w, const char *what, size_t at) {
  snprintf(w->err, w->errlen, "malformed request: %s at byte %zu", what, at);
  return -1;
}

static int check_string(walker *w, const uint8_t *s, size_t n) {
  /* The offset is into the string's value, as every filter error names
   * its position in the filter. */
  const uint8_t *nul = memchr(s, 0, n);
  if (nul) {
    char what[64];
    snprintf(what, sizeof what, "contains a NUL byte at offset %zu", (size_t)(nul - s));
    return fail_field(w, what);
  }
  if (!wire_check_utf8(s, n)) return fail_field(w, "is not valid UTF-8");
  return 0;
}

/* Walks buf[0..len) as message d; base is buf's offset in the whole request
 * (for messages). */
static int walk(walker *w, const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                size_t base, int depth) {
  size_t pos = 0;
  while (pos < len) {
    size_t field_start = pos;
    uint64_t key;
    if (read_varint(buf, len, &pos, &key) != 0)
      return fail_malformed(w, "truncated or overlong field key", base + field_start);
    uint64_t number = key >> 3;
    unsigned wire = (unsigned)(key & 7);
    if (number == 0 || number > WIRE_MAX_FIELD_NUMBER)
      return fail_malformed(w, "bad field number", base + field_start);

    const ProtobufCFieldDescriptor *f =
        d ? protobuf_c_message_descriptor_get_field(d, (unsigned)number) : NULL;
    if (++w->fields > WIRE_MAX_FIELDS)
      return fail_malformed(w, "too many fields", base + field_start);
    if (!f && ++w->unknown > WIRE_MAX_UNKNOWN_FIELDS)
      return fail_malformed(w, "too many unknown fields", base + field_start);
    bool wants_len = f && (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE);
    if (wants_len && wire != WIRE_LEN) {
      size_t saved = path_push(w, f->name);
      int rc = fail_field(w, "has the wrong wire type");
      path_pop(w, saved);
      return rc;
    }

    uint64_t v;
    switch (wire) {
      case WIRE_VARINT:
        if (read_varint(buf, len, &pos, &v) != 0)
          return fail_malformed(w, "truncated or overlong varint", base + pos);
        break;
      case WIRE_FIXED64:
        if (len - pos < 8) return fail_malformed(w, "truncated 64-bit field", base + pos);
        pos += 8;
        break;
      case WIRE_FIXED32:
        if (len - pos < 4) return fail_malformed(w, "truncated 32-bit field", base + pos);
        pos += 4;
        break;
      case WIRE_LEN: {
        size_t len_at = pos;
        if (read_varint(buf, len, &pos, &v) != 0)
          return fail_malformed(w, "truncated or overlong length", base + len_at);
        if (v > len - pos) return fail_malformed(w, "length past the end", base + len_at);
        const uint8_t *body = buf + pos;
        size_t n = (size_t)v;
        if (wants_len) {
          size_t saved = path_push(w, f->name);
          int rc = 0;
          if (f->type == PROTOBUF_C_TYPE_STRING) {
            rc = check_string(w, body, n);
          } else if (depth + 1 > WIRE_CHECK_MAX_DEPTH) {
            rc = fail_field(w, "is nested too deeply");
          } else {
            rc = walk(w, f->descriptor, body, n, base + pos, depth + 1);
          }
          path_pop(w, saved);
          if (rc != 0) return rc;
        }
        pos += n;
        break;
      }
      default:
        /* Groups are gone from proto3 and protobuf-c refuses them anyway. */
        return fail_malformed(w, "unsupported wire type", base + field_start);
    }
  }
  return 0;
}

int wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *err,
               size_t errlen) {
  char dummy[1];
  walker w = {.path_len = 0, .err = err, .errlen = errlen};
  if (!err || errlen == 0) {
    w.err = dummy;
    w.errlen = sizeof dummy;
  }
  w.path[0] = '\0';
  if (!buf && len > 0) {
    snprintf(w.err, w.errlen, "malformed request: no bytes");
    return -1;
  }
  if (len == 0) return 0;
  return walk(&w, d, buf, len, 0, 0);
}
