/*
 * edgeftp's native addon (Linux): the few things Node does not expose and a file server needs to
 * match the C servers, each driven by libuv so the event loop never blocks. Built by `npm install`
 * (node-gyp); without it, edgeftp runs on Node's own APIs (src/native.ts).
 */
#include "addon.h"

static napi_value init(napi_env env, napi_value exports) {
  kernel_copy_init(env, exports);
  copy_now_init(env, exports);
  list_directory_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
