/* grpc.reflection ServerReflectionInfo: not served yet (serve_reflection is
 * off); the operability work replaces this file. */
#include "transport/server_internal.h"

int reflection_post(rpc_server *s, int slot, int version) {
  (void)s;
  (void)slot;
  (void)version;
  return -1;
}
