#ifndef PRODUCT_GUARD_CONN_GUARD_H
#define PRODUCT_GUARD_CONN_GUARD_H
/* Rapid-reset protection (CVE-2023-44487) the 1.51 core lacks, and the same
 * for floods of calls to unknown methods: count, per connection, the calls
 * its client reset (or made to an unknown method) and close a connection
 * over `limit` of them within one second.
 *
 * A call names its connection only by its peer text; the guard's records
 * (h2_guard.h) map that to the live connection, a descriptor and a
 * generation: for a cancel when it is noted (the connection that sent a
 * reset), for an unknown method when the call arrives (on the listeners of
 * the server it came to), so a later connection from the same address and
 * port, or one to our other port, is never charged with it. Counts live in that connection's record: a new connection
 * from the same address and port starts from zero. A cancelled call counts
 * only if the client sent a RST_STREAM on that connection that no earlier
 * counted cancel used (the frame reader sees them all): calls ended by a
 * GOAWAY, an age limit, our own cancel or a dead transport never count.
 * The close is a shutdown(2) of that descriptor, checked against the
 * generation under the lock the close hook takes: no descriptor scan, no
 * new descriptor (works at EMFILE). Finding the connection, taking its
 * reset, counting and the close are one critical section of that lock
 * (h2_guard_note), not three. */
#include <stdbool.h>
#include <stdint.h>

#include "guard/h2_guard.h"

typedef enum conn_guard_kind {
  CONN_GUARD_RESETS = 0,  /* calls the client cancelled (RST_STREAM) */
  CONN_GUARD_UNKNOWN = 1, /* calls to unknown methods: every one counts */
} conn_guard_kind;

typedef struct conn_guard conn_guard;

/* limit 0: off (conn_guard_note never closes). NULL on out of memory. */
conn_guard *conn_guard_create(int64_t limit, conn_guard_kind kind);
void conn_guard_destroy(conn_guard *g);

/* One call on `peer`'s connection ended cancelled (CONN_GUARD_RESETS) or
 * went to an unknown method (CONN_GUARD_UNKNOWN). True when this put the
 * connection over the limit and it was shut down now (and reported, reason
 * rapid_reset or unknown_methods). Any thread. */
bool conn_guard_note(conn_guard *g, const char *peer, int64_t now_ns);

/* The same on connection `c` (h2_guard_find_on, when the call arrived):
 * for calls to unknown methods, which leave no trace in the frames to tell
 * their connection by. A connection gone since counts nothing, whatever
 * connection has its address and port now. */
bool conn_guard_note_conn(conn_guard *g, h2_conn c, int64_t now_ns);

#endif
