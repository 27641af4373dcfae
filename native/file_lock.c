/*
 * Advisory locks on temporary upload files (src/storage/upload-lock.ts), which Node does not expose:
 *   lockExclusive(fd) -> errno (0: locked; EWOULDBLOCK: another open file holds the lock)
 *   duplicate(fd) -> a new descriptor (close-on-exec) sharing the open file, and so its lock; -errno on failure
 * flock(2), not fcntl locks: those belong to the process and any close of the file drops them.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>

#include "addon.h"

static napi_value lock_exclusive(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r != 0 && errno == EINTR);
  return int_result(env, r == 0 ? 0 : errno);
}

static napi_value duplicate(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return int_result(env, copy >= 0 ? copy : -errno);
}

void file_lock_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"lockExclusive", NULL, lock_exclusive, NULL, NULL, NULL, napi_default, NULL},
      {"duplicate", NULL, duplicate, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
}
