/* HTTP/2 frame header counting; see h2_frames.h. */
#include "guard/h2_frames.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN 24
/* preface value meaning "not HTTP/2 with prior knowledge: stop looking". */
#define PREFACE_BAD 0xff
#define NS_PER_S 1000000000LL

enum {
  F_DATA = 0,
  F_HEADERS = 1,
  F_RST_STREAM = 3,
  F_SETTINGS = 4,
  F_PING = 6,
  F_GOAWAY = 7,
  F_WINDOW_UPDATE = 8,
  F_CONTINUATION = 9
};
#define SETTINGS_INITIAL_WINDOW_SIZE 0x4
enum { FL_END_STREAM = 0x1, FL_ACK = 0x1, FL_END_HEADERS = 0x4, FL_PADDED = 0x8 };

void h2_frames_reset(h2_frames *f) {
  memset(f, 0, sizeof *f);
  f->preface = PREFACE_LEN;
}

void h2_frames_release(h2_frames *f) {
  free(f->pend);
  f->pend = NULL;
  f->pend_n = f->pend_cap = 0;
  f->pend_bytes = 0;
}

/* The stream ended (END_STREAM, RST_STREAM): its bytes are the core's to
 * hand on, no longer held for a message to come. */
static void pending_end(h2_frames *f, uint32_t sid) {
  for (uint32_t i = 0; i < f->pend_n; i++) {
    if (f->pend[i].sid != sid) continue;
    f->pend_bytes -= f->pend[i].bytes;
    f->pend[i] = f->pend[--f->pend_n];
    return;
  }
}

/* len more request bytes on stream sid, not ended. A linear table: a
 * client has at most --max-concurrent-streams open, and most end each
 * stream with its message, so it is rarely more than a few long. Out of
 * memory: not counted (the connection is left to the other limits). */
static h2_verdict pending_add(h2_frames *f, const h2_limits *lim, uint32_t sid, uint32_t len) {
  uint32_t i = 0;
  while (i < f->pend_n && f->pend[i].sid != sid) i++;
  if (i == f->pend_n) {
    if (f->pend_n == lim->pending_streams) return H2_PENDING_DATA;
    if (f->pend_n == f->pend_cap) {
      uint32_t cap = f->pend_cap ? f->pend_cap * 2 : 8;
      if (cap > lim->pending_streams) cap = lim->pending_streams;
      h2_pending *p = realloc(f->pend, cap * sizeof *p);
      if (!p) return H2_OK;
      f->pend = p;
      f->pend_cap = cap;
    }
    f->pend[f->pend_n++] = (h2_pending){.sid = sid, .bytes = 0};
  }
  f->pend[i].bytes += len; /* < 2^32: a stream over pending_bytes is refused first */
  f->pend_bytes += len;
  return f->pend_bytes > lim->pending_bytes ? H2_PENDING_DATA : H2_OK;
}

/* True when `count`, bumped now, goes over `limit` within this window. */
static int over_rate(h2_frames *f, uint32_t *count, uint32_t limit, int64_t now_ns) {
  if (!limit) return 0;
  if (now_ns - f->window_start_ns >= NS_PER_S || now_ns < f->window_start_ns) {
    f->window_start_ns = now_ns;
    f->pings = f->settings = f->empty_data = f->rst = 0;
  }
  return ++*count > limit;
}

/* One small DATA frame charged to the connection; false when it has run
 * out. Whole seconds since the last payback are paid back first. */
static bool charge_small(h2_frames *f, const h2_limits *lim, int64_t now_ns) {
  if (f->small_paid_ns == 0 || now_ns < f->small_paid_ns) f->small_paid_ns = now_ns;
  int64_t secs = (now_ns - f->small_paid_ns) / NS_PER_S;
  if (secs > 0) {
    uint64_t back = (uint64_t)secs * lim->small_data_per_s;
    f->small_used = back >= f->small_used ? 0 : f->small_used - (uint32_t)back;
    f->small_paid_ns += secs * NS_PER_S;
  }
  return ++f->small_used <= lim->small_data_burst;
}

