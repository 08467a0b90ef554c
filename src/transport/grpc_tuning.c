/* See grpc_tuning.h.
 *
 * Debian's abseil leaves absl::Mutex deadlock detection on: every lock the
 * core takes records lock-order edges in a global graph (perf on GetProduct:
 * ~4% of server CPU in libabsl_graphcycles_internal and synchronization).
 * Detection is a debugging aid; grpc's own builds turn it off in release. It
 * is a C++ function, so it is looked up by its mangled name for the abseil
 * Debian 12 ships (inline namespace "debian3"); when the symbol is absent
 * (another abseil) nothing changes. */
#include "transport/grpc_tuning.h"

#include <dlfcn.h>

#define ABSL_SET_DEADLOCK_MODE "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE"
#define ABSL_ON_DEADLOCK_CYCLE_IGNORE 0 /* absl::OnDeadlockCycle::kIgnore */

typedef void (*set_mode_fn)(int mode);

void grpc_tuning_apply(void) {
  void *sym = dlsym(RTLD_DEFAULT, ABSL_SET_DEADLOCK_MODE);
  if (!sym) return;
  set_mode_fn set_mode;
  *(void **)&set_mode = sym; /* object -> function pointer, as POSIX allows */
  set_mode(ABSL_ON_DEADLOCK_CYCLE_IGNORE);
}
