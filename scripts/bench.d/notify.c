/*
 * notify.c - the floor for the systemd section: a minimal hand-written
 * Type=notify service in C. It sends READY=1 to $NOTIFY_SOCKET (sd_notify's
 * datagram protocol, as luasvc does), waits for SIGTERM, sends STOPPING=1
 * and exits 0.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void notify(const char *msg)
{
    const char *p = getenv("NOTIFY_SOCKET");
    if (!p || !*p || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(p);
    memcpy(sa.sun_path, p, n);
    if (p[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (p[0] != '@')));
    close(fd);
}

int main(void)
{
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    notify("READY=1\nSTATUS=running");
    sigwait(&set, &sig);
    notify("STOPPING=1");
    return 0;
}
