// heapBytes (Sources/EdgeIO/Syscall.swift): what the allocator holds for an
// object, which the cache charges for the handles of bodies kept outside
// their blocks.
import Testing
@testable import EdgeIO

@Suite struct HeapBytesTests {
    final class Small { var a = 1 }
    final class Large { var a = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) }

    @Test func chunksAreWholeAndGrowWithTheObject() {
        let s = Small(), l = Large()
        // At least the object (a 16-byte header and its fields) and 8 bytes of the chunk's own.
        // (glibc rounds chunks to 16 bytes; under AddressSanitizer the usable size is the size asked for.)
        #expect(heapBytes(s) >= 16 + 8 + 8)
        #expect(heapBytes(l) >= 16 + 32 * 8 + 8 && heapBytes(l) > heapBytes(s))
        #expect(heapBytes(s, l) == heapBytes(s) + heapBytes(l))
    }
}
