/*
 * openNoSymlinks(path, flags) -> a descriptor, or -errno: openat2(2) of an absolute path with
 * RESOLVE_NO_SYMLINKS, so the kernel refuses (ELOOP) to follow a symlink anywhere on the way. A path
 * built below an account's real root, downwards only (no ".."), and opened this way is inside the
 * root whatever renames happen meanwhile: no /proc/self/fd readlink is needed to know where it
 * landed (see src/storage/pinned-paths.ts). -ENOSYS on kernels before 5.6.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static napi_value open_no_symlinks(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "openNoSymlinks(path, flags)");
    return NULL;
  }
  size_t length;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "openNoSymlinks: path must be a string");
    return NULL;
  }
  char *path = malloc(length + 1);
  if (path == NULL) return int_result(env, -ENOMEM);
  int32_t flags;
  if (napi_get_value_string_utf8(env, argv[0], path, length + 1, &length) != napi_ok || napi_get_value_int32(env, argv[1], &flags) != napi_ok) {
    free(path);
    napi_throw_type_error(env, NULL, "openNoSymlinks(path: string, flags: number)");
    return NULL;
  }
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned)flags | O_CLOEXEC;
  if (flags & O_CREAT) how.mode = 0666;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
  int err = errno;
  free(path);
  return int_result(env, fd >= 0 ? (int)fd : -err);
}

void open_no_symlinks_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"openNoSymlinks", NULL, open_no_symlinks, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
}
