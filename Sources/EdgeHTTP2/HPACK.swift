// HPACK (RFC 7541): header block decoding with its dynamic table, and
// encoding. Pure: bytes in, fields out (or bytes out); no I/O, no clock.
// Limits are part of the decoder (HPACK bombs): the dynamic table never
// exceeds the size we advertised, and a decoded list larger than its limit
// is reported without its fields being kept; decoding still runs to the end
// of the block so the table stays in step with the peer's.
// One decoder and one encoder per connection, owned by the connection.

#if canImport(Glibc)
import Glibc
#endif
#if canImport(EdgeHTTP)   // (the fuzzer compiles EdgeHTTP and this module as one: tools/fuzz/run.sh)
import EdgeHTTP   // asciiLower, eight bytes at once (Bytes.swift)
#endif

public enum HPACKError: Error, Sendable {
    /// Any malformed representation: a connection error COMPRESSION_ERROR (RFC 9113 §4.3).
    case compression(StaticString)
}

/// One field as HPACK carries it: a lowercase name and its value, as bytes.
public struct HeaderField: Equatable, Sendable {
    public var name: [UInt8]
    public var value: [UInt8]
    public init(name: [UInt8], value: [UInt8]) { self.name = name; self.value = value }
    public init(_ name: String, _ value: String) { self.name = Array(name.utf8); self.value = Array(value.utf8) }
    /// RFC 7541 §4.1: an entry's size is its name and value plus 32.
    @inline(__always) var size: Int { name.count + value.count + 32 }
}

enum StaticTable {
    static let entries: [(String, String)] = [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"), (":scheme", "http"),
        (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
        (":status", "404"), (":status", "500"), ("accept-charset", ""), ("accept-encoding", "gzip, deflate"), ("accept-language", ""),
        ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
        ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""),
        ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
        ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
        ("strict-transport-security", ""), ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ]
    static let fields: [HeaderField] = entries.map { HeaderField($0.0, $0.1) }
}

/// The dynamic table (RFC 7541 §2.3.2): newest first, evicted oldest first.
struct DynamicTable {
    /// A ring: `entries[(head + k) % entries.count]` is the k-th newest.
    private var ring: [HeaderField] = []
    private var head = 0
    private(set) var count = 0
    private(set) var size = 0
    var maxSize: Int

    init(maxSize: Int) { self.maxSize = maxSize }

    /// The k-th newest entry (0-based).
    func entry(_ k: Int) -> HeaderField { ring[(head + k) % ring.count] }

    mutating func resize(_ newMax: Int) {
        maxSize = newMax
        evict(toFit: 0)
    }

    private mutating func evict(toFit extra: Int) {
        while count > 0 && size + extra > maxSize {
            let oldest = (head + count - 1) % ring.count
            size -= ring[oldest].size
            ring[oldest] = HeaderField(name: [], value: [])
            count -= 1
        }
    }

    /// §4.4: an entry larger than the table empties it and is not added.
    mutating func add(_ f: HeaderField) {
        evict(toFit: f.size)
        guard f.size <= maxSize else { return }
        if count == ring.count {
            // Grow the ring, oldest last (entries are at most maxSize / 32).
            var grown: [HeaderField] = []
            grown.reserveCapacity(max(8, ring.count * 2))
            for k in 0..<count { grown.append(entry(k)) }
            while grown.count < max(8, ring.count * 2) { grown.append(HeaderField(name: [], value: [])) }
            ring = grown
            head = 0
        }
        head = (head - 1 + ring.count) % ring.count
        ring[head] = f
        count += 1
        size += f.size
    }
}

public struct HPACKDecoder {
    var table: DynamicTable
    /// The most the peer may make the table: what our SETTINGS_HEADER_TABLE_SIZE says.
    public var settingsMaxTableSize: Int

    public init(maxTableSize: Int = 4096) {
        table = DynamicTable(maxSize: maxTableSize)
        settingsMaxTableSize = maxTableSize
    }

    public var dynamicTableSize: Int { table.size }
    public var dynamicTableCount: Int { table.count }

