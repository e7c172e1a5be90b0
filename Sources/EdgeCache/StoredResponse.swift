// A stored response in one allocation: a fixed head (what every hit reads,
// decided once, and the memory tier's index fields) followed by the bytes
// (key, variant, serialized fields, the body unless it lives in a file, and
// the few lists a purge or a derived coding reads). A memory tier of small
// objects is mostly these, so there is one heap block per object and no
// string, array or node beside it (tools/bench/memory.sh measures the rest).
//
// Concurrency and ownership: a StoredResponse is a reference to its box. All
// but the index fields are written once, before the box is shared, and read
// by any thread without a lock. The index fields (`newer`, `older`, `hash`,
// `freq`, `queue`) belong to the MemoryStore shard that holds the box: they
// are read and written only under that shard's lock, and `newer`/`older` are
// unretained links the shard keeps valid (a box leaves its queue before the
// shard lets go of it).
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// A file a stored body's bytes are also in (a disk tier's segment), which the
/// answer that read them sends them from with sendfile while the file is open
/// and the pages are in the page cache (so the send never waits for the disk).
public protocol PageCacheFile: AnyObject, Sendable {
    var fd: Int32 { get }
    /// Are bytes `offset..<offset+count` of the file all in the page cache?
    func resident(offset: Int, count: Int) -> Bool
}

/// A stored body, the handle a lookup gives the transport: ordinary memory,
/// or a region of a file (a memory file for large bodies; a disk segment) that
/// hits send with sendfile from the right offset, no copy. Immutable but for
/// `segment`, which the segment's reclaim clears, and `handleBytes`, which its
/// maker sets once before the body is stored or shared.
public final class BodyStorage: @unchecked Sendable {
    let array: [UInt8]
    let owner: AnyObject?
    let base: UnsafeRawPointer?
    /// The file the bytes are in (-1 for ordinary memory), and where in it
    /// they start: a transport sends `count` bytes from `offset` with sendfile.
    public let fd: Int32
    public let offset: Int
    public let count: Int
    /// The memory `owner` holds for these bytes (nil: whole pages of `count`).
    let ownerBytes: Int?
    /// The disk segment the bytes were read from, at `offset`: weak, so that a
    /// body kept in memory never holds a reclaimed segment's space on disk.
    public private(set) weak var segment: (any PageCacheFile)?

    public init(_ bytes: [UInt8]) {
        array = bytes; owner = nil; base = nil; fd = -1; offset = 0; count = bytes.count; ownerBytes = nil
    }

    /// Bytes mapped at `base` from `fd` at `offset` (a memory file, or a disk
    /// tier's segment); `owner` keeps the mapping alive and unmaps it when freed.
    public init(mapped owner: AnyObject, base: UnsafeRawPointer, count: Int, fd: Int32, offset: Int = 0) {
        array = []; self.owner = owner; self.base = base; self.fd = fd; self.offset = offset; self.count = count; ownerBytes = nil
    }

    /// Bytes at `base` inside memory `owner` holds (`ownerBytes` of it: what
    /// they are charged), which are also in `segment` at `offset` as long as
    /// it lives: a record read from a disk tier's segment.
    public init(held owner: AnyObject, ownerBytes: Int, base: UnsafeRawPointer, count: Int, segment: (any PageCacheFile)?, offset: Int) {
        array = []; self.owner = owner; self.base = base; fd = -1; self.offset = offset; self.count = count
        self.ownerBytes = ownerBytes
        self.segment = segment
    }

    /// Where bytes `from..<from+n` can be sent from without a copy (sendfile):
    /// a memory file always; a segment, only for the answer that read it
    /// (`justRead`: its pages were read this moment, or `segmentResident` says
    /// the page cache still holds them), while it is open (`holder` keeps its
    /// descriptor open for the call). nil: send them from memory. (Every later
    /// hit is written from memory: a page cache check per hit, mincore on 16
    /// pages, cost as much as the copy it saved.)
    @inline(__always) public func file(_ from: Int, _ n: Int, justRead: Bool) -> (fd: Int32, offset: Int, holder: AnyObject?)? {
        if fd >= 0 { return (fd, offset + from, nil) }
        guard justRead, let s = segment else { return nil }
        return (s.fd, offset + from, s)
    }