/* One complete frame header: count it. */
static h2_verdict on_frame(h2_frames *f, const h2_limits *lim, int64_t now_ns) {
  const uint8_t *h = f->hdr;
  uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
  uint8_t type = h[3], flags = h[4];
  uint32_t sid = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) &
                 0x7fffffffu;
  f->skip = len;
  if (type == F_HEADERS || (type == F_CONTINUATION && f->in_block)) {
    if (type == F_HEADERS) {
      f->block_bytes = 0;
      f->block_frames = 0;
      if (f->zero_window && lim->zero_window_streams &&
          ++f->zw_streams > lim->zero_window_streams)
        return H2_ZERO_WINDOW;
      /* The core counts open streams against its limit only once the
       * client has acknowledged the SETTINGS that announced it: until then
       * a client may open as many as it likes, and answers pile up. */
      if (!f->acked && lim->streams_before_ack && ++f->unacked_streams > lim->streams_before_ack)
        return H2_UNACKED_SETTINGS;
      /* A new stream's request may come in a small frame or two. Only a
       * HEADERS that opens a stream the core takes (odd, above the last)
       * earns that: it ignores the others without a word. */
      if ((sid & 1) && sid > f->last_sid) {
        f->last_sid = sid;
        f->small_used = f->small_used > lim->small_data_per_stream
                            ? f->small_used - lim->small_data_per_stream : 0;
      }
    } else if (lim->header_block_frames && ++f->block_frames > lim->header_block_frames) {
      return H2_HEADER_BLOCK;
    }
    f->block_bytes += len; /* len < 2^24, the limit < 2^32: no overflow before the check */
    if (lim->header_block_bytes && f->block_bytes > lim->header_block_bytes) return H2_HEADER_BLOCK;
    f->in_block = !(flags & FL_END_HEADERS);
    if (type == F_HEADERS) f->block_opens = !(flags & FL_END_STREAM);
    if (type == F_HEADERS && (flags & FL_END_STREAM) && f->pend_n) pending_end(f, sid);
    /* A request's metadata waits with it until its message is whole, decoded
     * at some three times the block's size (measured: 100 held streams of
     * 222 KB blocks, 65 MB). Only large blocks are counted: a stream the
     * server ends before its client has sent END_STREAM stays counted (the
     * client sends nothing more on it), and every request has a block. */
    if (f->block_opens && lim->pending_bytes && sid != 0 && f->block_bytes > H2_HEADER_COUNTED) {
      uint32_t add = f->block_bytes - len > H2_HEADER_COUNTED ? len : f->block_bytes;
      return pending_add(f, lim, sid, add * H2_HEADER_WEIGHT);
    }
    return H2_OK;
  }
  /* Anything else inside a block is a protocol error the core refuses. */
  f->in_block = 0;
  switch (type) {
    case F_PING:
      if (!(flags & FL_ACK) && over_rate(f, &f->pings, lim->pings_per_s, now_ns)) return H2_PING_FLOOD;
      break;
    case F_SETTINGS:
      if (flags & FL_ACK) {
        f->acked = 1; /* the first SETTINGS we send carries the stream limit */
        break;
      }
      if (over_rate(f, &f->settings, lim->settings_per_s, now_ns)) return H2_SETTINGS_FLOOD;
      f->settings_left = len; /* read its entries instead of skipping them */
      f->skip = 0;
      f->entry_have = 0;
      break;
    case F_WINDOW_UPDATE:
      f->zw_streams = 0;
      break;
    case F_GOAWAY:
      /* A client closing sends one or two; the 1.51 core spends about a
       * microsecond on each, so a stream of them pins a core for free. */
      if (lim->goaways && ++f->goaways > lim->goaways) return H2_GOAWAY_FLOOD;
      break;
    case F_DATA:
      if (len == 0 && !(flags & FL_END_STREAM) &&
          over_rate(f, &f->empty_data, lim->empty_data_per_s, now_ns))
        return H2_EMPTY_FRAMES;
      /* Empty ones are counted above; padding is dropped by the core but
       * its bytes stay pinned with the frame's, so a padded frame counts
       * as small whatever its length. */
      if (lim->small_data_burst && len > 0 && (len < H2_SMALL_DATA_BYTES || (flags & FL_PADDED)) &&
          !charge_small(f, lim, now_ns))
        return H2_SMALL_DATA;
      if (flags & FL_END_STREAM) {
        if (f->pend_n) pending_end(f, sid);
      } else if (lim->pending_bytes && len > 0 && sid != 0) {
        h2_verdict v = pending_add(f, lim, sid, len);
        if (v != H2_OK) return v;
      }
      break;
    case F_RST_STREAM:
      if (f->pend_n) pending_end(f, sid);
      f->rst_total++; /* every reset the client sent: what cancel counting may count */
      if (over_rate(f, &f->rst, lim->rst_per_s, now_ns)) return H2_RST_FLOOD;
      break;
    default:
      break;
  }
  return H2_OK;
}

