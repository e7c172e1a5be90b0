// The disk tier's on-disk formats, pure: bytes in, a value or `needMore` /
// `invalid` out; nothing here does I/O (Segments.swift does). Every integer
// is little-endian.
//
// A segment file starts with a 64-byte header and holds records back to back,
// each padded to 8 bytes:
//
//   segment header (64 bytes)
//     0  "EDGESEG1"             magic and version
//     8  u64 generation         a ring slot's use; higher is newer
//    16  i64 created            wall seconds (informational)
//    24  u32 crc32c of 0..<24
//    28  zero to 64
//
//   record
//     0  u32 0x52474445 "EDGR"
//     4  u32 headCRC            crc32c of bytes 8..<40, the key, the meta and the block table
//     8  u32 bodyCRC            crc32c of the body (0 with blocks)
//    12  u32 keyLength
//    16  u32 metaLength
//    20  u32 flags              bit 0 blocks, bit 1 open; no others
//    24  u64 bodyLength
//    32  u64 seq                the purge sequence when its request left (see TieredStore)
//    40  key, meta, block table (blocks only), body, then zero padding to a multiple of 8
//
//   blocks: a body longer than one block (64 KiB) is checked block by block:
//   the table holds the crc32c of each block in order (the last may be
//   short), so a read of part of the body (a Range, a large body sent as it
//   is read) checks just the blocks it reads.
//   open: a record still being written as its body streams in (a large
//   fill): its table is zeros until the head is written again with the bit
//   cleared. A scan steps over an open record (its lengths are whole and
//   its head checks) without indexing it; a read never accepts one.
//
//   meta: variant, tenant (str), status (u16), vary, tags ([str]), the
//   freshness (lifetime, corrected initial age, response time: i64; source,
//   must-revalidate, no-cache: u8; stale-while-revalidate and stale-if-error:
//   u8 present + i64), and the stored field lines (bytes). str and bytes are
//   u32 length + bytes, [str] is u16 count + str each.
//
// A record is accepted only whole: magic, lengths within what is there, and
// the head checksum; the body checksum is checked by whoever reads the body
// (a torn or flipped body is a miss, never served).
import CEdgeCRC
#if canImport(EdgeCache)
import EdgeCache
#endif
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// CRC-32C (Castagnoli), slicing by 8.
public enum CRC32C {
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// The CPU's crc32 instruction (SSE4.2), when it has one: about four times
    /// the tables' speed on a disk hit's body (CEdgeCRC).
    static let hardware = edge_crc32c_hw_available() != 0

    /// The checksum of `p` continuing from `crc` (start with 0).
    public static func update(_ crc: UInt32, _ p: UnsafeRawBufferPointer) -> UInt32 {
        if hardware, let base = p.baseAddress { return ~edge_crc32c_hw(~crc, base, p.count) }
        return software(crc, p)
    }

    /// The table-driven checksum (slicing by eight): machines without the instruction, and the tests' reference.
    static func software(_ crc: UInt32, _ p: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        let n = p.count
        var i = 0
        flat.withUnsafeBufferPointer { t in
            while i + 8 <= n {
                let lo = (UInt32(p[i]) | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2]) << 16 | UInt32(p[i + 3]) << 24) ^ c
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)] ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(p[i + 4])] ^ t[2 * 256 + Int(p[i + 5])] ^ t[1 * 256 + Int(p[i + 6])] ^ t[Int(p[i + 7])]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(p[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }

    public static func of(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { update(0, $0) } }
}

@inline(__always) func le32(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
    UInt32(p[i]) | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2]) << 16 | UInt32(p[i + 3]) << 24
}
@inline(__always) func le64(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt64 {
    UInt64(le32(p, i)) | UInt64(le32(p, i + 4)) << 32
}
@inline(__always) func put32(_ b: inout [UInt8], _ v: UInt32) {
    b.append(UInt8(v & 0xFF)); b.append(UInt8((v >> 8) & 0xFF)); b.append(UInt8((v >> 16) & 0xFF)); b.append(UInt8(v >> 24))
}
@inline(__always) func put64(_ b: inout [UInt8], _ v: UInt64) { put32(&b, UInt32(v & 0xFFFF_FFFF)); put32(&b, UInt32(v >> 32)) }
@inline(__always) func set32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    b[at] = UInt8(v & 0xFF); b[at + 1] = UInt8((v >> 8) & 0xFF); b[at + 2] = UInt8((v >> 16) & 0xFF); b[at + 3] = UInt8(v >> 24)
}

