#define _GNU_SOURCE
#include <pthread.h>
#include <errno.h>
#include <sys/uio.h>
#include <sched.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <stdint.h>
#include "CEdgeIO.h"

int edge_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int edge_name_thread(const char *name) {
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = 0;
    return pthread_setname_np(pthread_self(), cut);
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

#include <errno.h>
#include <string.h>
#include <limits.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

/// Opens `path` (relative, normalized) under the directory `dirfd` so that
/// nothing it names, through ".." or a symbolic link, can resolve outside that
/// directory: openat2 with RESOLVE_BENEATH (and RESOLVE_NO_SYMLINKS unless
/// `allow_links`). Kernels without openat2 get a walk that opens each
/// component with O_NOFOLLOW, refusing every link in either mode.
int edge_open_beneath(int dirfd, const char *path, int flags, int allow_links) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (allow_links ? 0 : RESOLVE_NO_SYMLINKS);
    long r;
    do { r = syscall(SYS_openat2, dirfd, path, &how, sizeof how); } while (r < 0 && errno == EINTR);
    if (r >= 0 || errno != ENOSYS) return (int)r;

    char part[NAME_MAX + 1];
    int cur = dirfd;
    const char *p = path;
    for (;;) {
        while (*p == '/') p++;
        const char *e = p;
        while (*e && *e != '/') e++;
        size_t n = (size_t)(e - p);
        if (n == 0) n = 1, p = ".";   /* the directory itself */
        if (n > NAME_MAX) { if (cur != dirfd) close(cur); errno = ENAMETOOLONG; return -1; }
        memcpy(part, p, n);
        part[n] = 0;
        if (strcmp(part, "..") == 0) { if (cur != dirfd) close(cur); errno = EXDEV; return -1; }
        while (*e == '/') e++;
        int last = *e == 0;
        int fd = openat(cur, part, last ? (flags | O_NOFOLLOW | O_CLOEXEC) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        int saved = errno;
        if (cur != dirfd) close(cur);
        if (fd < 0) { errno = saved; return -1; }
        if (last) return fd;
        cur = fd;
        p = e;
    }
}

int edge_open_directory(const char *path) { return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC); }

long long edge_cached_pages(int fd, long long off, long long len) {
    /* cachestat(2): syscall 451 on every architecture; glibc has no wrapper yet. */
    struct { uint64_t off, len; } range = { (uint64_t)off, (uint64_t)len };
    struct { uint64_t cache, dirty, writeback, evicted, recently_evicted; } cs = { 0, 0, 0, 0, 0 };
    if (syscall(451, fd, &range, &cs, 0) != 0) return -1;
    return (long long)cs.cache;
}

long edge_pread_nowait(int fd, void *buf, size_t n, long long off) {
#if defined(RWF_NOWAIT)
    struct iovec v = { buf, n };
    return (long)preadv2(fd, &v, 1, (off_t)off, RWF_NOWAIT);
#else
    (void)fd; (void)buf; (void)n; (void)off;
    errno = EOPNOTSUPP;
    return -1;
#endif
}
