#ifndef C_EDGE_CRC_H
#define C_EDGE_CRC_H
// CRC32C (Castagnoli) with the SSE4.2 crc32 instruction, for the disk tier's
// record checksums. Swift has no way to emit the instruction itself. The
// result is the same as EdgeDisk's table-driven CRC32C.update for the same
// state; callers check edge_crc32c_hw_available() once and keep the tables
// for machines without SSE4.2 (and for other architectures). No state.
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>

/// 1 when this CPU has SSE4.2 (and with it the crc32 instruction).
static inline int edge_crc32c_hw_available(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_SSE4_2) != 0;
}

/// The CRC32C register after `n` bytes at `p`, from `state` (the register,
/// not the finished checksum: callers invert before and after, as the tables do).
__attribute__((target("sse4.2")))
static inline uint32_t edge_crc32c_hw(uint32_t state, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t c = state;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = __builtin_ia32_crc32di(c, w);
        b += 8; n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n > 0) { c32 = __builtin_ia32_crc32qi(c32, *b); b++; n--; }
    return c32;
}
#else
static inline int edge_crc32c_hw_available(void) { return 0; }
static inline uint32_t edge_crc32c_hw(uint32_t state, const void *p, size_t n) { (void)p; (void)n; return state; }
#endif
#endif