    /// Decodes one complete header block. `maxListSize` bounds the decoded list
    /// (names, values and 32 per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts):
    /// past it no more fields are handed on and the result says so (the block is
    /// still decoded to its end). Returns whether the list fit.
    public mutating func decode(_ p: UnsafeRawBufferPointer, maxListSize: Int, emit: (HeaderField) -> Void) throws(HPACKError) -> Bool {
        var i = 0
        var listSize = 0
        var fits = true
        var fieldsSeen = false
        func deliver(_ f: HeaderField) {
            listSize += f.size
            if listSize > maxListSize { fits = false }
            if fits { emit(f) }
        }
        while i < p.count {
            let b = p[i]
            if b & 0x80 != 0 {
                // Indexed field (§6.1).
                let idx = try HPACK.integer(p, &i, prefix: 7)
                deliver(try field(idx))
                fieldsSeen = true
            } else if b & 0x40 != 0 {
                // Literal with incremental indexing (§6.2.1).
                let idx = try HPACK.integer(p, &i, prefix: 6)
                let name = idx == 0 ? try HPACK.string(p, &i) : try field(idx).name
                let f = HeaderField(name: name, value: try HPACK.string(p, &i))
                table.add(f)
                deliver(f)
                fieldsSeen = true
            } else if b & 0x20 != 0 {
                // Dynamic table size update (§6.3): only at the start of a block (§4.2).
                guard !fieldsSeen else { throw .compression("table size update after a field") }
                let n = try HPACK.integer(p, &i, prefix: 5)
                guard n <= settingsMaxTableSize else { throw .compression("table size update above the advertised limit") }
                table.resize(n)
            } else {
                // Literal without indexing (§6.2.2) or never indexed (§6.2.3).
                let idx = try HPACK.integer(p, &i, prefix: 4)
                let name = idx == 0 ? try HPACK.string(p, &i) : try field(idx).name
                deliver(HeaderField(name: name, value: try HPACK.string(p, &i)))
                fieldsSeen = true
            }
        }
        return fits
    }

    func field(_ idx: Int) throws(HPACKError) -> HeaderField {
        if idx >= 1 && idx <= StaticTable.fields.count { return StaticTable.fields[idx - 1] }
        let k = idx - StaticTable.fields.count - 1
        guard idx > 0, k < table.count else { throw .compression("index outside the tables") }
        return table.entry(k)
    }
}

/// The encoder (one per connection, in step with the peer's decoder): whole
/// entries and names from the static table and from its own dynamic table,
/// which it fills with the fields it sends (most of a response's fields repeat
/// from one response to the next, so they cost a byte or two after the first);
/// sensitive fields are never indexed (§7.1.3). Names are matched
/// case-insensitively and sent lowercase; strings go out as they are (no
/// Huffman: the table saves more, and the CPU goes to serving).
public struct HPACKEncoder {
    /// The encoder's view of the dynamic table (the peer's decoder holds the
    /// same entries): a ring addressed by each entry's insertion number, so the
    /// k-th newest is `inserted - 1 - k`. The ring starts empty and doubles as
    /// entries need (at most 4096 bytes of entries of at least 32 each: 128
    /// slots), so an idle connection holds only what its table holds.
    var maxSize = 4096
    var size = 0
    /// Entries ever added (the next one's number), and the oldest still in.
    var inserted = 0
    var oldest = 0
    /// Per slot: the entry's lowercase name and value in one array, the
    /// name's length, and the low half of the whole field's hash.
    var entryBytes: [[UInt8]] = []
    var entryNameLength: [UInt16] = []
    var entryHash: [UInt32] = []
    /// Hash buckets (made with the first entry): the newest entry whose whole
    /// field, or name, has that hash's low bits, as its number modulo 65,535,
    /// plus one (0: none). A bucket keeps only its newest entry (an older one
    /// lost to a collision is only a missed match); the number is rebuilt from
    /// `inserted`, and every match is confirmed byte for byte before it is used,
    /// so neither a collision nor a wrapped number can send a wrong field.
    var byField: [UInt16] = []
    var byName: [UInt16] = []
    static let bucketMask: UInt64 = 127
    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed: the next block starts with a size update.
    var pendingSizeUpdate: Int?
    /// Values longer than this are not worth a table entry.
    static let maxIndexedValue = 256
    /// Per place in a header block, what the field there was sent as last time:
    /// a dynamic entry's number (>= 0), a whole static entry (-2 - its index),
    /// or nothing (-1). A response repeats most of the previous one's fields in
    /// the same places (the same object's fields, the server's own): checked
    /// byte for byte against that entry, a repeat is sent without hashing it.
    var lastAt: [Int] = []
    var place = 0
    static let places = 32

