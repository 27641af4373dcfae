/*
 * null-ftpd: the benchmark's ceiling for the small-file rows, not a server.
 *
 * It speaks just enough FTP for the "small" workload (login, TYPE, EPSV, STOR, RETR, QUIT) and does
 * no work behind it: no accounts, no paths, no files. A STOR's bytes are read and dropped; a RETR
 * sends 4 KiB from memory. What is left per file is the protocol itself (three replies, a data
 * connection's accept and close) and the benchmark client's own cost, so its rate bounds what any
 * server can reach with this client on this machine.
 *
 * One process per control connection (fork, as Pure-FTPd and vsftpd), blocking calls, one passive
 * listener per session reused by every EPSV. Usage: null-ftpd PORT PASV_FIRST PASV_LAST
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char data[256 * 1024];

static int listen_on(int port, int backlog) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, backlog) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void reply(int fd, const char *text) {
  if (write(fd, text, strlen(text)) < 0) _exit(0);
}

/* One command line (CRLF stripped) into line; 0 at end of stream. */
static int read_line(int fd, char *buf, size_t *have, char *line, size_t size) {
  for (;;) {
    char *lf = memchr(buf, '\n', *have);
    if (lf) {
      size_t n = lf - buf + 1, len = n > 1 && lf[-1] == '\r' ? n - 2 : n - 1;
      if (len >= size) len = size - 1;
      memcpy(line, buf, len);
      line[len] = 0;
      memmove(buf, buf + n, *have - n);
      *have -= n;
      return 1;
    }
    if (*have == 4096) *have = 0; /* an overlong line is dropped */
    ssize_t r = read(fd, buf + *have, 4096 - *have);
    if (r <= 0) return 0;
    *have += r;
  }
}

static void session(int ctl, int first, int last) {
  char buf[4096], line[4096], text[128];
  size_t have = 0;
  int one = 1, pasv = -1, pasv_port = 0;
  setsockopt(ctl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  reply(ctl, "220 null-ftpd\r\n");
  while (read_line(ctl, buf, &have, line, sizeof line)) {
    if (!strncasecmp(line, "USER", 4)) reply(ctl, "331 any password\r\n");
    else if (!strncasecmp(line, "PASS", 4)) reply(ctl, "230 logged in\r\n");
    else if (!strncasecmp(line, "EPSV", 4)) {
      for (int p = first; pasv < 0 && p <= last; p++)
        if ((pasv = listen_on(p, 4)) >= 0) pasv_port = p;
      if (pasv < 0) { reply(ctl, "425 no port\r\n"); continue; }
      snprintf(text, sizeof text, "229 passive (|||%d|)\r\n", pasv_port);
      reply(ctl, text);
    } else if (!strncasecmp(line, "STOR", 4) || !strncasecmp(line, "RETR", 4)) {
      int conn = pasv < 0 ? -1 : accept(pasv, NULL, NULL);
      if (conn < 0) { reply(ctl, "425 no data connection\r\n"); continue; }
      reply(ctl, "150 data\r\n");
      if (line[0] == 'S' || line[0] == 's') {
        while (read(conn, data, sizeof data) > 0) {}
      } else if (write(conn, data, 4096) != 4096) {
        close(conn);
        reply(ctl, "426 aborted\r\n");
        continue;
      }
      close(conn);
      reply(ctl, "226 done\r\n");
    } else if (!strncasecmp(line, "QUIT", 4)) {
      reply(ctl, "221 bye\r\n");
      break;
    } else reply(ctl, "200 ok\r\n");
  }
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: null-ftpd PORT PASV_FIRST PASV_LAST\n");
    return 2;
  }
  int lfd = listen_on(atoi(argv[1]), 128);
  if (lfd < 0) {
    perror("null-ftpd: listen");
    return 1;
  }
  memset(data, 'a', sizeof data);
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  for (;;) {
    int ctl = accept(lfd, NULL, NULL);
    if (ctl < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fork() == 0) {
      close(lfd);
      session(ctl, atoi(argv[2]), atoi(argv[3]));
    }
    close(ctl);
  }
}