public enum SegmentHeader {
    public static let size = 64
    static let magic: [UInt8] = Array("EDGESEG1".utf8)

    public static func encode(generation: UInt64, created: Int64) -> [UInt8] {
        var b = magic
        put64(&b, generation)
        put64(&b, UInt64(bitPattern: created))
        put32(&b, b.withUnsafeBytes { CRC32C.update(0, $0) })
        b += [UInt8](repeating: 0, count: size - b.count)
        return b
    }

    /// The generation, or nil for anything that is not a whole, valid header.
    public static func parse(_ p: UnsafeRawBufferPointer) -> UInt64? {
        guard p.count >= size else { return nil }
        for i in 0..<8 where p[i] != magic[i] { return nil }
        guard CRC32C.update(0, UnsafeRawBufferPointer(rebasing: p[0..<24])) == le32(p, 24) else { return nil }
        return le64(p, 8)
    }
}

/// Where a record's parts are, relative to its start.
public struct RecordView: Equatable, Sendable {
    public var keyRange: Range<Int>
    public var metaRange: Range<Int>
    /// The block table (empty unless the body is checked by blocks).
    public var tableRange: Range<Int>
    public var bodyRange: Range<Int>
    public var bodyCRC: UInt32
    public var seq: UInt64
    /// The record's bytes with padding: the next one starts here.
    public var length: Int
    /// Still being written (see `open` above): never served.
    public var open: Bool

    public var hasBlocks: Bool { !tableRange.isEmpty }
    /// The blocks of the body (1 without a table).
    public var blockCount: Int { hasBlocks ? tableRange.count / 4 : 1 }
    /// Where block `i`'s bytes are within the body.
    public func block(_ i: Int) -> Range<Int> {
        guard hasBlocks else { return 0..<bodyRange.count }
        return (i * DiskRecord.blockSize)..<min((i + 1) * DiskRecord.blockSize, bodyRange.count)
    }
    /// Block `i`'s checksum, from the record's head bytes `p` (from its start).
    public func blockCRC(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        hasBlocks ? le32(p, tableRange.lowerBound + 4 * i) : bodyCRC
    }
}

/// How a record's body is checked: one checksum, or one per block.
public enum BodyChecksum: Equatable, Sendable {
    case whole(UInt32)
    case blocks([UInt32])

    /// The checksum `DiskRecord` keeps for a body of these bytes.
    public static func of(_ body: UnsafeRawBufferPointer) -> BodyChecksum {
        guard body.count > DiskRecord.blockSize else { return .whole(CRC32C.update(0, body)) }
        var out: [UInt32] = []
        out.reserveCapacity(DiskRecord.blocks(body.count))
        var i = 0
        while i < body.count {
            let end = min(i + DiskRecord.blockSize, body.count)
            out.append(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: body[i..<end])))
            i = end
        }
        return .blocks(out)
    }
}

public enum RecordParse: Equatable, Sendable {
    case record(RecordView)
    /// At least this many bytes are needed in all (from the record's start).
    case needMore(Int)
    case invalid
}

public enum DiskRecord {
    public static let fixedSize = 40
    static let magic: UInt32 = 0x5247_4445
    /// Larger parts are refused as corrupt (a record is at most a segment).
    public static let maxKey = 1 << 16
    public static let maxMeta = 1 << 24

    /// The size of a body's blocks (see `blocks` above).
    public static let blockSize = 64 * 1024
    static let flagBlocks: UInt32 = 1, flagOpen: UInt32 = 2

    @inline(__always) static func padded(_ n: Int) -> Int { (n + 7) & ~7 }
    /// How many blocks a body of `n` bytes has.
    @inline(__always) public static func blocks(_ n: Int) -> Int { max(1, (n + blockSize - 1) / blockSize) }

