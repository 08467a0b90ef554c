/* See unprivileged.h. */
#include "support/unprivileged.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/fsuid.h>
#include <unistd.h>

void fs_identity_drop(fs_identity *saved) {
  saved->uid = (uid_t)setfsuid((uid_t)-1); /* -1: no change, returns the current one */
  saved->gid = (gid_t)setfsgid((gid_t)-1);
  saved->dropped = 0;
  if (geteuid() != 0) return;
  /* The gid first: once the uid is not 0, setfsgid would need CAP_SETGID. */
  setfsgid(UNPRIVILEGED_ID);
  setfsuid(UNPRIVILEGED_ID);
  if ((uid_t)setfsuid((uid_t)-1) != UNPRIVILEGED_ID || (gid_t)setfsgid((gid_t)-1) != UNPRIVILEGED_ID)
    fail_msg("cannot take the file-system identity %d (no CAP_SETUID?)", UNPRIVILEGED_ID);
  saved->dropped = 1;
}

void fs_identity_restore(const fs_identity *saved) {
  if (!saved->dropped) return;
  setfsuid(saved->uid);
  setfsgid(saved->gid);
  if ((uid_t)setfsuid((uid_t)-1) != saved->uid || (gid_t)setfsgid((gid_t)-1) != saved->gid)
    fail_msg("cannot restore the file-system identity");
}
