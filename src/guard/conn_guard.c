/* See conn_guard.h. */
#include "guard/conn_guard.h"

#include <stdlib.h>

#include "guard/h2_guard.h"

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
  h2_conn c;
  /* Not a connection of ours (a unix socket, one already gone), or for
   * resets: none from this peer sent a reset not counted yet. */
  if (!(g->kind == CONN_GUARD_RESETS ? h2_guard_find_reset(peer, &c) : h2_guard_find(peer, &c)))
    return false;
  if (!h2_guard_count(c, (int)g->kind, g->limit, now_ns)) return false;
  return h2_guard_close(c, g->kind == CONN_GUARD_RESETS ? H2_RAPID_RESET : H2_UNKNOWN_METHODS);
}