    /// The head of a record (everything before the body) for `r` with a body
    /// `bodyLength` long and `checksum`, and the body's padding; the body
    /// itself is written after it. `open`: a streamed record's first head
    /// (its table zeros), written again whole once the body is in.
    public static func encodeHead(_ r: StoredResponse, seq: UInt64, bodyLength: Int, checksum: BodyChecksum, open: Bool = false) -> (head: [UInt8], padding: Int) {
        let key = Array(r.key.utf8)
        let meta = encodeMeta(r)
        var table: [UInt32] = []
        var whole: UInt32 = 0
        switch checksum {
        case .whole(let c): whole = c
        case .blocks(let t): table = t
        }
        let blocked = !table.isEmpty
        precondition(blocked ? bodyLength > blockSize && table.count == blocks(bodyLength) : bodyLength <= blockSize,
                     "a body over one block is checked by blocks")
        var b: [UInt8] = []
        b.reserveCapacity(fixedSize + key.count + meta.count + 4 * table.count)
        put32(&b, magic); put32(&b, 0); put32(&b, whole)
        put32(&b, UInt32(key.count)); put32(&b, UInt32(meta.count)); put32(&b, (blocked ? flagBlocks : 0) | (open ? flagOpen : 0))
        put64(&b, UInt64(bodyLength)); put64(&b, seq)
        b += key; b += meta
        for c in table { put32(&b, c) }
        let crc = b.withUnsafeBytes { CRC32C.update(0, UnsafeRawBufferPointer(rebasing: $0[8...])) }
        set32(&b, 4, crc)
        let total = b.count + bodyLength
        return (b, padded(total) - total)
    }

    /// A whole record (head, body, padding) as one array (tests, fuzzing).
    public static func encode(_ r: StoredResponse, seq: UInt64) -> [UInt8] {
        let sum = r.withBody { BodyChecksum.of($0) }
        var (b, pad) = encodeHead(r, seq: seq, bodyLength: r.bodyCount, checksum: sum)
        r.withBody { b.append(contentsOf: $0) }
        b += [UInt8](repeating: 0, count: pad)
        return b
    }

    /// Does the body in `p` (the whole record, from its start) check?
    public static func bodyChecks(_ p: UnsafeRawBufferPointer, _ v: RecordView) -> Bool {
        guard !v.open, v.bodyRange.upperBound <= p.count else { return false }
        let body = UnsafeRawBufferPointer(rebasing: p[v.bodyRange])
        for i in 0..<v.blockCount {
            let r = v.block(i)
            guard CRC32C.update(0, UnsafeRawBufferPointer(rebasing: body[r])) == v.blockCRC(p, i) else { return false }
        }
        return true
    }

    /// The record at the start of `p`: where its parts are, once its head is
    /// all there and its checksum holds (the body is not checked here).
    public static func parse(_ p: UnsafeRawBufferPointer, limit: Int = Int.max) -> RecordParse {
        guard p.count >= fixedSize else { return p.count >= 4 && le32(p, 0) != magic ? .invalid : .needMore(fixedSize) }
        let flags = le32(p, 20)
        // Blocks only for a body over one block (a larger one without them is
        // from before blocks: checked whole); open only with blocks.
        guard le32(p, 0) == magic, flags & ~(flagBlocks | flagOpen) == 0, flags != flagOpen else { return .invalid }
        let keyLength = Int(le32(p, 12)), metaLength = Int(le32(p, 16))
        let bodyLength64 = le64(p, 24)
        guard keyLength > 0, keyLength <= maxKey, metaLength <= maxMeta, bodyLength64 <= UInt64(min(limit, Int(UInt32.max))) else { return .invalid }
        let bodyLength = Int(bodyLength64)
        let blocked = flags & flagBlocks != 0
        guard !blocked || (bodyLength > blockSize && le32(p, 8) == 0) else { return .invalid }
        let tableStart = fixedSize + keyLength + metaLength
        let headEnd = tableStart + (blocked ? 4 * blocks(bodyLength) : 0)
        guard p.count >= headEnd else { return .needMore(headEnd) }
        guard CRC32C.update(0, UnsafeRawBufferPointer(rebasing: p[8..<headEnd])) == le32(p, 4) else { return .invalid }
        let total = padded(headEnd + bodyLength)
        guard total <= limit else { return .invalid }
        return .record(RecordView(keyRange: fixedSize..<(fixedSize + keyLength), metaRange: (fixedSize + keyLength)..<tableStart,
                                  tableRange: tableStart..<headEnd, bodyRange: headEnd..<(headEnd + bodyLength), bodyCRC: le32(p, 8),
                                  seq: le64(p, 32), length: total, open: flags & flagOpen != 0))
    }

    // MARK: meta