    /// Is the segment still open with bytes `from..<from+n` in the page cache?
    public func segmentResident(_ from: Int, _ n: Int) -> Bool {
        guard let s = segment else { return false }
        return s.resident(offset: offset + from, count: n)
    }

    @inline(__always) public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let base { return try body(UnsafeRawBufferPointer(start: base, count: count)) }
        return try array.withUnsafeBytes(body)
    }

    /// The bytes as an array (copies a mapped body).
    public var bytes: [UInt8] { base == nil ? array : withBytes { Array($0) } }

    /// The memory the bytes take: an array's capacity, whole pages of a
    /// memory file, nothing for bytes inside a stored response's own block
    /// (charged with it; a disk tier's region is not memory: it charges its
    /// own), and `handleBytes`.
    public var chargedBytes: Int {
        if base == nil { return array.capacity }
        if owner is StoredBox { return 0 }
        if let ownerBytes { return ownerBytes + handleBytes }
        return (count + 4095) & ~4095 + handleBytes
    }

    /// What this handle and the object owning its memory (a memory file's
    /// mapping, a record read from disk) take themselves: about 170 bytes a
    /// body kept outside its block, which the 64 KiB rows of
    /// tools/bench/memory.sh found uncharged. Set by whoever makes the handle
    /// (EdgeIO's heapBytes measures them), before it is stored.
    public private(set) var handleBytes = 0
    public func charge(handles n: Int) { handleBytes = n }

    /// Bytes a stored response copies into its own block (ordinary memory),
    /// or nil for a file's bytes it keeps by reference.
    var inlineBytes: UnsafeRawBufferPointer? {
        if fd >= 0 { return nil }
        if base == nil || owner is StoredBox { return withBytes { $0 } }
        return nil
    }
}

/// The fixed part of a stored response's block.
struct StoredHead {
    // The memory tier's index (under the holding shard's lock).
    var newer: Unmanaged<StoredBox>?
    var older: Unmanaged<StoredBox>?
    /// The whole key's FNV-1a (MemoryStore.ghostHash).
    var hash: UInt64
    var freq: UInt8 = 0
    /// 0: in no queue; 1: the small queue; 2: the main queue.
    var queue: UInt8 = 0
    /// 1: stored with `holdForHit` and not hit since (MemoryStore.onFirstHit).
    var awaitingHit: UInt8 = 0
    // Written once.
    let status: UInt16
    let source: UInt8
    let flags: UInt16
    /// Interned (see Interned): one copy per distinct name, not per object.
    let tenant: Interned.Name
    let mediaType: Interned.Name?
    /// The Vary names, interned the same way (every lookup of a varying key reads them).
    let vary: [String]
    /// The body when it is in a file, not in the block.
    let external: BodyStorage?
    let lifetime: Int64
    let correctedInitialAge: Int64
    let responseTime: Int64
    /// Int64.min: none.
    let lastModified: Int64
    /// Ends of the parts in the bytes (each starts where the one before ends;
    /// the key at 0): key, variant, fields a 304 sends, all fields, body,
    /// Content-Encoding and tags (joined by LF); the ETag's value is a range
    /// inside the fields.
    let keyEnd, variantEnd, notModifiedEnd, headEnd, bodyEnd, encodingEnd, tagsEnd: UInt32
    let etagStart, etagEnd: UInt32
    /// Seconds, at most Int32.max (68 years); Int32.min: none.
    let staleWhileRevalidate: Int32
    let staleIfError: Int32
}

final class StoredBox: ManagedBuffer<StoredHead, UInt8> {}

/// One stored response (a variant of a primary key). Immutable; a value that
/// refers to its block, so copies share it.
///
/// The fields live once, serialized (Content-Type lines last, so a 304's head
/// is a prefix); `headers` parses them on the rare paths that need a list
/// (revalidation, derived codings). What every hit reads is kept in the head,
/// decided once.
public struct StoredResponse: @unchecked Sendable {
    let box: StoredBox