    public init(maxTableSize: Int = 4096) {
        maxSize = min(maxTableSize, 4096)
    }

    /// Entries in the table now (tests).
    public var dynamicTableCount: Int { inserted - oldest }

    /// The peer's decoder allows this much (SETTINGS_HEADER_TABLE_SIZE).
    public mutating func setMaxTableSize(_ n: Int) {
        let size = min(n, 4096)   // edge never uses more than the default
        guard size != maxSize else { return }
        maxSize = size
        evict(toFit: 0)
        pendingSizeUpdate = size
    }

    /// Starts a header block (the size update the peer must see first, if any).
    public mutating func beginBlock(into out: inout [UInt8]) {
        place = 0
        if let n = pendingSizeUpdate {
            HPACK.appendInteger(n, prefix: 5, flags: 0x20, into: &out)
            pendingSizeUpdate = nil
        }
    }

    public mutating func encode(_ f: HeaderField, into out: inout [UInt8]) {
        f.name.withUnsafeBytes { n in f.value.withUnsafeBytes { v in encode(name: n, value: v, into: &out) } }
    }

    public mutating func encode(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let at = place
        place += 1
        // What this place held last time, when it is this field again.
        if at < lastAt.count {
            let last = lastAt[at]
            if last >= 0, live(last), matches(last, name, value) {
                HPACK.appendInteger(StaticTable.fields.count + inserted - last, prefix: 7, flags: 0x80, into: &out)
                return
            }
            if last <= -2 {
                let t = StaticLookup.shared, w = -2 - last
                if HPACKEncoder.sameName(t.names[w - 1], name) && HPACKEncoder.sameBytes(t.values[w - 1], value) {
                    HPACK.appendInteger(w, prefix: 7, flags: 0x80, into: &out)
                    return
                }
            }
        }
        let nameHash = HPACKEncoder.hashName(name)
        let fieldHash = HPACKEncoder.hashValue(value, seed: nameHash)
        var nameIndex = 0
        // The dynamic table first, then the static one.
        if !byField.isEmpty {
            let whole = entry(byField[Int(fieldHash & HPACKEncoder.bucketMask)])
            if live(whole), entryHash[slot(whole)] == UInt32(truncatingIfNeeded: fieldHash), matches(whole, name, value) {
                HPACK.appendInteger(StaticTable.fields.count + inserted - whole, prefix: 7, flags: 0x80, into: &out)
                remember(at, whole)
                return
            }
            let named = entry(byName[Int(nameHash & HPACKEncoder.bucketMask)])
            if live(named), matches(named, name, nil) {
                nameIndex = StaticTable.fields.count + inserted - named
            }
        }
        if let (first, whole) = HPACKEncoder.staticMatch(name, value, nameHash: nameHash, fieldHash: fieldHash) {
            if let w = whole { HPACK.appendInteger(w, prefix: 7, flags: 0x80, into: &out); remember(at, -2 - w); return }
            nameIndex = first   // (the static index is the shorter integer)
        }
        let unindexed = HPACKEncoder.neverIndexed(nameHash)
        let index = unindexed == nil && value.count <= HPACKEncoder.maxIndexedValue && name.count + value.count + 32 <= maxSize
        if index {
            HPACK.appendInteger(nameIndex, prefix: 6, flags: 0x40, into: &out)
        } else {
            HPACK.appendInteger(nameIndex, prefix: 4, flags: unindexed == true ? 0x10 : 0x00, into: &out)
        }
        if nameIndex == 0 {
            HPACK.appendInteger(name.count, prefix: 7, flags: 0, into: &out)
            for c in name { out.append(asciiLower(c)) }
        }
        HPACK.appendInteger(value.count, prefix: 7, flags: 0, into: &out)
        out.append(contentsOf: value)
        let before = inserted
        if index { add(name, value, nameHash: nameHash, fieldHash: fieldHash) }
        remember(at, inserted > before ? before : -1)
    }

    /// What place `at` of this block was sent as (for the next block).
    @inline(__always) mutating func remember(_ at: Int, _ what: Int) {
        guard at < HPACKEncoder.places else { return }
        if lastAt.isEmpty { lastAt = Array(repeating: -1, count: HPACKEncoder.places) }
        lastAt[at] = what
    }

