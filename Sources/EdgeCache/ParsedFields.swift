// Parsed head fields (EdgeHTTP's offsets into the bytes) as the cache's HeaderList.
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

extension HeaderList {
    /// The parsed fields of a head (offsets into `p`) as a HeaderList
    /// (allocates; used on cacheable routes only).
    public init(parsed p: UnsafeRawBufferPointer, _ fields: [Field]) {
        var lower: [(String, String)] = []
        var original: [String] = []
        lower.reserveCapacity(fields.count)
        original.reserveCapacity(fields.count)
        for f in fields {
            let name = UnsafeRawBufferPointer(rebasing: p[f.name])
            original.append(String(decoding: name, as: UTF8.self))
            // Lowercased straight into the string's storage (a lazy map here cost a
            // dynamic cast per field at run time).
            let lowered = String(unsafeUninitializedCapacity: name.count) { out in
                for i in 0..<name.count { out[i] = asciiLower(name[i]) }
                return name.count
            }
            lower.append((lowered, String(decoding: UnsafeRawBufferPointer(rebasing: p[f.value]), as: UTF8.self)))
        }
        self.init(lowercased: lower, original: original)
    }
}
