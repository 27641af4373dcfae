/*
 * The first bytes of a transfer, copied at once on the event loop (Linux): what kernel_copy.c does
 * on the thread pool, for when it is expected to take microseconds (a small file in the page cache,
 * an upload whose bytes are already waiting in the socket). A trip through the pool (a job, a
 * uv_poll, a timer, a pipe for uploads, two thread hand-offs) costs far more than such a copy. The
 * caller times each call and sends the next ones to the pool after a slow one
 * (src/data/kernel-copy.ts); what is not done here (the socket would block, more than maxBytes)
 * goes on with sendFile/receiveFile from where this stopped.
 *
 * Exports:
 *   sendNow(socketFd, fileFd, position, maxBytes) -> [errno, bytes, state]      sendfile(2)
 *   receiveNow(socketFd, fileFd, position, limit, maxBytes) -> [errno, bytes, state]
 *     recv(2) into a buffer + pwrite(2): for a few KiB, cheaper than setting up a pipe to splice.
 *   state: 0 the socket would block or maxBytes were moved (go on), 1 ended (the file's EOF, the
 *   peer's FIN), 2 full (receive: `limit` bytes written, -1 for none, and the peer has more).
 * errno is 0, or the positive errno value of the call that failed after `bytes` moved.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"

#define GOES_ON 0
#define ENDED 1
#define FULL 2

/* An upload's bytes pass through this buffer; only the loop thread uses it. */
#define RECEIVE_BUFFER_BYTES (64 * 1024)
static char receive_buffer[RECEIVE_BUFFER_BYTES];

static int send_now(int socket, int file, off_t position, int64_t max, int64_t *moved, int *state) {
  while (*moved < max) {
    ssize_t n = sendfile(socket, file, &position, (size_t)(max - *moved));
    if (n > 0) {
      *moved += n;
    } else if (n == 0) {
      *state = ENDED;
      return 0;
    } else if (errno != EINTR) {
      return errno == EAGAIN ? 0 : errno;
    }
  }
  return 0;
}

static int write_all(int file, const char *bytes, size_t length, off_t position) {
  while (length > 0) {
    ssize_t n = pwrite(file, bytes, length, position);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    bytes += n;
    length -= (size_t)n;
    position += n;
  }
  return 0;
}

static int receive_now(int socket, int file, off_t position, int64_t limit, int64_t max, int64_t *moved, int *state) {
  while (*moved < max) {
    int64_t want = max - *moved;
    if (want > RECEIVE_BUFFER_BYTES) want = RECEIVE_BUFFER_BYTES;
    if (limit >= 0 && limit - *moved < want) want = limit - *moved;
    if (want == 0) {
      /* At the limit: whether the peer has more, has ended, or has not said yet. */
      char byte;
      ssize_t n = recv(socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) *state = FULL;
      else if (n == 0) *state = ENDED;
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN) return errno;
      return 0;
    }
    ssize_t n = recv(socket, receive_buffer, (size_t)want, MSG_DONTWAIT);
    if (n > 0) {
      int err = write_all(file, receive_buffer, (size_t)n, position + *moved);
      if (err != 0) return consumed_write_error(err);
      *moved += n;
    } else if (n == 0) {
      *state = ENDED;
      return 0;
    } else if (errno != EINTR) {
      return errno == EAGAIN ? 0 : errno;
    }
  }
  return 0;
}

static napi_value outcome(napi_env env, int err, int64_t moved, int state) {
  napi_value result, value;
  napi_create_array_with_length(env, 3, &result);
  napi_create_int32(env, err, &value);
  napi_set_element(env, result, 0, value);
  napi_create_double(env, (double)moved, &value);
  napi_set_element(env, result, 1, value);
  napi_create_int32(env, state, &value);
  napi_set_element(env, result, 2, value);
  return result;
}

static napi_value copy_now(napi_env env, napi_callback_info info, int receive) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t expected = receive ? 5 : 4;
  int32_t socket_fd, file_fd;
  int64_t position, limit = -1, max;
  if (argc < expected || napi_get_value_int32(env, argv[0], &socket_fd) != napi_ok || napi_get_value_int32(env, argv[1], &file_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok || (receive && napi_get_value_int64(env, argv[3], &limit) != napi_ok) ||
      napi_get_value_int64(env, argv[expected - 1], &max) != napi_ok || socket_fd < 0 || file_fd < 0 || position < 0 || limit < -1 || max < 0) {
    napi_throw_type_error(env, NULL, receive ? "expected (socketFd >= 0, fileFd >= 0, position >= 0, limit >= -1, maxBytes >= 0)"
                                             : "expected (socketFd >= 0, fileFd >= 0, position >= 0, maxBytes >= 0)");
    return NULL;
  }
  int64_t moved = 0;
  int state = GOES_ON;
  int err = receive ? receive_now(socket_fd, file_fd, (off_t)position, limit, max, &moved, &state)
                    : send_now(socket_fd, file_fd, (off_t)position, max, &moved, &state);
  return outcome(env, err, moved, state);
}

static napi_value send_now_binding(napi_env env, napi_callback_info info) { return copy_now(env, info, 0); }
static napi_value receive_now_binding(napi_env env, napi_callback_info info) { return copy_now(env, info, 1); }

void copy_now_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"sendNow", NULL, send_now_binding, NULL, NULL, NULL, napi_default, NULL},
      {"receiveNow", NULL, receive_now_binding, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
}