/* SETTINGS entries (16-bit id, 32-bit value): only the initial window
 * size matters here. */
static void settings_bytes(h2_frames *f, const uint8_t **pp, const uint8_t *end) {
  const uint8_t *p = *pp;
  while (p < end && f->settings_left) {
    f->entry[f->entry_have++] = *p++;
    f->settings_left--;
    if (f->entry_have < sizeof f->entry) continue;
    f->entry_have = 0;
    uint16_t id = (uint16_t)(f->entry[0] << 8 | f->entry[1]);
    uint32_t value = (uint32_t)f->entry[2] << 24 | (uint32_t)f->entry[3] << 16 |
                     (uint32_t)f->entry[4] << 8 | f->entry[5];
    if (id == SETTINGS_INITIAL_WINDOW_SIZE) {
      f->zero_window = value == 0;
      f->zw_streams = 0;
    }
  }
  *pp = p;
}

h2_verdict h2_frames_feed(h2_frames *f, const h2_limits *lim, const uint8_t *p, size_t len,
                          int64_t now_ns) {
  if (f->verdict != H2_OK || f->preface == PREFACE_BAD) return (h2_verdict)f->verdict;
  const uint8_t *end = p + len;
  if (f->preface) {
    size_t off = PREFACE_LEN - f->preface;
    size_t n = (size_t)(end - p) < f->preface ? (size_t)(end - p) : f->preface;
    if (memcmp(p, &PREFACE[off], n) != 0) {
      f->preface = PREFACE_BAD;
      return H2_OK;
    }
    f->preface -= (uint8_t)n;
    p += n;
  }
  while (p < end) {
    if (f->settings_left) {
      settings_bytes(f, &p, end);
      continue;
    }
    if (f->skip) {
      size_t n = (size_t)(end - p) < f->skip ? (size_t)(end - p) : f->skip;
      f->skip -= (uint32_t)n;
      p += n;
      continue;
    }
    size_t n = sizeof f->hdr - f->hdr_have;
    if ((size_t)(end - p) < n) n = (size_t)(end - p);
    memcpy(f->hdr + f->hdr_have, p, n);
    f->hdr_have += (uint8_t)n;
    p += n;
    if (f->hdr_have < sizeof f->hdr) break;
    f->hdr_have = 0;
    h2_verdict v = on_frame(f, lim, now_ns);
    if (v != H2_OK) {
      f->verdict = (uint8_t)v;
      return v;
    }
  }
  return H2_OK;
}

const char *h2_verdict_name(h2_verdict v) {
  static const char *const names[H2_VERDICT_COUNT] = {
      "ok",           "header_block", "ping_flood", "settings_flood",
      "empty_frames", "rst_flood",    "zero_window",  "unacked_settings",
      "goaway_flood", "small_data",   "pending_data", "rapid_reset",  "unknown_methods"};
  return (unsigned)v < H2_VERDICT_COUNT ? names[v] : "unknown";
}
