#ifndef C_EDGE_IO_H
#define C_EDGE_IO_H
// Linux I/O calls that Swift's Glibc module does not export, wrapped so that
// Swift never touches the packed `struct epoll_event`.
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <string.h>
#include <malloc.h>


/// pread that never waits for the disk (io.c: preadv2 with RWF_NOWAIT, Linux
/// 4.14+): the bytes the page cache holds, or -1 with EAGAIN when a read would
/// block (EOPNOTSUPP where the kernel or file system cannot say).
long edge_pread_nowait(int fd, void *buf, size_t n, long long off);

/// How many pages of `len` bytes of `fd` from `off` the page cache holds now
/// (cachestat(2), Linux 6.5+), or -1 where the kernel cannot say.
long long edge_cached_pages(int fd, long long off, long long len);

/// Gives the allocator's free pages back to the system (glibc malloc_trim).
static inline int edge_malloc_trim(void) { return malloc_trim(0); }

/// The usable size of a block malloc handed out (glibc malloc_usable_size).
static inline size_t edge_malloc_usable_size(void *p) { return malloc_usable_size(p); }

enum {
    EDGE_EPOLLIN = EPOLLIN, EDGE_EPOLLOUT = EPOLLOUT, EDGE_EPOLLRDHUP = EPOLLRDHUP,
    EDGE_EPOLLHUP = EPOLLHUP, EDGE_EPOLLERR = EPOLLERR, EDGE_EPOLLET = (int)EPOLLET
};

static inline int edge_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static inline int edge_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}
static inline int edge_epoll_add(int epfd, int fd, uint32_t events, uint64_t token) {
    return edge_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events, token);
}
static inline int edge_epoll_del(int epfd, int fd) {
    return edge_epoll_ctl(epfd, EPOLL_CTL_DEL, fd, 0, 0);
}

/// Waits and unpacks up to `max` events into `tokens` / `events` (max <= 1024).
static inline int edge_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout) {
    struct epoll_event evs[1024];
    if (max > 1024) max = 1024;
    int n = epoll_wait(epfd, evs, max, timeout);
    for (int i = 0; i < n; i++) { tokens[i] = evs[i].data.u64; events[i] = evs[i].events; }
    return n;
}

static inline int edge_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/// Pins the calling thread to one CPU (io.c; needs _GNU_SOURCE).
int edge_pin_to_cpu(int cpu);
/// Names the calling thread (the first 15 bytes of `name`: top -H, ps -L, gdb show it).
int edge_name_thread(const char *name);
/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (io.c; needs _GNU_SOURCE).
int edge_accept(int fd, struct sockaddr *addr, socklen_t *len);
/// accept4 with close-on-exec only (a blocking socket: the admin API).
int edge_accept_blocking(int fd);
/// pipe2 with close-on-exec on both ends.
int edge_pipe_cloexec(int fds[2]);
/// An anonymous memory file (memfd_create with close-on-exec); -1 on error.
int edge_memfd(const char *name);
/// sendfile(2): up to `count` bytes of `in_fd` from `*offset` to `out_fd`.
long edge_sendfile(int out_fd, int in_fd, long *offset, unsigned long count);
/// Opens `path` under `dirfd` without resolving outside it (io.c): openat2
/// RESOLVE_BENEATH, symbolic links refused unless `allow_links` (then only
/// those that stay inside). -1 with errno (ELOOP, EXDEV, ENOENT...) otherwise.
int edge_open_beneath(int dirfd, const char *path, int flags, int allow_links);
/// An O_PATH descriptor for a directory (the root `edge_open_beneath` starts from).
int edge_open_directory(const char *path);
#endif
