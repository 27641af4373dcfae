/*
 * edgeftp's native addon (Linux): the few things Node does not expose and a file server needs to
 * match the C servers, each driven by libuv so the event loop never blocks. Built by `npm install`
 * (node-gyp); without it, edgeftp runs on Node's own APIs (src/native.ts).
 */
#include "addon.h"

void call_javascript(napi_env env, napi_async_context context, napi_ref callback, size_t argc, napi_value *argv) {
  napi_value function, receiver, result;
  napi_get_reference_value(env, callback, &function);
  napi_get_global(env, &receiver); /* napi_make_callback wants an object as `this` */
  if (napi_make_callback(env, context, receiver, function, argc, argv, &result) == napi_pending_exception) {
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
}

int fd_argument(napi_env env, napi_callback_info info, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, NULL, "expected (fd >= 0)");
    return 0;
  }
  return 1;
}

napi_value int_result(napi_env env, int value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  kernel_copy_init(env, exports);
  copy_now_init(env, exports);
  list_directory_init(env, exports);
  socket_options_init(env, exports);
  file_lock_init(env, exports);
  open_no_symlinks_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
