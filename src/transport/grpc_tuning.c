/* See grpc_tuning.h.
 *
 * Debian's abseil leaves absl::Mutex deadlock detection on: every lock the
 * core takes records lock-order edges in a global graph (perf on GetProduct:
 * ~4% of server CPU in libabsl_graphcycles_internal and synchronization).
 * Detection is a debugging aid; grpc's own builds turn it off in release. It
 * is a C++ function, so it is looked up by its mangled name for the abseil
 * Debian 12 ships (inline namespace "debian3"); when the symbol is absent
 * (another abseil) nothing changes.
 *
 * The 1.51 core's "tcp_read_chunks" experiment (on by default) allocates
 * every read buffer in 8 KiB units, and a connection waiting for data keeps
 * the unused tail of its last one: 8,240 bytes of heap for every idle
 * connection (massif, 1,000 idle connections; docs/http2-limits.md). With
 * it off the core sizes its read buffers from GRPC_ARG_TCP_READ_CHUNK_SIZE
 * and what the connection has been sending, and server.c starts them small.
 * The core reads GRPC_EXPERIMENTS once, on first use, so it is set before
 * grpc_init(); only on the core this was measured on (another may not know
 * the name, or size reads otherwise), and never against a choice the
 * operator made for this experiment. */
#include "transport/grpc_tuning.h"

#include <dlfcn.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define ABSL_SET_DEADLOCK_MODE "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE"
#define ABSL_ON_DEADLOCK_CYCLE_IGNORE 0 /* absl::OnDeadlockCycle::kIgnore */

#define EXPERIMENTS_ENV "GRPC_EXPERIMENTS"
#define READ_CHUNKS "tcp_read_chunks"

typedef void (*set_mode_fn)(int mode);

static void deadlock_detection_off(void) {
  void *sym = dlsym(RTLD_DEFAULT, ABSL_SET_DEADLOCK_MODE);
  if (!sym) return;
  set_mode_fn set_mode;
  *(void **)&set_mode = sym; /* object -> function pointer, as POSIX allows */
  set_mode(ABSL_ON_DEADLOCK_CYCLE_IGNORE);
}

const char *grpc_tuning_experiments(const char *core_version, const char *have, char *buf,
                                    size_t len) {
  if (!core_version || strcmp(core_version, PRODUCT_GRPC_CORE_VERSION) != 0) return NULL;
  if (have && strstr(have, READ_CHUNKS)) return NULL; /* the operator's choice stands */
  int n = have && *have ? snprintf(buf, len, "%s,-%s", have, READ_CHUNKS)
                        : snprintf(buf, len, "-%s", READ_CHUNKS);
  if (n < 0 || (size_t)n >= len) return NULL;
  return buf;
}

static void read_chunks_off(void) {
  const char *have = getenv(EXPERIMENTS_ENV);
  size_t len = (have ? strlen(have) : 0) + sizeof(READ_CHUNKS) + 2;
  char *buf = malloc(len);
  if (!buf) {
    log_msg(LOG_WARN, "out of memory: the core keeps 8 KiB read buffers on idle connections");
    return;
  }
  const char *want = grpc_tuning_experiments(grpc_version_string(), have, buf, len);
  if (want && setenv(EXPERIMENTS_ENV, want, 1) != 0)
    log_msg(LOG_WARN, "cannot set " EXPERIMENTS_ENV ": the core keeps 8 KiB read buffers on idle "
                      "connections");
  free(buf);
}

void grpc_tuning_apply(void) {
  deadlock_detection_off();
  read_chunks_off();
}
