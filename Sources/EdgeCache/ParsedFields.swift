// Parsed head fields (EdgeHTTP's offsets into the bytes) as the cache's HeaderList.
import EdgeHTTP

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
            lower.append((String(decoding: name.lazy.map { asciiLower($0) }, as: UTF8.self), String(decoding: p[f.value], as: UTF8.self)))
        }
        self.init(lowercased: lower, original: original)
    }
}