    /// The entry number a bucket names: the newest number with those low 16 bits (-1: none).
    @inline(__always) func entry(_ b: UInt16) -> Int {
        guard b != 0, inserted > 0 else { return -1 }
        let newest = inserted - 1
        return newest - (newest % 65535 - Int(b - 1) + 65535) % 65535
    }

    /// What a bucket keeps of entry number `n`: n modulo 65,535, plus one (never 0).
    @inline(__always) static func bucketNumber(_ n: Int) -> UInt16 { UInt16(n % 65535 + 1) }

    @inline(__always) func live(_ n: Int) -> Bool { n >= oldest && n < inserted }
    @inline(__always) func slot(_ n: Int) -> Int { n & (entryBytes.count - 1) }

    /// Entry `n` holds this name (any case) and, unless nil, this value.
    @inline(__always) func matches(_ n: Int, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer?) -> Bool {
        let k = slot(n)
        let nl = Int(entryNameLength[k])
        guard nl == name.count else { return false }
        return entryBytes[k].withUnsafeBytes { e in
            guard HPACKEncoder.sameName(UnsafeRawBufferPointer(rebasing: e[0..<nl]), name) else { return false }
            guard let value else { return true }
            return HPACKEncoder.sameBytes(UnsafeRawBufferPointer(rebasing: e[nl...]), value)
        }
    }

    private mutating func evict(toFit extra: Int) {
        while oldest < inserted && size + extra > maxSize {
            let k = slot(oldest)
            size -= entryBytes[k].count + 32
            entryBytes[k] = []
            oldest += 1
        }
    }

    /// §4.4: an entry larger than the table empties it and is not added.
    private mutating func add(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, nameHash: UInt64, fieldHash: UInt64) {
        let n = name.count + value.count + 32
        evict(toFit: n)
        guard n <= maxSize else { return }
        if byField.isEmpty {
            byField = Array(repeating: 0, count: Int(HPACKEncoder.bucketMask) + 1)
            byName = Array(repeating: 0, count: Int(HPACKEncoder.bucketMask) + 1)
        }
        if inserted - oldest == entryBytes.count { grow() }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(name.count + value.count)
        for c in name { bytes.append(asciiLower(c)) }
        bytes.append(contentsOf: value)
        let k = slot(inserted)
        entryBytes[k] = bytes
        entryNameLength[k] = UInt16(name.count)
        entryHash[k] = UInt32(truncatingIfNeeded: fieldHash)
        let number = HPACKEncoder.bucketNumber(inserted)
        byField[Int(fieldHash & HPACKEncoder.bucketMask)] = number
        byName[Int(nameHash & HPACKEncoder.bucketMask)] = number
        inserted += 1
        size += n
    }

    /// Doubles the ring (from 16), each live entry moved to its slot in the larger one.
    private mutating func grow() {
        let cap = max(16, entryBytes.count * 2)
        var bytes = [[UInt8]](repeating: [], count: cap)
        var lengths = [UInt16](repeating: 0, count: cap)
        var hashes = [UInt32](repeating: 0, count: cap)
        for n in oldest..<inserted {
            let from = slot(n), to = n & (cap - 1)
            bytes[to] = entryBytes[from]; lengths[to] = entryNameLength[from]; hashes[to] = entryHash[from]
        }
        entryBytes = bytes; entryNameLength = lengths; entryHash = hashes
    }

    /// A hash of a name, lowercased (words of eight bytes, then the rest, mixed at the end).
    @inline(__always) static func hashName(_ name: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(name.count)
        var i = 0
        while i + 8 <= name.count {
            h = (h ^ asciiLower(word: UInt64(littleEndian: name.loadUnaligned(fromByteOffset: i, as: UInt64.self)))) &* 0x100_0000_01b3
            h ^= h >> 29
            i += 8
        }
        while i < name.count { h = (h ^ UInt64(asciiLower(name[i]))) &* 0x100_0000_01b3; i += 1 }
        return mix(h)
    }

