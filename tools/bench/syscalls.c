// The cost of the socket syscalls edged's transport could use, without the
// network in the way: each call returns EAGAIN at once (an empty socket for
// the reads, a full one for the writes), so what is timed is the path through
// the kernel to the socket, not TCP. sysRead (Sources/EdgeIO/Syscall.swift)
// uses recv because of the first row.
// usage: cc -O2 -o /tmp/syscalls tools/bench/syscalls.c && taskset -c 0 /tmp/syscalls
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

/// A connected loopback TCP pair; returns the client end (non-blocking), the server end in *peer.
static int pair(int *peer) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000001);
    socklen_t al = sizeof a;
    if (bind(l, (void *)&a, sizeof a) || listen(l, 1) || getsockname(l, (void *)&a, &al)) return -1;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (void *)&a, sizeof a)) return -1;
    *peer = accept(l, 0, 0);
    close(l);
    fcntl(c, F_SETFL, O_NONBLOCK);
    return c;
}

int main(void) {
    enum { N = 2000000 };
    int peer, c = pair(&peer);
    if (c < 0 || peer < 0) { perror("socket pair"); return 1; }
    static char buf[1 << 16];
    for (int round = 0; round < 3; round++) {
        double t0 = now();
        for (int i = 0; i < N; i++) (void)!read(c, buf, 4096);
        double t1 = now();
        for (int i = 0; i < N; i++) (void)!recv(c, buf, 4096, 0);
        double t2 = now();
        printf("empty socket  read %4.0f ns   recv %4.0f ns\n", (t1 - t0) / N * 1e9, (t2 - t1) / N * 1e9);
    }
    // Fill the send side until it would block, then time writes that cannot go.
    memset(buf, 'x', sizeof buf);
    while (write(c, buf, sizeof buf) > 0) {}
    char head[200], body[1024];
    struct iovec iov[2] = {{head, sizeof head}, {body, sizeof body}};
    for (int round = 0; round < 3; round++) {
        double t0 = now();
        for (int i = 0; i < N; i++) (void)!writev(c, iov, 2);
        double t1 = now();
        for (int i = 0; i < N; i++) { struct msghdr m = {0}; m.msg_iov = iov; m.msg_iovlen = 2; (void)!sendmsg(c, &m, MSG_NOSIGNAL); }
        double t2 = now();
        for (int i = 0; i < N; i++) (void)!send(c, body, sizeof body, MSG_NOSIGNAL);
        double t3 = now();
        printf("full socket   writev(2 pieces) %4.0f ns   sendmsg(2 pieces) %4.0f ns   send(1 piece) %4.0f ns\n",
               (t1 - t0) / N * 1e9, (t2 - t1) / N * 1e9, (t3 - t2) / N * 1e9);
    }
    return 0;
}
