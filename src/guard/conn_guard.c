/* See conn_guard.h. */
#include "guard/conn_guard.h"

#include <stdlib.h>


struct conn_guard {
  int64_t limit;
  conn_guard_kind kind;
};

conn_guard *conn_guard_create(int64_t limit, conn_guard_kind kind) {
  conn_guard *g = calloc(1, sizeof(*g));
  if (!g) return NULL;
  g->limit = limit;
  g->kind = kind;
  return g;
}

void conn_guard_destroy(conn_guard *g) { free(g); }

bool conn_guard_note(conn_guard *g, const char *peer, int64_t now_ns) {
  if (!g || g->limit <= 0 || !peer || !peer[0]) return false;
  /* Not a connection of ours (a unix socket, one already gone), or for
   * resets: none from this peer sent a reset not counted yet. */
  return h2_guard_note(peer, (h2_conn){.fd = -1, .gen = 0}, (int)g->kind, g->limit, now_ns);
}

bool conn_guard_note_conn(conn_guard *g, h2_conn c, int64_t now_ns) {
  if (!g || g->limit <= 0 || c.gen == 0) return false;
  return h2_guard_note(NULL, c, (int)g->kind, g->limit, now_ns);
}
