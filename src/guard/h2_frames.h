#ifndef PRODUCT_GUARD_H2_FRAMES_H
#define PRODUCT_GUARD_H2_FRAMES_H
/* The HTTP/2 frame counting of one connection, fed with the bytes a client
 * sent before the core parses them (h2_guard.c). It reads only the 24-byte
 * preface and the 9-byte frame headers, skipping payloads across reads, and
 * says when the connection breaks a limit the 1.51 core does not enforce:
 * an endless header block (CONTINUATION flood, HPACK bombs), or floods of
 * PING, SETTINGS, empty DATA (CVE-2019-9518) or RST_STREAM frames, or a
 * client that announced a zero receive window and opens stream after stream
 * without granting any credit (every answer would wait in the server), or
 * one that opens stream after stream and never acknowledges our SETTINGS
 * (the 1.51 core enforces its stream limit only once they are acknowledged),
 * and the request bytes held on streams the client has not ended.
 * One lives per file descriptor; it allocates only a table of streams with
 * request bytes held (h2_frames_release frees it). */
#include <stddef.h>
#include <stdint.h>

#define H2_SMALL_DATA_BYTES 32
/* A byte of a request's header block counts this many in pending_bytes,
 * once the block is over H2_HEADER_COUNTED bytes (the whole block then). */
#define H2_HEADER_WEIGHT 3
#define H2_HEADER_COUNTED (16 * 1024)

typedef enum h2_verdict {
  H2_OK = 0,
  H2_HEADER_BLOCK, /* header block over the byte or frame limit */
  H2_PING_FLOOD,
  H2_SETTINGS_FLOOD,
  H2_EMPTY_FRAMES, /* empty DATA frames without END_STREAM */
  H2_RST_FLOOD,
  H2_ZERO_WINDOW, /* zero initial window, streams opened without WINDOW_UPDATE */
  H2_UNACKED_SETTINGS, /* streams opened before our SETTINGS were acknowledged */
  H2_GOAWAY_FLOOD, /* more GOAWAY frames than a closing client sends */
  H2_SMALL_DATA,   /* request messages fed in tiny DATA frames */
  H2_PENDING_DATA, /* too many request bytes on streams the client has not ended */
  /* Not frame verdicts: the reasons conn_guard closes a connection for,
   * reported through the same queue. */
  H2_RAPID_RESET,      /* more calls its client reset per second than the limit */
  H2_UNKNOWN_METHODS,  /* more calls to unknown methods per second than the limit */
  H2_VERDICT_COUNT
} h2_verdict;

/* Per-second counts are per connection; 0 turns one off. */
typedef struct h2_limits {
  uint32_t header_block_bytes;  /* HEADERS + CONTINUATION payload until END_HEADERS */
  uint32_t header_block_frames; /* CONTINUATION frames in one header block */
  uint32_t pings_per_s;         /* PING frames that are not ACKs */
  uint32_t settings_per_s;      /* SETTINGS frames that are not ACKs */
  uint32_t empty_data_per_s;
  uint32_t rst_per_s;
  uint32_t zero_window_streams; /* streams a zero-window client may open before a WINDOW_UPDATE */
  uint32_t streams_before_ack;  /* streams a client may open before it acknowledges our SETTINGS */
  uint32_t goaways;             /* GOAWAY frames one connection may send */
  /* Small DATA frames (payload under H2_SMALL_DATA_BYTES, or padded): the
   * 1.51 core keeps some 40 bytes for each until its message is complete,
   * so a message fed a byte a frame costs it 40 times its size. Each
   * connection has small_data_burst of them, gets small_data_per_s back a
   * second and small_data_per_stream for every stream it opens. */
  uint32_t small_data_burst;
  uint32_t small_data_per_s;
  uint32_t small_data_per_stream;
  /* Request bytes on streams the client has not ended yet (END_STREAM or
   * RST_STREAM), header blocks counted H2_HEADER_WEIGHT times: the core
   * holds them until each message is whole, and
   * grants window for whole messages, so 100 streams of 4 MiB held 400 MB
   * on one connection. At most pending_bytes in all, on at most
   * pending_streams streams. */
  uint64_t pending_bytes; /* under 4 GiB: a stream's count is 32 bits */
  uint32_t pending_streams;
} h2_limits;

/* One stream with request bytes and no END_STREAM yet. */
typedef struct h2_pending {
  uint32_t sid;
  uint32_t bytes;
} h2_pending;

typedef struct h2_frames {
  uint8_t hdr[9];
  uint8_t hdr_have;   /* bytes of the current frame header seen */
  uint8_t preface;    /* preface bytes still to come (24 at the start) */
  uint8_t in_block;   /* inside a header block (no END_HEADERS yet) */
  uint8_t block_opens; /* that block's HEADERS left its stream open */
  uint32_t last_sid;   /* the highest stream a HEADERS opened */
  uint8_t verdict;    /* sticky once not H2_OK */
  uint32_t skip;      /* payload bytes of the current frame still to skip */
  uint32_t block_bytes, block_frames;
  int64_t window_start_ns; /* start of the one-second counting window */
  uint32_t pings, settings, empty_data, rst;
  uint32_t settings_left;   /* SETTINGS payload bytes still to read */
  uint8_t entry[6];         /* one SETTINGS entry, possibly split across reads */
  uint8_t entry_have;
  uint8_t zero_window;      /* the client's SETTINGS_INITIAL_WINDOW_SIZE is 0 */
  uint32_t zw_streams;      /* HEADERS since the last WINDOW_UPDATE, while zero_window */
  uint32_t rst_total;       /* RST_STREAM frames read so far (wraps) */
  uint8_t acked;            /* the client acknowledged a SETTINGS of ours */
  uint32_t unacked_streams; /* HEADERS frames before that */
  uint32_t goaways;         /* GOAWAY frames read */
  uint32_t small_used;      /* small DATA frames charged and not yet paid back */
  int64_t small_paid_ns;    /* when the last whole second was paid back */
  h2_pending *pend;         /* malloc'd on the first stream not ended with its message */
  uint32_t pend_n, pend_cap;
  uint64_t pend_bytes;      /* their sum */
} h2_frames;

/* A new connection: expects the client preface next. */
void h2_frames_reset(h2_frames *f);

/* Frees what f allocated (before a reset of a used one, or when its
 * connection is gone). */
void h2_frames_release(h2_frames *f);

/* Feeds `len` bytes the client sent; returns the verdict (sticky: once a
 * limit is broken every later call returns it). A stream that does not start
 * with the client preface is left to the core to refuse (H2_OK). */
h2_verdict h2_frames_feed(h2_frames *f, const h2_limits *lim, const uint8_t *p, size_t len,
                          int64_t now_ns);

/* "header_block", "ping_flood", ... */
const char *h2_verdict_name(h2_verdict v);

#endif
