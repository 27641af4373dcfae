/*
 * Socket options Node does not expose:
 *   keepUrgentInline(socketFd) -> errno (0 on success)
 * sets SO_OOBINLINE on a control connection. FTP clients send the Telnet Synch before ABOR (RFC 959
 * §4.1.3, RFC 854) as TCP urgent data, and Linux takes the urgent byte out of the stream unless the
 * option is set: the LF of Python ftplib's urgent "ABOR\r\n", the IAC before a BSD client's DM.
 *   endWriting(socketFd) -> errno (0 on success)
 * shutdown(SHUT_WR) at once: the FIN after what the kernel holds. Node's end() does it a turn of the
 * event loop later (libuv waits for the socket to be writable), which a small download's 226 waited for.
 *   peerClosed(socketFd) -> 1 when the peer has closed its side (or the connection is gone), 0 if not,
 * -errno on failure. Asked of the kernel (poll(2), POLLRDHUP), which knows of a FIN before Node has
 * read it: an upload about to be committed checks that its client's control connection is still there.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "addon.h"

static napi_value keep_urgent_inline(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  int on = 1;
  return int_result(env, setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof on) == 0 ? 0 : errno);
}

static napi_value end_writing(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  return int_result(env, shutdown(fd, SHUT_WR) == 0 ? 0 : errno);
}

static napi_value peer_closed(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  struct pollfd watched = {.fd = fd, .events = POLLRDHUP};
  int ready = poll(&watched, 1, 0);
  if (ready < 0) return int_result(env, -errno);
  return int_result(env, ready > 0 && (watched.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0);
}

void socket_options_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"keepUrgentInline", NULL, keep_urgent_inline, NULL, NULL, NULL, napi_default, NULL},
      {"endWriting", NULL, end_writing, NULL, NULL, NULL, napi_default, NULL},
      {"peerClosed", NULL, peer_closed, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
}
