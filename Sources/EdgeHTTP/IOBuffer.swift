// A growable byte buffer owned by exactly one connection on one loop thread.
// It is a class so that it is never copied by accident; it is not thread-safe.

/// A contiguous byte buffer with a read index and a write index.
///
/// Bytes in `readIndex..<writeIndex` are pending; the space after `writeIndex`
/// is free. `reserve` compacts before it grows, so a buffer that is drained as
/// fast as it is filled never reallocates.
public final class IOBuffer {
    public private(set) var base: UnsafeMutablePointer<UInt8>
    public private(set) var capacity: Int
    public var readIndex = 0
    public var writeIndex = 0

    public init(capacity: Int) {
        self.capacity = max(capacity, 16)
        self.base = UnsafeMutablePointer<UInt8>.allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inlinable @inline(__always) public var readableBytes: Int { writeIndex - readIndex }
    @inlinable @inline(__always) public var isEmpty: Bool { writeIndex == readIndex }
    @inlinable @inline(__always) public var writableBytes: Int { capacity - writeIndex }
    @inlinable @inline(__always) public var readPointer: UnsafeMutablePointer<UInt8> { base + readIndex }
    @inlinable @inline(__always) public var writePointer: UnsafeMutablePointer<UInt8> { base + writeIndex }

    /// The pending bytes, valid until the next mutation.
    @inlinable @inline(__always) public var readView: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + readIndex, count: writeIndex - readIndex)
    }

    @inlinable @inline(__always) public func consume(_ n: Int) {
        readIndex += n
        if readIndex == writeIndex { readIndex = 0; writeIndex = 0 }
    }

    @inlinable public func clear() { readIndex = 0; writeIndex = 0 }

    /// Moves pending bytes to the front.
    public func compact() {
        guard readIndex > 0 else { return }
        let n = readableBytes
        if n > 0 { (base).update(from: base + readIndex, count: n) }
        readIndex = 0
        writeIndex = n
    }

    /// Ensures at least `n` free bytes after `writeIndex`.
    @inlinable @inline(__always) public func reserve(_ n: Int) {
        if capacity - writeIndex >= n { return }
        reserveSlow(n)
    }

    @usableFromInline @inline(never) func reserveSlow(_ n: Int) {
        if readIndex > 0 && capacity - readableBytes >= n {
            compact()
            return
        }
        compact()
        var newCap = capacity * 2
        while newCap - writeIndex < n { newCap *= 2 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: newCap)
        nb.update(from: base, count: writeIndex)
        base.deallocate()
        base = nb
        capacity = newCap
    }

    /// Shrinks back to `capacity` bytes when empty and larger than that.
    public func shrink(to cap: Int) {
        guard isEmpty, capacity > cap else { return }
        base.deallocate()
        base = UnsafeMutablePointer<UInt8>.allocate(capacity: cap)
        capacity = cap
        readIndex = 0; writeIndex = 0
    }

    @inlinable @inline(__always) public func append(_ p: UnsafeRawPointer, count: Int) {
        guard count > 0 else { return }
        reserve(count)
        (base + writeIndex).update(from: p.assumingMemoryBound(to: UInt8.self), count: count)
        writeIndex += count
    }

    @inlinable @inline(__always) public func append(_ bytes: UnsafeRawBufferPointer) {
        if let b = bytes.baseAddress { append(b, count: bytes.count) }
    }

    @inlinable @inline(__always) public func append(_ s: StaticString) {
        append(s.utf8Start, count: s.utf8CodeUnitCount)
    }

    @inlinable @inline(__always) public func append(byte: UInt8) {
        reserve(1)
        base[writeIndex] = byte
        writeIndex += 1
    }

    @inlinable public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public func append(string: String) {
        var s = string
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `v` in decimal (v >= 0).
    @inlinable public func append(decimal v: Int64) {
        reserve(20)
        if v == 0 { base[writeIndex] = 48; writeIndex += 1; return }
        var x = v
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 bytes scratch
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { t in
            while x > 0 { t[n] = UInt8(48 + x % 10); x /= 10; n += 1 }
            for i in 0..<n { base[writeIndex + i] = t[n - 1 - i] }
        }
        writeIndex += n
    }

    /// Appends `v` as exactly 16 lowercase hexadecimal digits (leading zeros kept).
    @inlinable public func append(hex16 v: UInt64) {
        reserve(16)
        let p = UnsafeMutableRawPointer(base + writeIndex)
        p.storeBytes(of: IOBuffer.hexDigits(UInt32(truncatingIfNeeded: v >> 32)), as: UInt64.self)
        p.storeBytes(of: IOBuffer.hexDigits(UInt32(truncatingIfNeeded: v)), toByteOffset: 8, as: UInt64.self)
        writeIndex += 16
    }

    /// The eight lowercase hex digits of `v`, most significant first in memory
    /// order: each nibble spread into a byte of its own, then 0x30 added, and
    /// 0x27 more where the nibble is 10 or above (nibble + 6 carries into bit 4).
    @inlinable @inline(__always) static func hexDigits(_ v: UInt32) -> UInt64 {
        var x = UInt64(v)
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F
        let letters = ((x &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        x = x &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
        return x.bigEndian
    }

    /// Appends `v` in lowercase hexadecimal (v >= 0).
    @inlinable public func append(hex v: Int) {
        reserve(16)
        if v == 0 { base[writeIndex] = 48; writeIndex += 1; return }
        var shift = (Int.bitWidth - v.leadingZeroBitCount + 3) / 4 * 4
        while shift > 0 {
            shift -= 4
            let d = UInt8((v >> shift) & 0xF)
            base[writeIndex] = d < 10 ? 48 + d : 87 + d
            writeIndex += 1
        }
    }
}
