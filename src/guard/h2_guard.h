#ifndef PRODUCT_GUARD_H2_GUARD_H
#define PRODUCT_GUARD_H2_GUARD_H
/* The hostile-client guard in front of the 1.51 core (docs/http2-limits.md):
 * a record per connection, frame limits, and the close of one connection.
 *
 * The server executable defines listen, accept4, recvmsg, read, close,
 * SSL_do_handshake and SSL_read; the dynamic linker binds libgrpc's calls to
 * these, which call the real ones (dlsym RTLD_NEXT). Only product-server and
 * the guard's tests link this library.
 *
 * - listen() remembers the descriptor; h2_guard_claim_listeners() after
 *   grpc_server_add_http2_port marks the descriptors bound since as ours
 *   (listeners by descriptor, never by port).
 * - accept4() on one of them gives the new descriptor a connection record:
 *   a generation never reused, the peer ("ipv4:127.0.0.1:40918", as the core
 *   writes it), fresh frame counters.
 * - Plaintext: recvmsg/read feed the bytes read to h2_frames. TLS: the
 *   reads yield the ClientHello's client random (whatever the segments or
 *   records it came in; a random another untied connection sent is
 *   refused; the randoms waiting for their SSL are kept in the records,
 *   as many as there are), the server-side SSL is tied to the connection
 *   whose random it read (after the handshake step that read it), and
 *   SSL_read feeds the decrypted bytes.
 * - Over a limit the read fails (ECONNRESET, or an OpenSSL error for TLS)
 *   and the socket is shut down, so the core closes it itself.
 * - close() ends the record (under the same lock as any close we decide,
 *   so a shutdown never reaches a number given to someone else).
 * - Reports go to a bounded queue drained by the guard's own thread, which
 *   calls the report function (never on the core's I/O threads).
 *
 * The table of records is two-level (chunks of records allocated on first
 * use, never freed while the process lives): every descriptor number is
 * covered whatever RLIMIT_NOFILE says, and a reader never sees a freed
 * table. */
#include <stdbool.h>
#include <stdint.h>

#include "guard/h2_frames.h"

/* One closed connection, as the report thread hands it over; or (why
 * H2_OK, uncovered > 0) connections the guard could not cover. */
typedef struct h2_guard_report {
  const char *peer;   /* "ipv4:127.0.0.1:40918"; "" when unknown */
  h2_verdict why;
  bool log;           /* false: over the log rate (count it, do not log it) */
  uint64_t suppressed; /* reports not logged since the last logged one */
  /* Connections accepted on our listeners without a record since the last
   * such report (h2_guard_uncovered), and in all: served, not counted.
   * Checked by the report thread at least once a second; logged at most
   * once every 10 s (log false otherwise: count them, do not log).
   * With untied set, the same counts are of TLS connections whose SSL could
   * not be tied to its connection (h2_guard_untied): their per-SSL frame
   * limits hold, the per-connection rapid-reset count does not. */
  bool untied;
  uint64_t uncovered, uncovered_total;
} h2_guard_report;

typedef void (*h2_guard_report_fn)(void *ctx, const h2_guard_report *r);

/* A handle on one connection: its descriptor and its generation. A handle
 * whose connection has gone acts on nothing, whatever the number became. */
typedef struct h2_conn {
  int fd;
  uint64_t gen;
} h2_conn;

/* Before the servers are created. Starts the report thread. Non-zero on
 * out of memory or if the thread cannot start. */
int h2_guard_start(const h2_limits *lim, h2_guard_report_fn report, void *ctx);

/* The listeners bound (listen(2)) since the last claim are ours; their
 * connections are counted, as TLS (decrypted bytes) or plaintext. Returns
 * how many listeners were claimed. *group (if not NULL) names this claim's
 * listeners (never 0) for h2_guard_find_on: one server's port. */
int h2_guard_claim(bool tls, int *group);
int h2_guard_claim_listeners(bool tls); /* h2_guard_claim(tls, NULL) */