    /// The hash of a whole field: its name's hash, then the value.
    @inline(__always) static func hashValue(_ value: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h = seed ^ UInt64(value.count) &* 0x9e37_79b9_7f4a_7c15
        var i = 0
        while i + 8 <= value.count {
            h = (h ^ UInt64(littleEndian: value.loadUnaligned(fromByteOffset: i, as: UInt64.self))) &* 0x100_0000_01b3
            h ^= h >> 29
            i += 8
        }
        while i < value.count { h = (h ^ UInt64(value[i])) &* 0x100_0000_01b3; i += 1 }
        return mix(h)
    }

    /// A final mix, so the low bits (the bucket) depend on every byte.
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33; h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33; h = h &* 0xc4ce_b9fe_1a85_ec53
        return h ^ (h >> 33)
    }

    /// `s` (lowercase) and `name` (any case) are the same field name.
    @inline(__always) static func sameName(_ s: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> Bool {
        guard s.count == name.count else { return false }
        var i = 0
        while i + 8 <= name.count {
            if s.loadUnaligned(fromByteOffset: i, as: UInt64.self) != asciiLower(word: name.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                return false
            }
            i += 8
        }
        while i < name.count {
            if s[i] != asciiLower(name[i]) { return false }
            i += 1
        }
        return true
    }

    @inline(__always) static func sameBytes(_ s: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool {
        s.count == value.count && (s.count == 0 || memcmp(s.baseAddress!, value.baseAddress!, s.count) == 0)
    }

    /// The static table's first index with this name, and the index of the whole
    /// entry when the value matches too (open-addressed by the same hashes).
    static func staticMatch(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer,
                            nameHash: UInt64, fieldHash: UInt64) -> (Int, Int?)? {
        let t = StaticLookup.shared
        var first = 0
        var i = Int(nameHash & StaticLookup.mask)
        while t.nameSlots[i] != 0 {
            let k = t.nameSlots[i]
            if t.nameHashes[i] == nameHash && sameName(t.names[k - 1], name) { first = k; break }
            i = (i + 1) & Int(StaticLookup.mask)
        }
        guard first != 0 else { return nil }
        i = Int(fieldHash & StaticLookup.mask)
        while t.fieldSlots[i] != 0 {
            let k = t.fieldSlots[i]
            if t.fieldHashes[i] == fieldHash && sameName(t.names[k - 1], name) && sameBytes(t.values[k - 1], value) { return (first, k) }
            i = (i + 1) & Int(StaticLookup.mask)
        }
        return (first, nil)
    }

    /// Fields sent without indexing: credentials and cookies never indexed
    /// (§7.1.3, true), and a request id, new in every response (false: a table
    /// entry would only push out ones that repeat). nil: may be indexed.
    /// (By the name's hash alone: another name with one of these hashes would
    /// only be sent unindexed, which costs bytes, never correctness.)
    static func neverIndexed(_ nameHash: UInt64) -> Bool? {
        let t = StaticLookup.shared
        if nameHash == t.cookie || nameHash == t.setCookie || nameHash == t.authorization || nameHash == t.proxyAuthorization {
            return true
        }
        return nameHash == t.requestID ? false : nil
    }
}

/// The static table by hash (open addressing, 256 slots each for names and
/// whole fields), and the hashes of the names the encoder treats apart. Made
/// once and never freed; read through plain pointers (no reference counting
/// per lookup, which a struct of arrays copied per field cost).
final class StaticLookup: @unchecked Sendable {
    static let mask: UInt64 = 255
    let nameSlots = UnsafeMutablePointer<Int>.allocate(capacity: 256)
    let nameHashes = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
    let fieldSlots = UnsafeMutablePointer<Int>.allocate(capacity: 256)
    let fieldHashes = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
    /// The static entries' names and values, in one immortal copy.
    let names: UnsafeMutablePointer<UnsafeRawBufferPointer>
    let values: UnsafeMutablePointer<UnsafeRawBufferPointer>
    let cookie: UInt64, setCookie: UInt64, authorization: UInt64, proxyAuthorization: UInt64, requestID: UInt64

    static let shared = StaticLookup()

    static func hash(_ s: String) -> UInt64 { Array(s.utf8).withUnsafeBytes { HPACKEncoder.hashName($0) } }

    static func immortal(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { if $0.count > 0 { p.copyMemory(from: $0) } }
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(p)[0..<bytes.count])
    }

    private init() {
        cookie = StaticLookup.hash("cookie"); setCookie = StaticLookup.hash("set-cookie")
        authorization = StaticLookup.hash("authorization"); proxyAuthorization = StaticLookup.hash("proxy-authorization")
        requestID = StaticLookup.hash("x-request-id")
        let n = StaticTable.fields.count
        names = .allocate(capacity: n)
        values = .allocate(capacity: n)
        nameSlots.initialize(repeating: 0, count: 256); nameHashes.initialize(repeating: 0, count: 256)
        fieldSlots.initialize(repeating: 0, count: 256); fieldHashes.initialize(repeating: 0, count: 256)
        for (k, f) in StaticTable.fields.enumerated() {
            names[k] = StaticLookup.immortal(f.name)
            values[k] = StaticLookup.immortal(f.value)
            let nh = f.name.withUnsafeBytes { HPACKEncoder.hashName($0) }
            let fh = f.value.withUnsafeBytes { HPACKEncoder.hashValue($0, seed: nh) }
            // A name's first index only (the encoder wants the first).
            var i = Int(nh & StaticLookup.mask)
            var seen = false
            while nameSlots[i] != 0 {
                if nameHashes[i] == nh && StaticTable.fields[nameSlots[i] - 1].name == f.name { seen = true; break }
                i = (i + 1) & Int(StaticLookup.mask)
            }
            if !seen { nameSlots[i] = k + 1; nameHashes[i] = nh }
            i = Int(fh & StaticLookup.mask)
            while fieldSlots[i] != 0 { i = (i + 1) & Int(StaticLookup.mask) }
            fieldSlots[i] = k + 1; fieldHashes[i] = fh
        }
    }
}

