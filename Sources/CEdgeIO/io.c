#define _GNU_SOURCE
#include <sched.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include "CEdgeIO.h"

int edge_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int edge_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int edge_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

long edge_sendfile(int out_fd, int in_fd, long *offset, unsigned long count) {
    off_t off = (off_t)*offset;
    ssize_t n = sendfile(out_fd, in_fd, &off, count);
    *offset = (long)off;
    return (long)n;
}

int edge_accept_blocking(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

int edge_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