    static func encodeMeta(_ r: StoredResponse) -> [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(r.headCount + r.variant.utf8.count + r.tenant.utf8.count + 96)
        func str(_ s: String) { put32(&b, UInt32(s.utf8.count)); b += s.utf8 }
        func strs(_ l: [String]) { b.append(UInt8(l.count & 0xFF)); b.append(UInt8(l.count >> 8)); for s in l { str(s) } }
        func opt(_ v: Int64?) { b.append(v == nil ? 0 : 1); put64(&b, UInt64(bitPattern: v ?? 0)) }
        str(r.variant); str(r.tenant)
        b.append(UInt8(r.status & 0xFF)); b.append(UInt8(r.status >> 8))
        strs(r.vary); strs(r.tags)
        let f = r.freshness
        put64(&b, UInt64(bitPattern: f.lifetime)); put64(&b, UInt64(bitPattern: f.correctedInitialAge)); put64(&b, UInt64(bitPattern: f.responseTime))
        b.append(FreshnessSource.code(f.source))
        b.append(f.mustRevalidate ? 1 : 0); b.append(f.noCache ? 1 : 0)
        opt(f.staleWhileRevalidate); opt(f.staleIfError)
        put32(&b, UInt32(r.headCount)); r.withHead(notModified: false) { b.append(contentsOf: $0) }
        return b
    }

    /// The stored response a record's meta describes, with `storage` as its
    /// body; nil when the meta does not decode (it had a valid checksum, so
    /// only a format from elsewhere could do that).
    public static func decode(key: String, meta p: UnsafeRawBufferPointer, storage: BodyStorage) -> StoredResponse? {
        var i = 0
        func need(_ n: Int) -> Bool { i + n <= p.count }
        func u8() -> UInt8? { guard need(1) else { return nil }; defer { i += 1 }; return p[i] }
        func u16() -> Int? { guard need(2) else { return nil }; defer { i += 2 }; return Int(p[i]) | Int(p[i + 1]) << 8 }
        func i64() -> Int64? { guard need(8) else { return nil }; defer { i += 8 }; return Int64(bitPattern: le64(p, i)) }
        func bytes() -> UnsafeRawBufferPointer? {
            guard need(4) else { return nil }
            let n = Int(le32(p, i)); i += 4
            guard need(n) else { return nil }
            defer { i += n }
            return UnsafeRawBufferPointer(rebasing: p[i..<(i + n)])
        }
        func str() -> String? { bytes().map { String(decoding: $0, as: UTF8.self) } }
        func strs() -> [String]? {
            guard let n = u16() else { return nil }
            var out: [String] = []
            for _ in 0..<n { guard let s = str() else { return nil }; out.append(s) }
            return out
        }
        func opt() -> Int64?? {
            guard let has = u8(), let v = i64() else { return nil }
            return .some(has == 1 ? v : nil)
        }
        guard let variant = str(), let tenant = str(), let status = u16(), let vary = strs(), let tags = strs(),
              let lifetime = i64(), let cia = i64(), let responseTime = i64(), let src = u8(), let mr = u8(), let nc = u8(),
              let swr = opt(), let sie = opt(), let head = bytes(), i == p.count else { return nil }
        guard let headers = fieldLines(head) else { return nil }
        let f = Freshness(lifetime: lifetime, source: Int(src) < FreshnessSource.codes.count ? FreshnessSource.codes[Int(src)] : .none, correctedInitialAge: cia,
                          responseTime: responseTime, mustRevalidate: mr == 1, noCache: nc == 1, staleWhileRevalidate: swr, staleIfError: sie)
        return StoredResponse(key: key, variant: variant, vary: vary, tenant: tenant, status: status, headers: headers, storage: storage,
                              freshness: f, tags: tags)
    }

    /// What the index needs from a record's meta (its start: variant,
    /// tenant, status, vary), without decoding the rest.
    public static func decodeIndexMeta(_ p: UnsafeRawBufferPointer) -> (variant: String, tenant: String, vary: [String])? {
        var i = 0
        func str() -> String? {
            guard i + 4 <= p.count else { return nil }
            let n = Int(le32(p, i)); i += 4
            guard n <= p.count - i else { return nil }
            defer { i += n }
            return String(decoding: UnsafeRawBufferPointer(rebasing: p[i..<(i + n)]), as: UTF8.self)
        }
        guard let variant = str(), let tenant = str(), i + 4 <= p.count else { return nil }
        i += 2
        let count = Int(p[i]) | Int(p[i + 1]) << 8
        i += 2
        var vary: [String] = []
        for _ in 0..<count { guard let v = str() else { return nil }; vary.append(v) }
        return (variant, tenant, vary)
    }

