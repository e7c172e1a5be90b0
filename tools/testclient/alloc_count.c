// LD_PRELOAD shim for the allocation-count tests (Tests/EdgeProxyTests/AllocationTests.swift):
// every malloc, calloc, realloc and aligned allocation in the process adds one to a
// counter that lives in the file named by EDGE_ALLOC_COUNT_FILE (mapped shared), so
// the test reads the count from outside while edged runs. EDGE_ALLOC_COUNT_THREADS=P
// counts only on threads whose name starts with P ("edge-worker": the request path,
// not the once-a-second sampler or the admin thread). The allocations themselves are
// glibc's (__libc_*), untouched. Without EDGE_ALLOC_COUNT_FILE it counts nothing.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic unsigned long *counter;
static const char *prefix;
static size_t prefix_len;
// 1 once this thread's name matched (names are set once, at thread start).
static __thread __attribute__((tls_model("initial-exec"))) int counted_thread;

__attribute__((constructor)) static void map_counter(void) {
    const char *path = getenv("EDGE_ALLOC_COUNT_FILE");
    if (!path) return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    void *m = mmap(NULL, sizeof(unsigned long), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    prefix = getenv("EDGE_ALLOC_COUNT_THREADS");
    if (prefix) prefix_len = strlen(prefix);
    if (m != MAP_FAILED) counter = m;
}

static inline void count(void) {
    if (!counter) return;
    if (prefix && !counted_thread) {
        char name[16] = {0};
        if (prctl(PR_GET_NAME, name) != 0 || strncmp(name, prefix, prefix_len) != 0) return;
        counted_thread = 1;
    }
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t align, size_t n) { count(); return __libc_memalign(align, n); }
void *aligned_alloc(size_t align, size_t n) { count(); return __libc_memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    count();
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
