/*
 * echo.c - the floor for the control round trip: a raw AF_UNIX stream
 * server that, per connection, reads one line, writes it back and closes.
 * One thread, blocking accept; no credentials check, no timeouts, no
 * parsing - the least a one-request-per-connection endpoint can do.
 * (Compiled by scripts/bench, not by CMake.)
 *
 *   echo SOCKPATH        runs until killed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: echo SOCKPATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof sa.sun_path) {
        fprintf(stderr, "echo: path too long\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(sa.sun_path);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 16) != 0) {
        fprintf(stderr, "echo: %s: %s\n", sa.sun_path, strerror(errno));
        return 2;
    }
    char buf[600];
    for (;;) {
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        size_t len = 0;
        while (len < sizeof buf) {
            ssize_t r = recv(c, buf + len, sizeof buf - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
            if (memchr(buf, '\n', len))
                break;
        }
        if (len)
            send(c, buf, len, MSG_NOSIGNAL);
        close(c);
    }
}