    /// "Name: value\r\n" lines back into a list (nil when they are not that).
    static func fieldLines(_ p: UnsafeRawBufferPointer) -> HeaderList? {
        var lower: [(String, String)] = [], original: [String] = []
        var i = 0
        while i < p.count {
            var colon = i
            while colon < p.count && p[colon] != 58 { colon += 1 }
            guard colon + 1 < p.count, p[colon + 1] == 32 else { return nil }
            var end = colon + 2
            while end + 1 < p.count && !(p[end] == 13 && p[end + 1] == 10) { end += 1 }
            guard end + 1 < p.count else { return nil }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: p[i..<colon]), as: UTF8.self)
            original.append(name)
            lower.append((name.lowercased(), String(decoding: UnsafeRawBufferPointer(rebasing: p[(colon + 2)..<end]), as: UTF8.self)))
            i = end + 2
        }
        return HeaderList(lowercased: lower, original: original)
    }
}

/// One purge as the journal keeps it: what it selected, whether soft, when
/// (wall seconds, for a soft purge's staleness) and its sequence number (it
/// selects records whose seq is lower).
public struct DurablePurge: Equatable, Sendable {
    public var seq: UInt64
    public var time: Int64
    public var soft: Bool
    public var scope: PurgeScope
    public init(seq: UInt64, time: Int64, soft: Bool, scope: PurgeScope) { self.seq = seq; self.time = time; self.soft = soft; self.scope = scope }

    /// Does this purge select a record stored at `seq`?
    public func selects(_ r: StoredResponse, seq recordSeq: UInt64) -> Bool { seq > recordSeq && scope.matches(r) }
}

/// The purge journal: entries back to back, each
///   u32 "EDGP", u32 crc32c of what follows, u32 length of what follows,
///   u64 seq, i64 time, u8 soft, u8 kind (0 key, 1 prefix, 2 tag, 3 tag of a
///   tenant, 4 tenant), str a, str b (the tag's tenant; empty otherwise).
/// Reading stops at the first entry that is torn, does not check, or is not
/// what `encode` writes (so what is read re-encodes to exactly its bytes).
public enum PurgeJournal {
    static let magic: UInt32 = 0x5047_4445

    public static func encode(_ p: DurablePurge) -> [UInt8] {
        var body: [UInt8] = []
        put64(&body, p.seq); put64(&body, UInt64(bitPattern: p.time)); body.append(p.soft ? 1 : 0)
        func str(_ s: String) { put32(&body, UInt32(s.utf8.count)); body += s.utf8 }
        switch p.scope {
        case .key(let k): body.append(0); str(k); str("")
        case .prefix(let k): body.append(1); str(k); str("")
        case .tag(let t, nil): body.append(2); str(t); str("")
        case .tag(let t, let tenant?): body.append(3); str(t); str(tenant)
        case .tenant(let t): body.append(4); str(t); str("")
        }
        var b: [UInt8] = []
        put32(&b, magic); put32(&b, CRC32C.of(body)); put32(&b, UInt32(body.count))
        return b + body
    }

    /// Every whole entry at the start of `p`, and how many bytes they take.
    public static func decode(_ p: UnsafeRawBufferPointer) -> (entries: [DurablePurge], consumed: Int) {
        var out: [DurablePurge] = []
        var i = 0
        while i + 12 <= p.count, le32(p, i) == magic {
            let n = Int(le32(p, i + 8))
            guard n >= 26, n <= 1 << 20, i + 12 + n <= p.count else { break }
            let body = UnsafeRawBufferPointer(rebasing: p[(i + 12)..<(i + 12 + n)])
            guard CRC32C.update(0, body) == le32(p, i + 4) else { break }
            let seq = le64(body, 0), time = Int64(bitPattern: le64(body, 8)), soft = body[16] == 1, kind = body[17]
            var j = 18
            func str() -> String? {
                guard j + 4 <= body.count else { return nil }
                let m = Int(le32(body, j)); j += 4
                guard j + m <= body.count else { return nil }
                defer { j += m }
                // Only valid UTF-8, as encode wrote it (a repaired string would purge another key).
                return String(validating: UnsafeRawBufferPointer(rebasing: body[j..<(j + m)]), as: UTF8.self)
            }
            // An entry encode could not have written (a soft flag other than 0 or 1, a
            // second string where the kind has none) is corrupt: reading stops there.
            guard body[16] <= 1, let a = str(), let b = str(), j == body.count, b.isEmpty || kind == 3 else { break }
            let scope: PurgeScope
            switch kind {
            case 0: scope = .key(a)
            case 1: scope = .prefix(a)
            case 2: scope = .tag(a, tenant: nil)
            case 3: scope = .tag(a, tenant: b)
            case 4: scope = .tenant(a)
            default: return (out, i)
            }
            out.append(DurablePurge(seq: seq, time: time, soft: soft, scope: scope))
            i += 12 + n
        }
        return (out, i)
    }
}