    init(box: StoredBox) { self.box = box }

    @inline(__always) var h: UnsafeMutablePointer<StoredHead> { box.withUnsafeMutablePointerToHeader { $0 } }
    @inline(__always) var bytesBase: UnsafeMutablePointer<UInt8> { box.withUnsafeMutablePointerToElements { $0 } }
    @inline(__always) func part(_ start: UInt32, _ end: UInt32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytesBase + Int(start), count: Int(end &- start))
    }
    @inline(__always) func string(_ start: UInt32, _ end: UInt32) -> String {
        String(decoding: part(start, end), as: UTF8.self)
    }
    @inline(__always) func flag(_ f: UInt16) -> Bool { h.pointee.flags & f != 0 }

    static let hasDateFlag: UInt16 = 1, noTransformFlag: UInt16 = 2, contentRangeFlag: UInt16 = 4, varyAEFlag: UInt16 = 8
    static let derivedFlag: UInt16 = 16, mustRevalidateFlag: UInt16 = 32, noCacheFlag: UInt16 = 64, etagFlag: UInt16 = 128
    static let encodingFlag: UInt16 = 256, postFlag: UInt16 = 512

    // MARK: what a response is

    public var key: String { let p = h; return string(0, p.pointee.keyEnd) }
    /// The key's bytes (valid while this response is held).
    @inline(__always) public var keyBytes: UnsafeRawBufferPointer { part(0, h.pointee.keyEnd) }
    /// The secondary key (from the response's Vary and the request that stored it).
    public var variant: String { let p = h; return string(p.pointee.keyEnd, p.pointee.variantEnd) }
    var variantBytes: UnsafeRawBufferPointer { let p = h; return part(p.pointee.keyEnd, p.pointee.variantEnd) }
    public var vary: [String] { h.pointee.vary }
    /// No Vary: any request selects it.
    @inline(__always) public var varyIsEmpty: Bool { h.pointee.vary.isEmpty }
    public var tenant: String { h.pointee.tenant.string }
    public var status: Int { Int(h.pointee.status) }
    /// Surrogate keys / cache tags the origin gave it (purge --tag).
    public var tags: [String] { let p = h; return list(p.pointee.encodingEnd, p.pointee.tagsEnd) }
    public var freshness: Freshness {
        let p = h
        return Freshness(lifetime: p.pointee.lifetime, source: FreshnessSource.codes[Int(p.pointee.source)], correctedInitialAge: p.pointee.correctedInitialAge,
                         responseTime: p.pointee.responseTime, mustRevalidate: flag(Self.mustRevalidateFlag), noCache: flag(Self.noCacheFlag),
                         staleWhileRevalidate: p.pointee.staleWhileRevalidate == .min ? nil : Int64(p.pointee.staleWhileRevalidate),
                         staleIfError: p.pointee.staleIfError == .min ? nil : Int64(p.pointee.staleIfError))
    }
    public var hasDate: Bool { flag(Self.hasDateFlag) }
    public var noTransform: Bool { flag(Self.noTransformFlag) }
    public var hasContentRange: Bool { flag(Self.contentRangeFlag) }
    public var varyHasAcceptEncoding: Bool { flag(Self.varyAEFlag) }
    /// A representation edge made from another (its key has the coding after a NUL).
    public var isDerived: Bool { flag(Self.derivedFlag) }
    /// A cached POST answer (its key has the body's hash after a SOH).
    var isPostKey: Bool { flag(Self.postFlag) }
    public var etag: String? { let p = h; return p.pointee.flags & Self.etagFlag == 0 ? nil : string(p.pointee.etagStart, p.pointee.etagEnd) }
    /// Last-Modified as seconds, parsed once (conditionals on every hit compare it).
    public var lastModifiedTime: Int64? { let t = h.pointee.lastModified; return t == .min ? nil : t }
    /// What compression decides on, read once here instead of on every hit:
    /// the Content-Type's essence ("text/html"; see mediaTypeEssence).
    public var mediaType: String? { h.pointee.mediaType?.string }
    public var contentEncoding: String? {
        let p = h
        return p.pointee.flags & Self.encodingFlag == 0 ? nil : string(p.pointee.bodyEnd, p.pointee.encodingEnd)
    }

    func list(_ start: UInt32, _ end: UInt32) -> [String] {
        guard end > start else { return [] }
        return part(start, end).split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Does the key have these bytes?
    @inline(__always) func keyEquals(_ k: UnsafeRawBufferPointer) -> Bool { equal(keyBytes, k) }
    func variantEquals(_ v: UnsafeRawBufferPointer) -> Bool { equal(variantBytes, v) }
    func variantEquals(_ v: String) -> Bool { var v = v; return v.withUTF8 { variantEquals(UnsafeRawBufferPointer($0)) } }
    /// Does the key start with `prefix`?
    public func keyHasPrefix(_ prefix: String) -> Bool {
        var p = prefix
        return p.withUTF8 { u in
            let k = keyBytes
            return u.count <= k.count && equal(UnsafeRawBufferPointer(rebasing: k[..<u.count]), UnsafeRawBufferPointer(u))
        }
    }
    /// Did the origin give it this tag?
    public func hasTag(_ tag: String) -> Bool {
        var t = tag
        let p = h
        return t.withUTF8 { u in
            var found = false
            part(p.pointee.encodingEnd, p.pointee.tagsEnd).split(separator: 10, omittingEmptySubsequences: false).forEach { s in
                if !found && s.count == u.count && equal(UnsafeRawBufferPointer(rebasing: s), UnsafeRawBufferPointer(u)) { found = true }
            }
            return found
        }
    }

    @inline(__always) func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    // MARK: the body

    /// Bytes in the body.
    @inline(__always) public var bodyCount: Int {
        let p = h
        if let e = p.pointee.external { return e.count }
        return Int(p.pointee.bodyEnd &- p.pointee.headEnd)
    }
    /// The file a body is in (sendfile from `bodyOffset`): a memory file, or
    /// the disk segment it was read from while that is open; -1: memory only.
    @inline(__always) public var bodyFD: Int32 {
        guard let e = h.pointee.external else { return -1 }
        return e.fd >= 0 ? e.fd : e.segment?.fd ?? -1
    }
    @inline(__always) public var bodyOffset: Int { h.pointee.external?.offset ?? 0 }
    /// Where body bytes `from..<from+n` can be sent from without a copy, or
    /// nil: from memory (BodyStorage.file).
    @inline(__always) public func bodyFile(_ from: Int, _ n: Int, justRead: Bool) -> (fd: Int32, offset: Int, holder: AnyObject?)? {
        h.pointee.external?.file(from, n, justRead: justRead)
    }
    /// Is the body's segment open with bytes `from..<from+n` in the page cache?
    public func bodySegmentResident(_ from: Int, _ n: Int) -> Bool { h.pointee.external?.segmentResident(from, n) ?? false }
    @inline(__always) public func withBody<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let p = h
        if let e = p.pointee.external { return try e.withBytes(body) }
        return try withExtendedLifetime(box) { try body(part(p.pointee.headEnd, p.pointee.bodyEnd)) }
    }
    /// The body as a handle of its own (keeps this response alive; not for every hit).
    public var storage: BodyStorage {
        let p = h
        if let e = p.pointee.external { return e }
        return BodyStorage(mapped: box, base: UnsafeRawPointer(bytesBase + Int(p.pointee.headEnd)), count: Int(p.pointee.bodyEnd - p.pointee.headEnd), fd: -1)
    }
    /// The body as an array (a copy; the data path uses `withBody`).
    public var body: [UInt8] { withBody { Array($0) } }

    // MARK: the fields

    /// The stored fields serialized ("Name: value\r\n"…), as an array (a copy).
    public var headBytes: [UInt8] { withHead(notModified: false) { Array($0) } }
    /// Bytes of serialized fields.
    public var headCount: Int { let p = h; return Int(p.pointee.headEnd - p.pointee.variantEnd) }

    /// The serialized fields a response (`notModified`: a 304) sends.
    @inline(__always) public func withHead<R>(notModified: Bool, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let p = h
        return try withExtendedLifetime(box) { try body(part(p.pointee.variantEnd, notModified ? p.pointee.notModifiedEnd : p.pointee.headEnd)) }
    }

    /// The stored fields as a list (parsed from the serialized fields; not for every hit).
    public var headers: HeaderList {
        var lower: [(String, String)] = [], original: [String] = []
        forEachField { name, value in
            let n = String(decoding: name, as: UTF8.self)
            original.append(n)
            lower.append((n.lowercased(), String(decoding: value, as: UTF8.self)))
        }
        return HeaderList(lowercased: lower, original: original)
    }

    /// Each stored field line a response (`notModified`: a 304) sends, in
    /// order: the whole line with its CRLF, and where in it the name ends (the colon).
    public func forEachLine(notModified: Bool = false, _ body: (UnsafeRawBufferPointer, Int) throws -> Void) rethrows {
        try withHead(notModified: notModified) { p in
            var i = 0
            while i < p.count {
                var colon = i
                while p[colon] != 58 { colon += 1 }
                var end = colon + 2
                while p[end] != 10 { end += 1 }
                try body(UnsafeRawBufferPointer(rebasing: p[i...end]), colon - i)
                i = end + 1
            }
        }
    }

    /// Each stored field's name and value bytes, in order.
    public func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try forEachLine { line, colon in
            try body(UnsafeRawBufferPointer(rebasing: line[..<colon]), UnsafeRawBufferPointer(rebasing: line[(colon + 2)..<(line.count - 2)]))
        }
    }

    /// Last-Modified as stored (the validator a revalidation sends).
    public var lastModified: String? {
        var out: String?
        forEachField { name, value in
            if out == nil, equalsLowercase(name, 0, name.count, "last-modified") { out = String(decoding: value, as: UTF8.self) }
        }
        return out
    }

    /// Its Date, or when it was received if it had none (what If-Modified-Since
    /// is compared with when there is no Last-Modified: RFC 9111 §4.3.2).
    public var dateTime: Int64 {
        var out: Int64?
        let received = h.pointee.responseTime
        forEachField { name, value in
            if out == nil, equalsLowercase(name, 0, name.count, "date") { out = HTTPDate.parse(value, 0, value.count, now: received) }
        }
        return out ?? received
    }

    // MARK: what it costs

    /// Bytes charged against the store's capacity: what the object really
    /// takes (its block as the allocator hands it out, a file body's pages,
    /// and its share of the store's index; see `indexShare`).
    public var cost: Int {
        let p = h
        return StoredResponse.blockBytes(Int(p.pointee.tagsEnd)) + (p.pointee.external?.chargedBytes ?? 0) + StoredResponse.indexShare
    }

    /// The object's own bytes: key, variant, fields, body and tags, as kept.
    public var storedBytes: Int { Int(h.pointee.tagsEnd) + (h.pointee.external?.count ?? 0) }

    /// The memory tier's bytes per object beyond its block: an index slot
    /// (8 bytes at a load between 0.35 and 0.7: 11 to 23 an object) and a
    /// ghost fingerprint (4 bytes in an array of up to twice the objects).
    public static let indexShare = 24

    /// Where the bytes start in a block, from its start.
    static let bytesOffset: Int = {
        let b = StoredBox.create(minimumCapacity: 0) { _ in StoredHead.empty }
        return b.withUnsafeMutablePointerToElements { Int(bitPattern: $0) } - Int(bitPattern: Unmanaged.passUnretained(b).toOpaque())
    }()

    /// The memory a block with `n` bytes takes: glibc's chunk for it (the
    /// request plus an 8-byte header, rounded up to 16, at least 32).
    static func blockBytes(_ n: Int) -> Int { max(32, (bytesOffset + n + 8 + 15) & ~15) }

    // MARK: making one

    public init(key: String, variant: String, vary: [String], tenant: String, status: Int, headers: HeaderList, body: [UInt8],
                freshness: Freshness, tags: [String] = []) {
        self.init(key: key, variant: variant, vary: vary, tenant: tenant, status: status, headers: headers, storage: BodyStorage(body),
                  freshness: freshness, tags: tags)
    }

    public init(key: String, variant: String, vary: [String], tenant: String, status: Int, headers: HeaderList, storage: BodyStorage,
                freshness: Freshness, tags: [String] = []) {
        var hasDate = false, noTransform = false, contentRange = false, varyAE = false
        var etag: String?, lastModified: String?, contentType: String?
        var encodings: [String] = []
        var cacheControl: [String] = []
        for (i, n) in headers.lowerNames.enumerated() {
            let v = headers.fields[i].value
            switch n {
            case "date": hasDate = true
            case "etag": if etag == nil { etag = v }
            case "last-modified": if lastModified == nil { lastModified = v }
            case "content-type": if contentType == nil { contentType = v }
            case "content-encoding": encodings.append(v)
            case "cache-control": cacheControl.append(v)
            case "content-range": contentRange = true
            default: break
            }
        }
        noTransform = CacheControl.parse(cacheControl).noTransform
        varyAE = headers.listElements("vary").contains { $0 == "accept-encoding" || $0 == "*" }
        let encoding = encodings.joined(separator: ",")
        // The fields serialized, Content-Type lines last.
        var size = 0
        for f in headers.fields { size += f.name.utf8.count + f.value.utf8.count + 4 }
        let inline = storage.inlineBytes
        let keyEnd = key.utf8.count, variantEnd = keyEnd + variant.utf8.count, headEnd = variantEnd + size
        let bodyEnd = headEnd + (inline?.count ?? 0)
        let encodingEnd = bodyEnd + encoding.utf8.count
        func joinedCount(_ l: [String]) -> Int { l.isEmpty ? 0 : l.reduce(l.count - 1) { $0 + $1.utf8.count } }
        let tagsEnd = encodingEnd + joinedCount(tags)
        precondition(tagsEnd < Int(UInt32.max), "a stored response's bytes exceed 4 GiB")
        let box = unsafeDowncast(StoredBox.create(minimumCapacity: tagsEnd) { _ in StoredHead.empty }, to: StoredBox.self)
        var notModifiedEnd = 0, etagStart = 0, etagEnd = 0
        box.withUnsafeMutablePointerToElements { base in
            var at = 0
            func put(_ s: String) {
                var s = s
                s.withUTF8 { u in if u.count > 0 { (base + at).update(from: u.baseAddress!, count: u.count) }; at += u.count }
            }
            func putList(_ l: [String]) {
                for (i, s) in l.enumerated() { if i > 0 { base[at] = 10; at += 1 }; put(s) }
            }
            put(key); put(variant)
            func line(_ i: Int) {
                let f = headers.fields[i]
                put(f.name); base[at] = 58; base[at + 1] = 32; at += 2
                if etagEnd == 0 && etag != nil && headers.lowerNames[i] == "etag" { etagStart = at; etagEnd = at + f.value.utf8.count }
                put(f.value); base[at] = 13; base[at + 1] = 10; at += 2
            }
            for i in headers.fields.indices where headers.lowerNames[i] != "content-type" { line(i) }
            notModifiedEnd = at
            for i in headers.fields.indices where headers.lowerNames[i] == "content-type" { line(i) }
            if let inline, inline.count > 0 { UnsafeMutableRawPointer(base + at).copyMemory(from: inline.baseAddress!, byteCount: inline.count) }
            at += inline?.count ?? 0
            put(encoding); putList(tags)
            assert(at == tagsEnd)
        }
        var flags: UInt16 = 0
        if hasDate { flags |= Self.hasDateFlag }
        if noTransform { flags |= Self.noTransformFlag }
        if contentRange { flags |= Self.contentRangeFlag }
        if varyAE { flags |= Self.varyAEFlag }
        if key.utf8.contains(0) { flags |= Self.derivedFlag }
        if key.utf8.contains(1) { flags |= Self.postFlag }
        if freshness.mustRevalidate { flags |= Self.mustRevalidateFlag }
        if freshness.noCache { flags |= Self.noCacheFlag }
        if etag != nil { flags |= Self.etagFlag }
        if !encodings.isEmpty { flags |= Self.encodingFlag }
        let lm = lastModified.flatMap { HTTPDate.parse($0, now: freshness.responseTime) } ?? .min
        func u(_ n: Int) -> UInt32 { UInt32(n) }
        func seconds(_ t: Int64?) -> Int32 { t.map { Int32(clamping: max(0, $0)) } ?? .min }
        box.withUnsafeMutablePointerToHeader { p in
            p.pointee = StoredHead(
                hash: 0, status: UInt16(clamping: status), source: FreshnessSource.code(freshness.source), flags: flags,
                tenant: Interned.name(tenant), mediaType: contentType.map { Interned.name(mediaTypeEssence($0)) }, vary: Interned.list(vary),
                external: inline == nil ? storage : nil,
                lifetime: freshness.lifetime, correctedInitialAge: freshness.correctedInitialAge, responseTime: freshness.responseTime,
                lastModified: lm,
                keyEnd: u(keyEnd), variantEnd: u(variantEnd), notModifiedEnd: u(notModifiedEnd), headEnd: u(headEnd), bodyEnd: u(bodyEnd),
                encodingEnd: u(encodingEnd), tagsEnd: u(tagsEnd), etagStart: u(etagStart), etagEnd: u(etagEnd),
                staleWhileRevalidate: seconds(freshness.staleWhileRevalidate), staleIfError: seconds(freshness.staleIfError))
        }
        self.box = box
    }

    /// The same response with some parts replaced (a 304's merged fields and new
    /// freshness, a derived coding's key, fields and body, a soft purge's
    /// lifetime): the one way a stored response is made from another.
    public func with(key: String? = nil, headers: HeaderList? = nil, storage: BodyStorage? = nil, freshness: Freshness? = nil) -> StoredResponse {
        StoredResponse(key: key ?? self.key, variant: variant, vary: vary, tenant: tenant, status: status, headers: headers ?? self.headers,
                       storage: storage ?? self.storage, freshness: freshness ?? self.freshness, tags: tags)
    }
}