public enum HPACK {
    /// An integer with an N-bit prefix (§5.1), at `i`; at most 2^28 (nothing
    /// in HTTP/2 needs more, and larger is how overflow attacks start).
    public static func integer(_ p: UnsafeRawBufferPointer, _ i: inout Int, prefix n: Int) throws(HPACKError) -> Int {
        guard i < p.count else { throw .compression("truncated integer") }
        let mask = (1 << n) - 1
        var v = Int(p[i]) & mask
        i += 1
        if v < mask { return v }
        var shift = 0
        while true {
            guard i < p.count else { throw .compression("truncated integer") }
            let b = Int(p[i])
            i += 1
            // Past 28 bits of shift a continuation byte could only overflow (or,
            // shifted out, leave a huge value looking small): too large either way.
            guard shift <= 28 else { throw .compression("integer too large") }
            v += (b & 0x7F) << shift
            guard v <= 1 << 28 else { throw .compression("integer too large") }
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    public static func appendInteger(_ value: Int, prefix n: Int, flags: UInt8, into out: inout [UInt8]) {
        let mask = (1 << n) - 1
        if value < mask { out.append(flags | UInt8(value)); return }
        out.append(flags | UInt8(mask))
        var v = value - mask
        while v >= 128 { out.append(UInt8(v & 0x7F | 0x80)); v >>= 7 }
        out.append(UInt8(v))
    }

    /// A string literal (§5.2), Huffman-decoded when its H bit says so.
    static func string(_ p: UnsafeRawBufferPointer, _ i: inout Int) throws(HPACKError) -> [UInt8] {
        guard i < p.count else { throw .compression("truncated string") }
        let huffman = p[i] & 0x80 != 0
        let n = try integer(p, &i, prefix: 7)
        guard n <= p.count - i else { throw .compression("string longer than the block") }
        let raw = UnsafeRawBufferPointer(rebasing: p[i..<(i + n)])
        i += n
        return huffman ? try Huffman.decode(raw) : Array(raw)
    }

    static func appendString(_ s: [UInt8], into out: inout [UInt8]) {
        let h = Huffman.encodedLength(s)
        if h < s.count {
            appendInteger(h, prefix: 7, flags: 0x80, into: &out)
            Huffman.encode(s, into: &out)
        } else {
            appendInteger(s.count, prefix: 7, flags: 0, into: &out)
            out.append(contentsOf: s)
        }
    }
}

public enum Huffman {
    /// The code as a binary tree in flat arrays: node k's children are
    /// `children[2k]` (bit 0) and `children[2k+1]` (bit 1); a child below 0 is
    /// the leaf of symbol `-(child + 1)`.
    static let children: [Int32] = {
        var c: [Int32] = [0, 0]
        for (sym, entry) in HuffmanTable.codes.enumerated() {
            var node = 0
            for bit in stride(from: Int(entry.bits) - 1, through: 0, by: -1) {
                let b = Int((entry.code >> UInt32(bit)) & 1)
                if bit == 0 {
                    c[2 * node + b] = Int32(-(sym + 1))
                } else {
                    if c[2 * node + b] == 0 {
                        c.append(0); c.append(0)
                        c[2 * node + b] = Int32(c.count / 2 - 1)
                    }
                    node = Int(c[2 * node + b])
                }
            }
        }
        return c
    }()

    /// The code as 4-bit steps: entry `16 * node + nibble` says where those
    /// four bits lead from internal node `node` of `children`, and the symbol
    /// they completed, if any (a code has at least 5 bits: one at most per
    /// step). Bits 0-8: the node after; 9: a symbol came; 10: EOS came; 11: no
    /// such code; 16-23: the symbol. Decoding reads a nibble a step instead of
    /// walking the tree a bit at a time.
    static let steps: [UInt32] = {
        let nodes = children.count / 2
        var t = [UInt32](repeating: 0, count: nodes * 16)
        for node in 0..<nodes {
            for nibble in 0..<16 {
                var at = node
                var e: UInt32 = 0
                for bit in stride(from: 3, through: 0, by: -1) {
                    let next = children[2 * at + ((nibble >> bit) & 1)]
                    if next < 0 {
                        let sym = Int(-next - 1)
                        if sym == 256 { e |= eosBit; break }
                        e |= symbolBit | UInt32(sym) << 16
                        at = 0
                    } else if next == 0 {
                        e |= noCodeBit
                        break
                    } else {
                        at = Int(next)
                    }
                }
                t[node * 16 + nibble] = e | UInt32(at)
            }
        }
        return t
    }()
    static let symbolBit: UInt32 = 1 << 9, eosBit: UInt32 = 1 << 10, noCodeBit: UInt32 = 1 << 11

    /// Nodes a string may end on: the root, or at most 7 one-bits below it
    /// (padding is a prefix of EOS, which is all ones: §5.2).
    static let endings: [Bool] = {
        var ok = [Bool](repeating: false, count: children.count / 2)
        var at = 0
        ok[0] = true
        for _ in 0..<7 {
            let next = children[2 * at + 1]
            guard next > 0 else { break }
            at = Int(next)
            ok[at] = true
        }
        return ok
    }()

    /// Decodes a Huffman-coded string (§5.2): EOS inside it, or padding that is
    /// longer than 7 bits or not the EOS prefix (all ones), is an error.
    public static func decode(_ p: UnsafeRawBufferPointer) throws(HPACKError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(p.count + p.count / 2)
        let steps = Huffman.steps
        var node = 0
        @inline(__always) func step(_ e: UInt32) throws(HPACKError) {
            if e & (eosBit | noCodeBit) != 0 {
                throw .compression(e & eosBit != 0 ? "EOS in a Huffman string" : "invalid Huffman code")
            }
            if e & symbolBit != 0 { out.append(UInt8(truncatingIfNeeded: e >> 16)) }
            node = Int(e & 0x1FF)
        }
        for byte in p {
            try step(steps[node << 4 | Int(byte >> 4)])
            try step(steps[node << 4 | Int(byte & 15)])
        }
        guard endings[node] else { throw .compression("invalid Huffman padding") }
        return out
    }

    public static func encodedLength(_ s: [UInt8]) -> Int {
        var bits = 0
        for b in s { bits += Int(HuffmanTable.codes[Int(b)].bits) }
        return (bits + 7) / 8
    }

    public static func encode(_ s: [UInt8], into out: inout [UInt8]) {
        var acc: UInt64 = 0
        var n = 0
        for b in s {
            let e = HuffmanTable.codes[Int(b)]
            acc = acc << UInt64(e.bits) | UInt64(e.code)
            n += Int(e.bits)
            while n >= 8 { n -= 8; out.append(UInt8(truncatingIfNeeded: acc >> UInt64(n))) }
        }
        if n > 0 { out.append(UInt8(truncatingIfNeeded: acc << UInt64(8 - n)) | UInt8(0xFF >> n)) }
    }
}
