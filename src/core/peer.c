/* Transport peer texts; see peer.h. */
#include "core/peer.h"

#include <string.h>
#include <strings.h>

bool peer_host(const char *peer, const char **host, size_t *len) {
  if (!peer) return false;
  if (strncmp(peer, "ipv4:", 5) == 0) {
    const char *ip = peer + 5;
    const char *colon = strrchr(ip, ':');
    *host = ip;
    *len = colon ? (size_t)(colon - ip) : strlen(ip);
    return true;
  }
  if (strncmp(peer, "ipv6:", 5) != 0) return false;
  const char *ip = peer + 5;
  const char *end = NULL;
  if (*ip == '[') {
    ip++;
    end = strchr(ip, ']');
  } else if (strncasecmp(ip, "%5B", 3) == 0) { /* how the 1.51 core writes it */
    ip += 3;
    end = strcasestr(ip, "%5D");
  }
  *host = ip;
  *len = end ? (size_t)(end - ip) : strlen(ip);
  return true;
}