extension StoredHead {
    /// A placeholder the block is made with, replaced before anyone sees it.
    static var empty: StoredHead { StoredHead(hash: 0, status: 0, source: 0, flags: 0, tenant: Interned.none, mediaType: nil, vary: [], external: nil,
                                  lifetime: 0, correctedInitialAge: 0, responseTime: 0, lastModified: .min,
                                  keyEnd: 0, variantEnd: 0, notModifiedEnd: 0, headEnd: 0, bodyEnd: 0, encodingEnd: 0, tagsEnd: 0,
                                  etagStart: 0, etagEnd: 0, staleWhileRevalidate: .min, staleIfError: .min) }
}

/// Strings many stored responses repeat (tenant names, media types, Vary
/// lists), kept once: each object holds a reference to the shared copy (8
/// bytes) instead of a string of its own. Bounded: past `limit` distinct
/// values (a flood of made-up types from an origin) a value is no longer
/// shared, and costs an object what it did before.
enum Interned {
    final class Name: Sendable {
        let string: String
        init(_ s: String) { string = s }
    }
    static let names = Mutex<[String: Name]>([:])
    static let lists = Mutex<Set<[String]>>([])
    static let limit = 4096
    static let none = Name("")

    static func name(_ s: String) -> Name {
        names.withLock { t in
            if let n = t[s] { return n }
            let n = Name(s)
            if t.count < limit { t[s] = n }
            return n
        }
    }

    static func list(_ l: [String]) -> [String] {
        guard !l.isEmpty else { return [] }
        return lists.withLock { t in
            if let i = t.firstIndex(of: l) { return t[i] }
            if t.count < limit { t.insert(l) }
            return l
        }
    }
}