/* Everything passes through from now on; the report thread is joined
 * (reports still queued are delivered first). */
void h2_guard_stop(void);

/* The live connection whose peer is `peer` (as grpc_call_get_peer writes
 * it), accepted on a listener of `group` (h2_guard_claim; 0: any). One
 * client address and port can have a live connection to each of our
 * listeners at once: a server's call is found on its own. False if there
 * is none. */
bool h2_guard_find_on(const char *peer, int group, h2_conn *out);
bool h2_guard_find(const char *peer, h2_conn *out); /* any group */

/* Takes one reset the client sent on `c` that no cancel has used yet. False
 * when the client sent none (the call ended by a GOAWAY, an age limit, our
 * own cancel or a dead transport) or the connection is gone. */
bool h2_guard_take_reset(h2_conn c);

/* Shuts down connection `c` if it is still the one the handle names and not
 * closed yet, reads on it fail from now on, and queues a report. True if it
 * was shut down now. No descriptor is opened: this works at EMFILE. */
bool h2_guard_close(h2_conn c, h2_verdict why);

/* Adds delta to the bytes of replies that connection c has waiting (large
 * replies queued until its client reads them); returns the new total, or
 * -1 when c is no longer a live connection. Any thread. */
int64_t h2_guard_reply_bytes(h2_conn c, int64_t delta);

/* conn_guard's whole decision in one critical section: counts one event
 * of `slot` (0: a cancel, 1: an unknown method) on a connection and, when
 * that puts it over `limit` within its one-second window, shuts it down
 * (once) and queues a report (rapid_reset or unknown_methods). The
 * connection is `c` when c.gen is not 0 (gone: nothing counted); else the
 * live connection of `peer`, for slot 0 one whose client sent a reset no
 * cancel has used yet (taken). True if it was shut down now. */
bool h2_guard_note(const char *peer, h2_conn c, int slot, int64_t limit, int64_t now_ns);

/* Under memory pressure: shuts down the connection whose client reads least
 * (the most bytes sent it has not taken, SIOCOUTQ), if at least min_unsent.
 * O(connections), not O(descriptors). Returns 1 if one was shut down. */
int h2_guard_close_stalled(int min_unsent);
#ifdef PRODUCT_TEST_FAULTS
/* Tests: called by h2_guard_close_stalled after each measurement, with no
 * lock held (it may close descriptors and accept new connections). */
extern void (*h2_guard_test_after_measure)(int fd);
#endif

/* Start-up proof: the next connection from address `from` (a probe the
 * server opens to itself, bound before it connects; the whole address, not
 * the port alone) is held to a PING limit of 1 a second. NULL expects none.
 * h2_guard_probe_state says what the guard saw of it. */
struct sockaddr;
void h2_guard_probe_expect(const struct sockaddr *from);
enum { PROBE_ACCEPTED = 1, PROBE_TLS_TIED = 2, PROBE_REFUSED = 4 };
int h2_guard_probe_state(void);

/* Parses a grpc peer ("ipv4:1.2.3.4:5", "ipv6:[::1]:5") into an address;
 * non-zero if it is not one. */
struct sockaddr_storage;
int h2_guard_parse_peer(const char *peer, struct sockaddr_storage *out);

/* The hash bucket (0..4095) the guard files connections from `peer` under;
 * -1 if `peer` is not an address. For tests: the buckets are keyed at
 * random, once per process. */
int h2_guard_bucket_of(const char *peer);

/* Connections accepted on our listeners that got no record (no memory for
 * their chunk of the table): served, but not counted. Reported (above). */
uint64_t h2_guard_uncovered(void);

/* TLS handshakes whose SSL could not be tied to a connection of ours (its
 * ClientHello matched none, or no memory for its link): once per SSL. Their
 * per-SSL frame limits hold; the rapid-reset count per connection does not.
 * Reported (above, untied). */
uint64_t h2_guard_untied(void);

#endif
