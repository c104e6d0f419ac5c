/*
 * rawsend.c - test tool: send raw bytes to a control endpoint and print the
 * reply. Lets the specs send what the luasvc client never would
 * (malformed, truncated, oversized requests).
 *   rawsend SOCKET_PATH [FILE]   bytes from FILE (default stdin); prints
 *                                the reply, exit 0 if one came back
 *   rawsend --silent SOCKET_PATH N READY
 *                                N clients that connect and send nothing
 *                                (connects that would wait are given up);
 *                                writes how many connected to the file
 *                                READY, then holds them until killed
 *   rawsend --packet SOCKET_PATH FILE
 *                                FILE's bytes as one SOCK_SEQPACKET message
 *                                (a mailslot's raw writer, with a send
 *                                buffer as large as the system allows)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int silent(const char *path, int n, const char *ready)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            ok++;
        else if (fd >= 0)
            close(fd);
    }
    FILE *f = fopen(ready, "w");
    if (!f)
        return 2;
    fprintf(f, "%d\n", ok);
    fclose(f);
    for (;;)
        pause();
}

static int packet(const char *path, const char *file)
{
    FILE *in = fopen(file, "rb");
    if (!in) {
        perror(file);
        return 2;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    int big = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
        perror("send");
        return 1;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--packet") == 0)
        return packet(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "--silent") == 0)
        return silent(argv[2], atoi(argv[3]), argv[4]);
    if (argc < 2) {
        fprintf(stderr, "usage: rawsend SOCKET_PATH [FILE]\n");
        return 2;
    }
    FILE *in = argc > 2 ? fopen(argv[2], "rb") : stdin;
    if (!in) {
        perror(argv[2]);
        return 2;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char out[8192];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof out - 1 && (r = recv(fd, out + len, sizeof out - 1 - len, 0)) > 0)
        len += (size_t)r;
    close(fd);
    fwrite(out, 1, len, stdout);
    return len ? 0 : 1;
}
