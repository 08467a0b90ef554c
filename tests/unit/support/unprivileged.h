#ifndef PRODUCT_TESTS_UNPRIVILEGED_H
#define PRODUCT_TESTS_UNPRIVILEGED_H
/* File permission cases that hold for root too. Root reads a mode-0 file
 * (CAP_DAC_OVERRIDE), so a test of an unreadable file, run as root (the
 * image's build stage), would check nothing. Around such a case the calling
 * thread takes the file-system identity of an unprivileged user instead:
 * when the file-system uid leaves 0, the kernel drops the capabilities that
 * bypass file permissions, and gives them back when it returns to 0
 * (capabilities(7)). Other threads and the real/effective ids are untouched.
 * Not root: nothing to drop, permissions already apply. */
#include <sys/types.h>

#define UNPRIVILEGED_ID 65534 /* nobody / nogroup */

typedef struct fs_identity {
  uid_t uid;
  gid_t gid;
  int dropped;
} fs_identity;

/* Drops to UNPRIVILEGED_ID when running as root; fails the test when the
 * kernel refuses. The directories on the way to the file must be searchable
 * by others (mode 0711 or more) for the case to reach the file. */
void fs_identity_drop(fs_identity *saved);

/* Back to the identity fs_identity_drop saved. */
void fs_identity_restore(const fs_identity *saved);

#endif
