// Properties of the disk tier's formats on any bytes, shared by the fuzz
// target (tools/fuzz/FuzzDisk.swift) and the replay test.
#if canImport(EdgeDisk)
import EdgeCache
import EdgeHTTP
@testable import EdgeDisk
#endif

func checkDiskProperties(_ p: UnsafeRawBufferPointer) {
    // A record: parts inside what was given, the length a padded sum of them.
    switch DiskRecord.parse(p) {
    case .record(let v):
        precondition(v.keyRange.upperBound <= p.count && v.metaRange.lowerBound == v.keyRange.upperBound)
        precondition(v.tableRange.lowerBound == v.metaRange.upperBound && v.bodyRange.lowerBound == v.tableRange.upperBound)
        precondition(v.length % 8 == 0 && v.length >= v.bodyRange.upperBound && v.tableRange.count % 4 == 0)
        precondition(!v.hasBlocks || (v.bodyRange.count > DiskRecord.blockSize && v.blockCount == DiskRecord.blocks(v.bodyRange.count)))
        if v.hasBlocks { _ = (0..<v.blockCount).map { v.blockCRC(p, $0) } }
        // A meta that decodes re-encodes to what decodes the same.
        let meta = UnsafeRawBufferPointer(rebasing: p[v.metaRange])
        if let r = DiskRecord.decode(key: String(decoding: p[v.keyRange], as: UTF8.self), meta: meta, storage: BodyStorage([1, 2, 3])) {
            let again = DiskRecord.encode(r, seq: v.seq)
            guard case .record(let w) = again.withUnsafeBytes({ DiskRecord.parse($0) }) else { preconditionFailure("re-encoded record does not parse") }
            let r2 = again.withUnsafeBytes { q in
                DiskRecord.decode(key: String(decoding: q[w.keyRange], as: UTF8.self), meta: UnsafeRawBufferPointer(rebasing: q[w.metaRange]),
                                  storage: BodyStorage(Array(q[w.bodyRange])))
            }
            precondition(r2 != nil && r2!.headBytes == r.headBytes && r2!.variant == r.variant && r2!.tenant == r.tenant && r2!.freshness == r.freshness
                         && r2!.vary == r.vary && r2!.tags == r.tags && r2!.body == [1, 2, 3] && w.seq == v.seq)
            if let m = DiskRecord.decodeIndexMeta(meta) { precondition(m.variant == r.variant && m.tenant == r.tenant && m.vary == r.vary) }
        }
    case .needMore(let n): precondition(n > p.count)
    case .invalid: break
    }
    _ = DiskRecord.decodeIndexMeta(p)
    _ = SegmentHeader.parse(p)
    // The journal: what decodes re-encodes to exactly the bytes it used.
    let (entries, used) = PurgeJournal.decode(p)
    precondition(used <= p.count)
    precondition(entries.flatMap(PurgeJournal.encode).elementsEqual(p[0..<used]), "journal entries do not re-encode to their bytes")
}
