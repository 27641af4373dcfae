/* edgeftp's native addon: the parts (each in its own file) and what they share. */
#ifndef EDGEFTP_ADDON_H
#define EDGEFTP_ADDON_H

#include <errno.h>
#include <node_api.h>
#include <uv.h>

/* Zero-copy transfers: sendFile, receiveFile, cancel, progress, inFlight (kernel_copy.c). */
void kernel_copy_init(napi_env env, napi_value exports);
/* The first bytes of a transfer at once, on the event loop: sendNow, receiveNow (copy_now.c). */
void copy_now_init(napi_env env, napi_value exports);
/* Directory listings in batches: openDirectory, readBatch, closeDirectory (list_directory.c). */
void list_directory_init(napi_env env, napi_value exports);
/* Socket options Node does not expose: keepUrgentInline (socket_options.c). */
void socket_options_init(napi_env env, napi_value exports);
/* Locks on temporary upload files: lockExclusive, duplicate (file_lock.c). */
void file_lock_init(napi_env env, napi_value exports);
/* An open that follows no symlink: openNoSymlinks (open_no_symlinks.c). */
void open_no_symlinks_init(napi_env env, napi_value exports);

/*
 * Calls a JavaScript callback from a libuv callback (inside a handle scope the caller opened), as
 * its async context; an exception it throws becomes the process's uncaught exception.
 */
void call_javascript(napi_env env, napi_async_context context, napi_ref callback, size_t argc, napi_value *argv);

/* The one descriptor argument of a call (fd >= 0); 0, with a TypeError thrown, when it is not one. */
int fd_argument(napi_env env, napi_callback_info info, int32_t *fd);

/* A JavaScript number for an int result (an errno, a descriptor). */
napi_value int_result(napi_env env, int value);

/*
 * The errno to report for a write into the file that failed after its bytes were taken off the
 * socket. Those bytes are gone: an error that tells the caller to redo the upload through a stream
 * (kernel-copy.ts's KERNEL_COPY_UNAVAILABLE: no splice here, no descriptor or memory to spare)
 * would make the stream store the file without them, so it becomes EIO.
 */
static inline int consumed_write_error(int err) {
  return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == EMFILE || err == ENFILE || err == ENOMEM ? EIO : err;
}

static inline uv_loop_t *uv_loop_of(napi_env env) {
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  return loop;
}

#endif
